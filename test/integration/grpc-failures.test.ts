/**
 * Failures become gRPC statuses, never hangs: a worker killed with calls in flight, every worker
 * down, no endpoint to pick, an upstream that refuses or resets streams. docs/architecture.md's retry rule: a
 * stream is retried only if no response byte arrived and its forwarded request fits the 64 KiB retry
 * buffer (REFUSED_STREAM, connect failure, GOAWAY below its id); otherwise UNAVAILABLE.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { constants as h2 } from "node:http2";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import type { ChildWorker } from "../helpers/child-worker.js";
import { spawnGrpcWorker } from "../helpers/grpc-child-worker.js";
import {
  Teardown,
  callMany,
  countNames,
  echoClient,
  grpcConfig,
  sleep,
  startUnary,
  unary,
  waitForReady,
  who,
} from "../helpers/grpc-client.js";
import {
  RawHttp2Worker,
  closeSession,
  grpcFrame,
  parseGrpcFrames,
  rawConnect,
  rawGrpcRequest,
  readBody,
} from "../helpers/grpc-raw.js";
import { ECHO, startGrpcWorkers, type GrpcTestWorker } from "../helpers/grpc-test-worker.js";
import { metricValue, startFulcrum, waitFor } from "../helpers/harness.js";

function closeWorkers(workers: readonly { close(): Promise<void> }[]): Promise<unknown> {
  return Promise.all(workers.map((w) => w.close()));
}

/** Ports that refuse connections: bound once, then closed. */
async function deadPorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  for (let i = 0; i < n; i++) {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    servers.push(s);
  }
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** TCP servers that accept and never speak (no HTTP/2 SETTINGS): every connect attempt times out. */
async function silentServers(n: number): Promise<{ ports: number[]; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const servers: Server[] = [];
  for (let i = 0; i < n; i++) {
    const s = createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.once("close", () => sockets.delete(socket));
    });
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    servers.push(s);
  }
  return {
    ports: servers.map((s) => (s.address() as { port: number }).port),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}

describe("grpc failures", { timeout: 60_000 }, () => {
  it("a worker killed mid-load: its in-flight calls end UNAVAILABLE at once, every later call succeeds", async () => {
    const own = new Teardown();
    try {
      const children = own.add([] as ChildWorker[], (cs) => Promise.all(cs.map((c) => c.kill())));
      for (const name of ["a", "b", "c"]) children.push(await spawnGrpcWorker(name));
      const victim = children[1] as ChildWorker;
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            policy: "round_robin",
            extra: ["connect_timeout: 1s", "connect_attempts: 3"],
            endpoints: children.map((c) => c.address),
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const set = f.fulcrum.cluster("w").endpoints;
      const eb = set.get(victim.address);
      assert.ok(eb);
      assert.deepEqual(countNames(await callMany(client, 3, 3)), { a: 1, b: 1, c: 1 });

      const settledAt: number[] = [];
      const inflight = Array.from({ length: 30 }, (_, i) => {
        const { outcome } = startUnary(client, ECHO.unary, undefined, {
          metadata: { "x-delay-ms": "3000" },
          deadlineMs: 15_000,
        });
        return outcome.then((o) => {
          settledAt[i] = performance.now();
          return o;
        });
      });
      await waitFor(() => set.activeOf(eb) === 10, 5000, "10 calls on b");
      await sleep(200); // let the 10 requests reach the worker process
      const killedAt = performance.now();
      await victim.kill("SIGKILL");
      const outcomes = await Promise.all(inflight);
      assert.deepEqual(countNames(outcomes), { a: 10, c: 10, "!UNAVAILABLE": 10 });
      outcomes.forEach((o, i) => {
        if (o.ok) return;
        const after = (settledAt[i] as number) - killedAt;
        assert.ok(
          after < 2000,
          `an in-flight call on the killed worker ended ${Math.round(after)} ms after the kill`,
        );
      });

      // Started after the failed calls ended: all succeed, none on the dead worker.
      const later = countNames(await callMany(client, 60, 10));
      assert.equal((later.a ?? 0) + (later.c ?? 0), 60, JSON.stringify(later));
    } finally {
      await own.run();
    }
  });

  it("all workers refusing connections: UNAVAILABLE within connect_attempts × connect_timeout", async () => {
    const own = new Teardown();
    try {
      const ports = await deadPorts(3);
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            extra: ["connect_timeout: 1s", "connect_attempts: 3"],
            endpoints: ports.map((p) => `127.0.0.1:${p}`),
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      await waitForReady(client);
      const o = await who(client);
      assert.ok(!o.ok && o.code === grpc.status.UNAVAILABLE, JSON.stringify(o));
      assert.ok(o.ms <= 3 * 1000 + 500, `answered after ${Math.round(o.ms)} ms`);
    } finally {
      await own.run();
    }
  });

  it("all workers silent (no SETTINGS): UNAVAILABLE within connect_attempts × connect_timeout", async () => {
    const own = new Teardown();
    try {
      const silent = own.add(await silentServers(3), (s) => s.close());
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            extra: ["connect_timeout: 500ms", "connect_attempts: 2"],
            endpoints: silent.ports.map((p) => `127.0.0.1:${p}`),
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      await waitForReady(client);
      const o = await who(client);
      assert.ok(!o.ok && o.code === grpc.status.UNAVAILABLE, JSON.stringify(o));
      // Tolerance: 300 ms for timers and scheduling on a loaded machine.
      assert.ok(o.ms <= 2 * 500 + 300, `answered after ${Math.round(o.ms)} ms`);
    } finally {
      await own.run();
    }
  });

  it("no endpoint available: trailers-only UNAVAILABLE at once, grpc-message naming the cluster", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(await startGrpcWorkers(["a"]), closeWorkers);
      const a = workers[0] as GrpcTestWorker;
      const f = own.add(await startFulcrum(grpcConfig({ name: "gpu-pool", endpoints: [a.address] })), (x) =>
        x.fulcrum.stop(0),
      );
      const set = f.fulcrum.cluster("gpu-pool").endpoints;
      set.setHealth(a.address, "unhealthy");

      const session = own.add(await rawConnect(f.target("g")), closeSession);
      const r = await rawGrpcRequest(session, ECHO.unary);
      assert.equal(r.trailersOnly, true, "HEADERS with END_STREAM");
      assert.equal(r.dataEvents, 0);
      assert.equal(r.headers[":status"], 200);
      assert.match(String(r.headers["content-type"]), /^application\/grpc/);
      assert.equal(r.grpcStatus, "14");
      assert.match(r.grpcMessage ?? "", /gpu-pool/);
      assert.ok((r.statusMs ?? Infinity) < 500, `answered after ${r.statusMs} ms`);

      set.setHealth(a.address, "healthy");
      set.setDrained(a.address, true);
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const o = await who(client);
      assert.ok(!o.ok && o.code === grpc.status.UNAVAILABLE, JSON.stringify(o));
      assert.match(o.details, /gpu-pool/);
      assert.equal(a.calls, 0, "no stream reached the worker");
      assert.equal(
        await metricValue(f.registry, "fulcrum_grpc_streams_total", {
          listener: "g",
          cluster: "gpu-pool",
          grpc_code: "UNAVAILABLE",
        }),
        2,
      );
    } finally {
      await own.run();
    }
  });

  it("REFUSED_STREAM before any response byte: retried on another endpoint, never lost", async () => {
    const own = new Teardown();
    try {
      const refuser = own.add(new RawHttp2Worker((stream) => stream.close(h2.NGHTTP2_REFUSED_STREAM)), (w) =>
        w.close(),
      );
      await refuser.listen();
      const workers = own.add(await startGrpcWorkers(["b"]), closeWorkers);
      const b = workers[0] as GrpcTestWorker;
      const f = own.add(
        await startFulcrum(grpcConfig({ policy: "round_robin", endpoints: [refuser.address, b.address] })),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      assert.deepEqual(countNames(await callMany(client, 10, 1)), { b: 10 });
      assert.equal(b.calls, 10, "each call reached b exactly once");
      assert.ok(refuser.streamCount >= 1, "the refusing worker was tried");
    } finally {
      await own.run();
    }
  });

  it("a refused stream whose forwarded request outgrew the 64 KiB retry buffer fails UNAVAILABLE, not replayed", async () => {
    const own = new Teardown();
    try {
      // Refuses only after more than 100 KiB of the request arrived.
      const refuser = own.add(
        new RawHttp2Worker((stream) => {
          let received = 0;
          stream.on("data", (chunk: Buffer) => {
            received += chunk.length;
            if (received > 100 * 1024 && !stream.closed) stream.close(h2.NGHTTP2_REFUSED_STREAM);
          });
        }),
        (w) => w.close(),
      );
      await refuser.listen();
      const workers = own.add(await startGrpcWorkers(["b"]), closeWorkers);
      const b = workers[0] as GrpcTestWorker;
      const f = own.add(
        await startFulcrum(grpcConfig({ policy: "round_robin", endpoints: [refuser.address, b.address] })),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const big = Buffer.alloc(256 * 1024, 7);
      // Round robin over two endpoints: one of two sequential calls starts on each.
      const outcomes = [await unary(client, ECHO.echo, big), await unary(client, ECHO.echo, big)];
      assert.deepEqual(
        outcomes.map((o) => (o.ok ? o.value.equals(big) : o.code)).sort(),
        [true, grpc.status.UNAVAILABLE].sort(),
      );
      assert.equal(b.calls, 1, "the refused call was not replayed on b");
      assert.equal(refuser.streamCount, 1);
    } finally {
      await own.run();
    }
  });

  for (const { rst, code } of [
    { rst: h2.NGHTTP2_CANCEL, code: grpc.status.CANCELLED },
    { rst: h2.NGHTTP2_ENHANCE_YOUR_CALM, code: grpc.status.RESOURCE_EXHAUSTED },
    { rst: h2.NGHTTP2_INTERNAL_ERROR, code: grpc.status.INTERNAL },
    { rst: h2.NGHTTP2_REFUSED_STREAM, code: grpc.status.UNAVAILABLE },
  ]) {
    it(`an upstream RST_STREAM ${rst} after response bytes becomes ${grpc.status[code]} downstream`, async () => {
      const own = new Teardown();
      try {
        // Headers and one message, then RST_STREAM with `rst` where the trailers would be. (node:http2's
        // stream.close(code) on an open stream ends it cleanly first; waiting for 'wantTrailers' keeps
        // END_STREAM unsent, so the reset carries the code.)
        const resetter = own.add(
          new RawHttp2Worker((stream) => {
            void readBody(stream).then(() => {
              if (stream.closed) return;
              stream.respond(
                { ":status": 200, "content-type": "application/grpc" },
                { waitForTrailers: true },
              );
              stream.once("wantTrailers", () => setTimeout(() => stream.close(rst), 20));
              stream.end(grpcFrame(Buffer.from("partial")));
            });
          }),
          (w) => w.close(),
        );
        const port = await resetter.listen();
        // The premise: the worker's stream really ends with RST_STREAM `rst` after a message.
        const direct = await rawConnect({ host: "127.0.0.1", port });
        const premise = await rawGrpcRequest(direct, ECHO.unary);
        await closeSession(direct);
        assert.deepEqual(
          { rst: premise.rstCode, messages: parseGrpcFrames(premise.body).length },
          { rst, messages: 1 },
        );

        const f = own.add(await startFulcrum(grpcConfig({ endpoints: [resetter.address] })), (x) =>
          x.fulcrum.stop(0),
        );
        const client = own.add(echoClient(f.target("g")), (c) => c.close());
        const o = await who(client);
        assert.ok(!o.ok, "the call fails");
        assert.equal(o.code, code, `${grpc.status[o.code]}: ${o.details}`);
        assert.equal(resetter.streamCount, 2, "not retried (one stream direct, one through Fulcrum)");
      } finally {
        await own.run();
      }
    });
  }
});
