/**
 * The bench's gRPC load generator against a real simulated worker (in process, port 0): closed loop
 * keeps exactly `connections × concurrency` calls in flight and stops at `count`; open loop holds its
 * rate; streaming counts echoed messages; statuses other than OK and missed deadlines are errors;
 * metadata reaches the worker; windows stop once stable.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { runLoad, type LoadSpec } from "../../bench/loadgen/loadgen-run.js";
import { stableWhen, summarise } from "../../bench/loadgen/loadgen-windows.js";
import { SimGrpcWorker } from "../../src/sim/sim-grpc-worker.js";

function spec(address: string, over: Partial<LoadSpec>): LoadSpec {
  return {
    address,
    path: "/fulcrum.sim.Worker/Echo",
    streaming: false,
    payloadBytes: 100,
    metadata: {},
    deadlineMs: 2000,
    connections: 1,
    concurrency: 1,
    durationMs: 5000,
    ...over,
  };
}

async function withWorker(
  options: ConstructorParameters<typeof SimGrpcWorker>[0],
  body: (address: string, worker: SimGrpcWorker) => Promise<void>,
): Promise<void> {
  const worker = new SimGrpcWorker(options);
  const { address } = await worker.listen("127.0.0.1", 0);
  try {
    await body(address, worker);
  } finally {
    await worker.close();
  }
}

describe("bench load generator", { timeout: 120_000 }, () => {
  it("closed loop: connections × concurrency in flight, stops after count", async () => {
    await withWorker({ name: "w", baseLatencyMs: 20, slots: 100 }, async (address, worker) => {
      const run = await runLoad(
        spec(address, { path: "/fulcrum.sim.Worker/Infer", connections: 2, concurrency: 3, count: 60 }),
      );
      const r = summarise(run, false);
      assert.equal(r.requests, 60);
      assert.equal(r.ok, 60);
      assert.equal(worker.calls, 60);
      assert.equal(worker.maxActive, 6);
      assert.ok(r.latency.p50Ms >= 19, `p50 ${r.latency.p50Ms}`);
    });
  });

  it("open loop: holds the rate and measures from the intended send time", async () => {
    await withWorker({ name: "w", baseLatencyMs: 5 }, async (address, worker) => {
      const r = summarise(
        await runLoad(spec(address, { path: "/fulcrum.sim.Worker/Infer", rate: 200, durationMs: 2000 })),
        false,
      );
      assert.ok(worker.calls >= 380 && worker.calls <= 402, `calls ${worker.calls}`);
      assert.ok(r.throughput > 150 && r.throughput < 210, `throughput ${r.throughput}`);
      assert.ok(r.latency.p50Ms >= 4.5, `p50 ${r.latency.p50Ms}`);
    });
  });

  it("open loop past capacity: latency grows with the queue instead of hiding as fewer sends", async () => {
    await withWorker({ name: "w", baseLatencyMs: 10, slots: 1 }, async (address) => {
      const r = summarise(
        await runLoad(spec(address, { path: "/fulcrum.sim.Worker/Infer", rate: 200, durationMs: 1000 })),
        false,
      );
      // Capacity 100/s at 200/s offered: the last calls wait about half a second.
      assert.ok(r.latency.maxMs > 300, `max ${r.latency.maxMs}`);
    });
  });

  it("streaming: messages echoed on bidi streams, one in flight per stream", async () => {
    await withWorker({ name: "w" }, async (address) => {
      const r = summarise(
        await runLoad(
          spec(address, {
            path: "/fulcrum.sim.Worker/Bidi",
            streaming: true,
            connections: 2,
            concurrency: 2,
            count: 400,
          }),
        ),
        false,
      );
      assert.equal(r.ok, 400);
      assert.equal(r.errors, 0);
    });
  });

  it("non-OK statuses and missed deadlines are errors, by status", async () => {
    await withWorker({ name: "w", baseLatencyMs: 300, slots: 1 }, async (address, worker) => {
      worker.failWith(grpc.status.RESOURCE_EXHAUSTED);
      const failed = summarise(
        await runLoad(spec(address, { path: "/fulcrum.sim.Worker/Infer", count: 5 })),
        false,
      );
      assert.equal(failed.errors, 5);
      assert.deepEqual(failed.statuses, { [String(grpc.status.RESOURCE_EXHAUSTED)]: 5 });
      worker.failWith(undefined);
      const late = summarise(
        await runLoad(
          spec(address, { path: "/fulcrum.sim.Worker/Infer", concurrency: 4, count: 4, deadlineMs: 400 }),
        ),
        false,
      );
      assert.equal(late.ok, 1);
      assert.equal(late.statuses[String(grpc.status.DEADLINE_EXCEEDED)], 3);
    });
  });

  it("sends metadata with every call", async () => {
    await withWorker({ name: "w" }, async (address) => {
      const seen: string[] = [];
      const echo = new SimGrpcWorker({
        name: "md",
        serverOptions: {
          interceptors: [
            (_m, call) =>
              new grpc.ServerInterceptingCall(call, {
                start: (next) =>
                  next({
                    onReceiveMetadata: (md, nextMd) => (seen.push(String(md.get("x-tenant")[0])), nextMd(md)),
                  }),
              }),
          ],
        },
      });
      const { address: mdAddress } = await echo.listen("127.0.0.1", 0);
      try {
        await runLoad(spec(mdAddress, { metadata: { "x-tenant": "blue" }, count: 3 }));
        assert.deepEqual(seen, ["blue", "blue", "blue"]);
      } finally {
        await echo.close();
      }
      assert.ok(address);
    });
  });

  it("windows: stops early once the last three agree", async () => {
    await withWorker({ name: "w", baseLatencyMs: 5, slots: 100 }, async (address) => {
      const run = await runLoad(
        spec(address, {
          path: "/fulcrum.sim.Worker/Infer",
          rate: 100,
          durationMs: 20_000,
          windowMs: 500,
          isStable: stableWhen({ windows: 3, tolerance: 0.5 }),
        }),
      );
      const r = summarise(run, true);
      assert.ok(r.stable);
      assert.ok(run.windows.length < 40, `windows ${run.windows.length}`);
      assert.ok(Math.abs(r.seconds - 1.5) < 0.2, `seconds ${r.seconds}`);
    });
  });
});
