/**
 * Graceful shutdown through the real CLI: SIGTERM under load lets every in-flight call finish OK
 * (some last 1 s), refuses new connections, and exits 0 within drain_timeout; a second signal stops
 * at once.
 */
import { grpcEngine } from "../helpers/grpc-client.js";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { SimGrpcWorker, simWorkerClient } from "../../src/sim/sim-grpc-worker.js";
import { adminGet } from "../helpers/admin-client.js";
import { startCli } from "../helpers/cli-process.js";
import { connectAndGreet, startWorkers } from "../helpers/harness.js";

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
  });
}

describe("graceful shutdown", { timeout: 60_000 }, () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it("SIGTERM under load: in-flight calls finish OK, new connections are refused, exit 0 within drain_timeout", async () => {
    const slow = new SimGrpcWorker({ name: "slow", baseLatencyMs: 1000 });
    const fast = new SimGrpcWorker({ name: "fast", baseLatencyMs: 100 });
    await Promise.all([slow.listen(), fast.listen()]);
    cleanup.push(() => Promise.all([slow.close(), fast.close()]));
    const tcp = await startWorkers(["t"]);
    cleanup.push(() => Promise.all(tcp.map((w) => w.close())));
    const file = join(mkdtempSync(join(tmpdir(), "fulcrum-stop-")), "fulcrum.yaml");
    writeFileSync(
      file,
      `
admin: { listen: "127.0.0.1:0" }
drain_timeout: 5s
listeners:
  - { name: grpc, protocol: grpc, engine: ${grpcEngine()}, listen: "127.0.0.1:0", cluster: gpus }
  - { name: tcp, protocol: tcp, listen: "127.0.0.1:0", cluster: sockets }
clusters:
  - name: gpus
    policy: round_robin
    health_check: { type: none }
    endpoints: [{ address: "127.0.0.1:${slow.port}" }, { address: "127.0.0.1:${fast.port}" }]
  - name: sockets
    health_check: { type: none }
    endpoints: [{ address: "127.0.0.1:${tcp[0]?.port}" }]
`,
    );
    const proc = await startCli(["--config", file], 3);
    cleanup.push(async () => {
      proc.child.kill("SIGKILL");
      await proc.exited();
    });
    const grpcPort = Number(/:(\d+)$/.exec(proc.address("grpc"))?.[1]);
    const tcpPort = Number(/:(\d+)$/.exec(proc.address("tcp"))?.[1]);
    const client = simWorkerClient(proc.address("grpc"));
    cleanup.push(() => Promise.resolve(client.close()));
    // A TCP connection open across the signal keeps working until it ends.
    const held = await connectAndGreet(tcpPort);

    const calls = Array.from(
      { length: 20 },
      () =>
        new Promise<string>((resolve) =>
          client.Infer(Buffer.from("x"), (err, reply) =>
            resolve(err ? `error ${err.code} ${err.details}` : String(reply)),
          ),
        ),
    );
    await new Promise((r) => setTimeout(r, 200));
    const signalled = Date.now();
    proc.child.kill("SIGTERM");
    await proc.waitForLine((l) => l.msg === "draining", 2000);
    const ready = await adminGet(proc.address("admin"), "/readyz");
    assert.equal(ready.status, 503, "/readyz answers 503 once draining");
    assert.equal(await refused(grpcPort), true, "new gRPC connections are refused");
    assert.equal(await refused(tcpPort), true, "new TCP connections are refused");
    held.socket.resume();
    const echoed = new Promise<string>((resolve) =>
      held.socket.once("data", (d: Buffer) => resolve(d.toString())),
    );
    held.socket.write("after the signal");
    assert.equal(await echoed, "after the signal");
    held.socket.end();

    const results = await Promise.all(calls);
    assert.deepEqual(
      results.filter((r) => r !== "slow" && r !== "fast"),
      [],
      "every in-flight call finished OK",
    );
    assert.equal(results.filter((r) => r === "slow").length, 10);
    client.close();
    assert.equal(await proc.exited(), 0);
    const took = Date.now() - signalled;
    assert.ok(took < 5000, `exited ${took} ms after SIGTERM, beyond drain_timeout`);
  });

  it("a second signal stops at once", async () => {
    const tcp = await startWorkers(["t"]);
    cleanup.push(() => Promise.all(tcp.map((w) => w.close())));
    const file = join(mkdtempSync(join(tmpdir(), "fulcrum-stop-")), "fulcrum.yaml");
    writeFileSync(
      file,
      `
drain_timeout: 30s
listeners:
  - { name: tcp, protocol: tcp, listen: "127.0.0.1:0", cluster: sockets }
clusters:
  - name: sockets
    health_check: { type: none }
    endpoints: [{ address: "127.0.0.1:${tcp[0]?.port}" }]
`,
    );
    const proc = await startCli(["--config", file], 1);
    cleanup.push(async () => {
      proc.child.kill("SIGKILL");
      await proc.exited();
    });
    const held = await connectAndGreet(Number(/:(\d+)$/.exec(proc.address("tcp"))?.[1]));
    held.socket.on("error", () => {});
    proc.child.kill("SIGTERM");
    await proc.waitForLine((l) => l.msg === "draining", 2000);
    const second = Date.now();
    proc.child.kill("SIGINT");
    assert.equal(await proc.exited(), 0);
    assert.ok(Date.now() - second < 2000, "stopped at once, not after the 30 s drain");
    held.socket.destroy();
  });
});
