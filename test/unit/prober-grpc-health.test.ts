import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { GrpcHealthProber } from "../../src/health/prober-grpc-health.js";
import { healthService } from "../../src/protos/health-proto.js";
import { SimGrpcWorker } from "../../src/sim/sim-grpc-worker.js";

const LOCAL = "127.0.0.1";

async function startWorker(name = "w"): Promise<SimGrpcWorker> {
  const worker = new SimGrpcWorker({ name });
  await worker.listen(LOCAL, 0);
  return worker;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, LOCAL, () => {
      const a = server.address();
      resolve(a && typeof a !== "string" ? a.port : 0);
    });
  });
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A TCP relay in front of `port` that counts the connections it accepts. */
async function countingProxy(
  port: number,
): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((down) => {
    accepted++;
    const up = connect(port, LOCAL);
    for (const s of [down, up]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        down.destroy();
        up.destroy();
      });
    }
    down.pipe(up).pipe(down);
  });
  return { port: await listen(server), accepted: () => accepted, close: () => closeServer(server, sockets) };
}

describe("grpc health prober", { timeout: 30_000 }, () => {
  it("succeeds on SERVING and fails on NOT_SERVING", async () => {
    const worker = await startWorker();
    const prober = new GrpcHealthProber({ service: "" });
    try {
      const target = { host: LOCAL, port: worker.port };
      assert.deepEqual(await prober.probe(target, 1000), { result: "success" });
      worker.setServing("NOT_SERVING");
      assert.deepEqual(await prober.probe(target, 1000), { result: "failure", reason: "NOT_SERVING" });
      worker.setServing("SERVING");
      assert.deepEqual(await prober.probe(target, 1000), { result: "success" });
      assert.equal(worker.healthChecks, 3);
    } finally {
      prober.close();
      await worker.close();
    }
  });

  it("asks about its service; an unknown service is NOT_FOUND", async () => {
    const worker = await startWorker();
    worker.setServing("SERVING", "model-a");
    const known = new GrpcHealthProber({ service: "model-a" });
    const unknown = new GrpcHealthProber({ service: "model-b" });
    try {
      const target = { host: LOCAL, port: worker.port };
      assert.deepEqual(await known.probe(target, 1000), { result: "success" });
      assert.deepEqual(await unknown.probe(target, 1000), { result: "failure", reason: "NOT_FOUND" });
    } finally {
      known.close();
      unknown.close();
      await worker.close();
    }
  });

  it("fails within timeout + 500 ms on a closed port and on a silent one", async () => {
    const closed = createServer();
    const closedPort = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const silentSockets = new Set<Socket>();
    const silent = createServer((s) => {
      silentSockets.add(s);
      s.on("close", () => silentSockets.delete(s));
    });
    const silentPort = await listen(silent);
    const prober = new GrpcHealthProber({ service: "" });
    try {
      for (const [port, reason] of [
        [closedPort, /^UNAVAILABLE/],
        [silentPort, /^DEADLINE_EXCEEDED$/],
      ] as const) {
        const started = performance.now();
        const outcome = await prober.probe({ host: LOCAL, port }, 300);
        const elapsed = performance.now() - started;
        assert.equal(outcome.result, "failure");
        assert.match(outcome.reason ?? "", reason);
        assert.ok(elapsed < 800, `took ${elapsed} ms`);
      }
    } finally {
      prober.close();
      await closeServer(silent, silentSockets);
    }
  });

  it("reuses one TCP connection across probes", async () => {
    const worker = await startWorker();
    const proxy = await countingProxy(worker.port);
    const prober = new GrpcHealthProber({ service: "" });
    try {
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(await prober.probe({ host: LOCAL, port: proxy.port }, 1000), { result: "success" });
      }
      assert.equal(worker.healthChecks, 5);
      assert.equal(proxy.accepted(), 1);
    } finally {
      prober.close();
      await proxy.close();
      await worker.close();
    }
  });

  it("sees a revived worker within about a second", async () => {
    let worker = await startWorker("first");
    const port = worker.port;
    const prober = new GrpcHealthProber({ service: "" });
    try {
      assert.equal((await prober.probe({ host: LOCAL, port }, 500)).result, "success");
      await worker.close();
      assert.equal((await prober.probe({ host: LOCAL, port }, 500)).result, "failure");
      worker = new SimGrpcWorker({ name: "second" });
      await worker.listen(LOCAL, port);
      const revived = performance.now();
      while ((await prober.probe({ host: LOCAL, port }, 500)).result !== "success") {
        assert.ok(performance.now() - revived < 2500, "revived worker not seen within 2.5 s");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      prober.close();
      await worker.close();
    }
  });

  const tmp = mkdtempSync(join(tmpdir(), "fulcrum-grpc-tls-"));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  let hasOpenssl = true;
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
  } catch {
    hasOpenssl = false;
  }

  it(
    "probes over TLS: trusted CA + server name, skip-verify, and a refused certificate",
    { skip: !hasOpenssl },
    async () => {
      const [cert, key] = [join(tmp, "cert.pem"), join(tmp, "key.pem")];
      execFileSync(
        "openssl",
        [
          ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"],
          ...[
            "-keyout",
            key,
            "-out",
            cert,
            "-subj",
            "/CN=worker.test",
            "-addext",
            "subjectAltName=DNS:worker.test",
          ],
        ],
        { stdio: "ignore" },
      );
      const server = new grpc.Server();
      server.addService(healthService().service, {
        Check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
          callback(null, { status: "SERVING" }),
      });
      const credentials = grpc.ServerCredentials.createSsl(null, [
        { cert_chain: readFileSync(cert), private_key: readFileSync(key) },
      ]);
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(`${LOCAL}:0`, credentials, (err, p) => (err ? reject(err) : resolve(p))),
      );
      const probers = {
        trusted: new GrpcHealthProber({
          service: "",
          tls: { ca: cert, serverName: "worker.test", insecureSkipVerify: false },
        }),
        skip: new GrpcHealthProber({ service: "", tls: { insecureSkipVerify: true } }),
        untrusted: new GrpcHealthProber({
          service: "",
          tls: { serverName: "worker.test", insecureSkipVerify: false },
        }),
      };
      try {
        assert.deepEqual(await probers.trusted.probe({ host: LOCAL, port }, 2000), { result: "success" });
        assert.deepEqual(await probers.skip.probe({ host: LOCAL, port }, 2000), { result: "success" });
        const refused = await probers.untrusted.probe({ host: LOCAL, port }, 2000);
        assert.equal(refused.result, "failure");
        assert.match(refused.reason ?? "", /^UNAVAILABLE/);
      } finally {
        for (const p of Object.values(probers)) p.close();
        await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      }
    },
  );
});
