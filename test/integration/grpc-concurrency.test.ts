/**
 * A worker's SETTINGS_MAX_CONCURRENT_STREAMS is a per-session limit, not a queue: Fulcrum opens more
 * upstream sessions instead of letting node:http2 queue streams above the limit (docs/architecture.md, gRPC mode).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Teardown,
  countNames,
  echoClient,
  grpcConfig,
  startUnary,
  waitForReady,
} from "../helpers/grpc-client.js";
import { ECHO, startGrpcWorkers, type GrpcTestWorker } from "../helpers/grpc-test-worker.js";
import { startFulcrum, waitFor } from "../helpers/harness.js";

const LIMIT = 10;
const CALLS = 50;

function closeWorkers(workers: readonly GrpcTestWorker[]): Promise<unknown> {
  return Promise.all(workers.map((w) => w.close()));
}

describe("grpc upstream concurrency", { timeout: 60_000 }, () => {
  it(`a worker allowing ${LIMIT} streams per session gets all ${CALLS} concurrent calls at once, over ≥ ${CALLS / LIMIT} sessions`, async () => {
    const own = new Teardown();
    try {
      const [worker] = own.add(await startGrpcWorkers(["a"], { maxConcurrentStreams: LIMIT }), closeWorkers);
      assert.ok(worker);
      const f = own.add(await startFulcrum(grpcConfig({ endpoints: [worker.address] })), (x) =>
        x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());

      // Each call would take 100 ms; the worker holds them instead, so that "all in the handler at
      // once" does not depend on how fast Fulcrum opens sessions.
      worker.hold();
      const calls = Array.from({ length: CALLS }, () =>
        startUnary(client, ECHO.unary, undefined, { metadata: { "x-delay-ms": "100" }, deadlineMs: 20_000 }),
      );
      await waitFor(
        () => worker.heldCount === CALLS,
        5000,
        `${CALLS} calls in the worker's handler at once (got ${worker.heldCount})`,
      );
      assert.equal(worker.maxActive, CALLS);
      assert.ok(worker.peers.size >= CALLS / LIMIT, `${worker.peers.size} sessions from Fulcrum`);
      assert.ok(
        worker.maxActivePerPeer <= LIMIT,
        `a session carried ${worker.maxActivePerPeer} streams at once`,
      );
      worker.release();
      const outcomes = await Promise.all(calls.map((c) => c.outcome));
      assert.deepEqual(countNames(outcomes), { a: CALLS });
    } finally {
      await own.run();
    }
  });

  it(`${CALLS} concurrent 100 ms calls to a worker allowing ${LIMIT} streams per session all succeed without queueing`, async () => {
    const own = new Teardown();
    try {
      const [worker] = own.add(
        await startGrpcWorkers(["a"], { maxConcurrentStreams: LIMIT, delayMs: 100 }),
        closeWorkers,
      );
      assert.ok(worker);
      const f = own.add(await startFulcrum(grpcConfig({ endpoints: [worker.address] })), (x) =>
        x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      await waitForReady(client);
      const started = performance.now();
      const outcomes = await Promise.all(
        Array.from({ length: CALLS }, () => startUnary(client, ECHO.unary).outcome),
      );
      const elapsed = performance.now() - started;
      assert.deepEqual(countNames(outcomes), { a: CALLS });
      // Queued 10 at a time they would need 5 × 100 ms; in parallel about 100 ms plus session setup.
      assert.ok(elapsed < 450, `${CALLS} calls took ${Math.round(elapsed)} ms: streams were queued`);
      assert.ok(worker.maxActivePerPeer <= LIMIT);
    } finally {
      await own.run();
    }
  });
});
