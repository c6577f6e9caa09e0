/**
 * Overload control on the gRPC stream core (src/grpc/proxied-stream.ts), on the engine the test
 * matrix names: a stream counts against its endpoint from the moment it is picked, not once its
 * upstream connection is ready, so a burst after an endpoint comes back spreads as the policy says.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Teardown, echoClient, grpcConfig, startUnary, waitForReady } from "../helpers/grpc-client.js";
import { ECHO, startGrpcWorkers, type GrpcTestWorker } from "../helpers/grpc-test-worker.js";
import { startFulcrum, waitFor } from "../helpers/harness.js";

function closeWorkers(workers: readonly GrpcTestWorker[]): Promise<unknown> {
  return Promise.all(workers.map((w) => w.close()));
}

const heldTotal = (workers: readonly GrpcTestWorker[]): number =>
  workers.reduce((n, w) => n + w.heldCount, 0);

describe("grpc overload control", { timeout: 60_000 }, () => {
  it("a burst right after an undrain spreads 4/4/4 over three endpoints (least_connections counts from the pick)", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(await startGrpcWorkers(["a", "b", "c"]), closeWorkers);
      const f = own.add(
        await startFulcrum(
          grpcConfig({ policy: "least_connections", endpoints: workers.map((w) => w.address) }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const set = f.fulcrum.cluster("w").endpoints;
      const c = workers[2] as GrpcTestWorker;
      assert.ok(set.setDrained(c.address, true));
      const client = own.add(echoClient(f.target("g")), (x) => x.close());
      await waitForReady(client);
      // Warm: Fulcrum holds connections to a and b, none to c.
      for (let i = 0; i < 6; i++) assert.equal((await startUnary(client, ECHO.unary).outcome).ok, true);
      assert.equal(c.calls, 0);
      assert.ok(set.setDrained(c.address, false));

      for (const w of workers) w.hold();
      const calls = Array.from({ length: 12 }, () => startUnary(client, ECHO.unary));
      await waitFor(() => heldTotal(workers) === 12, 10_000, `12 calls held (got ${heldTotal(workers)})`);
      assert.deepEqual(
        workers.map((w) => w.heldCount),
        [4, 4, 4],
      );
      for (const w of workers) w.release();
      const outcomes = await Promise.all(calls.map((x) => x.outcome));
      assert.ok(outcomes.every((o) => o.ok));
    } finally {
      await own.run();
    }
  });
});
