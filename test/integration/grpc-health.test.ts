/**
 * Active health (grpc.health.v1 Check) and passive outlier detection in gRPC mode, asserted the way
 * docs/architecture.md's "Health timing" says: by the deadline `(threshold + 1) × interval + timeout + 1s` and by
 * counting probes at the worker.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  Teardown,
  callMany,
  countNames,
  echoClient,
  grpcConfig,
  sleep,
  who,
} from "../helpers/grpc-client.js";
import { startGrpcWorkers, type GrpcTestWorker } from "../helpers/grpc-test-worker.js";
import { metricSum, metricValue, startFulcrum, waitFor } from "../helpers/harness.js";

const INTERVAL_MS = 200;
const TIMEOUT_MS = 200;
const HEALTHY = 2;
const UNHEALTHY = 2;
const HEALTH_CHECK = `{ type: grpc, interval: ${INTERVAL_MS}ms, timeout: ${TIMEOUT_MS}ms, healthy_threshold: ${HEALTHY}, unhealthy_threshold: ${UNHEALTHY} }`;

/** docs/architecture.md's deadline for a state change after `threshold` consecutive probe results. */
function deadlineMs(threshold: number): number {
  return (threshold + 1) * INTERVAL_MS + TIMEOUT_MS + 1000;
}

function closeWorkers(workers: readonly GrpcTestWorker[]): Promise<unknown> {
  return Promise.all(workers.map((w) => w.close()));
}

describe("grpc health and outlier detection", { timeout: 60_000 }, () => {
  it("a worker turning NOT_SERVING gets no new streams after the deadline, and returns after SERVING", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(await startGrpcWorkers(["a", "b", "c"]), closeWorkers);
      const b = workers[1] as GrpcTestWorker;
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            policy: "round_robin",
            healthCheck: HEALTH_CHECK,
            endpoints: workers.map((w) => w.address),
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const healthyGauge = (): Promise<number> =>
        metricValue(f.registry, "fulcrum_endpoint_healthy", { cluster: "w", endpoint: b.address });

      // Endpoints start healthy.
      assert.deepEqual(countNames(await callMany(client, 30, 10)), { a: 10, b: 10, c: 10 });

      b.healthStatus = "NOT_SERVING";
      await sleep(deadlineMs(UNHEALTHY));
      const callsBefore = b.calls;
      assert.deepEqual(countNames(await callMany(client, 60, 10)), { a: 30, c: 30 });
      assert.equal(b.calls, callsBefore, "no stream reached the NOT_SERVING worker");
      assert.equal(await healthyGauge(), 0);

      b.healthStatus = "SERVING";
      await sleep(deadlineMs(HEALTHY));
      assert.deepEqual(countNames(await callMany(client, 60, 10)), { a: 20, b: 20, c: 20 });
      assert.equal(await healthyGauge(), 1);
    } finally {
      await own.run();
    }
  });

  it("a Check answered later than `timeout` counts as a failed probe", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(await startGrpcWorkers(["a", "b"]), closeWorkers);
      const b = workers[1] as GrpcTestWorker;
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            policy: "round_robin",
            healthCheck: HEALTH_CHECK,
            endpoints: workers.map((w) => w.address),
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      b.healthDelayMs = TIMEOUT_MS * 2;
      await sleep(deadlineMs(UNHEALTHY));
      assert.deepEqual(countNames(await callMany(client, 20, 5)), { a: 20 });
      assert.equal(f.fulcrum.cluster("w").endpoints.get(b.address)?.health, "unhealthy");
    } finally {
      await own.run();
    }
  });

  it("probes counted at each worker match `interval` within ±10 % ±1, and ask for the configured service", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(await startGrpcWorkers(["a", "b", "c"]), closeWorkers);
      for (const w of workers) w.serviceHealth.set("test.Echo", "SERVING");
      own.add(
        await startFulcrum(
          grpcConfig({
            healthCheck: `{ type: grpc, service: test.Echo, interval: ${INTERVAL_MS}ms, timeout: ${TIMEOUT_MS}ms }`,
            endpoints: workers.map((w) => w.address),
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      await waitFor(() => workers.every((w) => w.probes > 0), 2000, "a first probe at every worker");
      const start = workers.map((w) => w.probes);
      const t0 = performance.now();
      await sleep(4000);
      const elapsed = performance.now() - t0;
      const expected = elapsed / INTERVAL_MS;
      workers.forEach((w, i) => {
        const counted = w.probes - (start[i] as number);
        assert.ok(
          Math.abs(counted - expected) <= expected * 0.1 + 1,
          `${w.name}: ${counted} probes in ${Math.round(elapsed)} ms, expected ${expected.toFixed(1)} ± 10 % ± 1`,
        );
        assert.deepEqual(new Set(w.probeServices), new Set(["test.Echo"]));
      });
    } finally {
      await own.run();
    }
  });

  it("outlier detection: a worker failing with UNAVAILABLE is ejected after consecutive_failures and returns after base_ejection_time", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(await startGrpcWorkers(["a", "b", "c"]), closeWorkers);
      const b = workers[1] as GrpcTestWorker;
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            policy: "round_robin",
            outlier: "{ consecutive_failures: 3, base_ejection_time: 2s, max_ejection_percent: 50 }",
            endpoints: workers.map((w) => w.address),
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const set = f.fulcrum.cluster("w").endpoints;
      b.failWith = { code: grpc.status.UNAVAILABLE, details: "b is failing" };

      // Sequential calls with a short gap, so that each outcome is recorded before the next pick.
      const outcomes = [];
      let ejectedAt = 0;
      for (let i = 0; i < 30; i++) {
        outcomes.push(await who(client));
        if (ejectedAt === 0 && set.get(b.address)?.ejected) ejectedAt = performance.now();
        await sleep(10);
      }
      assert.equal(b.calls, 3, "exactly consecutive_failures calls reached b before its ejection");
      const counts = countNames(outcomes);
      assert.equal(counts["!UNAVAILABLE"], 3, JSON.stringify(counts));
      assert.equal((counts.a ?? 0) + (counts.c ?? 0), 27, JSON.stringify(counts));
      assert.ok(
        Math.abs((counts.a ?? 0) - (counts.c ?? 0)) <= 1,
        `a and c alternate: ${JSON.stringify(counts)}`,
      );
      const failed = outcomes.find((o) => !o.ok);
      assert.ok(
        failed && !failed.ok && failed.details === "b is failing",
        "the worker's status is forwarded",
      );
      assert.equal(set.get(b.address)?.ejected, true);
      assert.equal(
        await metricValue(f.registry, "fulcrum_outlier_ejections_total", {
          cluster: "w",
          endpoint: b.address,
        }),
        1,
      );

      b.failWith = undefined;
      await waitFor(() => set.get(b.address)?.ejected === false, 2000 + 1000, "the ejection to end");
      const ejectedFor = performance.now() - ejectedAt;
      // ejectedAt was taken after the ejecting call returned, so the ejection is at least this old.
      assert.ok(ejectedFor >= 2000 - 150, `ejection ended after ${Math.round(ejectedFor)} ms, before 2 s`);
      assert.deepEqual(countNames(await callMany(client, 30, 3)), { a: 10, b: 10, c: 10 });
    } finally {
      await own.run();
    }
  });

  for (const { endpoints, failing, percent, ejected } of [
    { endpoints: 4, failing: 3, percent: 50, ejected: 2 },
    { endpoints: 3, failing: 2, percent: 10, ejected: 1 },
  ]) {
    it(`max_ejection_percent ${percent} with ${failing} of ${endpoints} failing: exactly ${ejected} ejected`, async () => {
      const own = new Teardown();
      try {
        const names = ["a", "b", "c", "d"].slice(0, endpoints);
        const workers = own.add(await startGrpcWorkers(names), closeWorkers);
        const bad = workers.slice(1, 1 + failing);
        for (const w of bad) w.failWith = { code: grpc.status.UNAVAILABLE, details: `${w.name} is failing` };
        const f = own.add(
          await startFulcrum(
            grpcConfig({
              policy: "round_robin",
              outlier: `{ consecutive_failures: 2, base_ejection_time: 30s, max_ejection_percent: ${percent} }`,
              endpoints: workers.map((w) => w.address),
            }),
          ),
          (x) => x.fulcrum.stop(0),
        );
        const client = own.add(echoClient(f.target("g")), (c) => c.close());
        const set = f.fulcrum.cluster("w").endpoints;
        for (let i = 0; i < 20 * endpoints; i++) {
          await who(client);
          await sleep(5);
        }
        const ejectedNow = bad.filter((w) => set.get(w.address)?.ejected);
        assert.equal(ejectedNow.length, ejected, `ejected: ${ejectedNow.map((w) => w.name).join(", ")}`);
        assert.equal(await metricSum(f.registry, "fulcrum_outlier_ejections_total"), ejected);
        for (const w of bad.filter((x) => !ejectedNow.includes(x)))
          assert.ok(w.calls > 2, `${w.name}, failing but not ejectable, still gets calls (${w.calls})`);
        assert.equal(set.get((workers[0] as GrpcTestWorker).address)?.ejected, false);
      } finally {
        await own.run();
      }
    });
  }
});
