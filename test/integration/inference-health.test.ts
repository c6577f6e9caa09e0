/**
 * Inference awareness, part 1, through Fulcrum with real grpc-js clients speaking the Triton and
 * TorchServe protos to simulated workers: the triton and torchserve health dialects (readiness flips
 * move traffic by docs/architecture.md's deadline `(threshold + 1) × interval + timeout + 1s`; per-model readiness
 * is recorded per endpoint), and `policy: least_loaded` under bounded load (a slow worker and a worker
 * reporting a deep queue get less), with one and with two worker threads.
 *
 * load_metrics has one port for the whole cluster, as on a real fleet (one Triton per host, metrics on
 * 8002), so the workers here sit on distinct loopback addresses (127.0.0.2, .3, …) sharing one metrics
 * port.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { torchserveService, tritonService } from "../../src/protos/inference-protos.js";
import { SimTorchServeWorker } from "../../src/sim/sim-torchserve-worker.js";
import { SimTritonWorker, type SimTritonWorkerOptions } from "../../src/sim/sim-triton-worker.js";
import { Teardown, grpcConfig, sleep } from "../helpers/grpc-client.js";
import { clientOf, countUnderLoad, inferWho, predictWho } from "../helpers/inference-client.js";
import { startFulcrum, waitFor } from "../helpers/harness.js";

const INTERVAL_MS = 200;
const TIMEOUT_MS = 200;
const THRESHOLD = 2;
const thresholds = `interval: ${INTERVAL_MS}ms, timeout: ${TIMEOUT_MS}ms, healthy_threshold: ${THRESHOLD}, unhealthy_threshold: ${THRESHOLD}`;

/** docs/architecture.md's deadline for a state change after `threshold` consecutive probe results. */
const DEADLINE_MS = (THRESHOLD + 1) * INTERVAL_MS + TIMEOUT_MS + 1000;

interface Fleet {
  readonly workers: SimTritonWorker[];
  readonly addresses: string[];
  readonly metricsPort: number;
}

/**
 * Triton workers on 127.0.0.2, .3, … (gRPC on any port), each with its metrics endpoint on one shared
 * port, as one Triton per host would have.
 */
async function startTritonFleet(own: Teardown, specs: readonly SimTritonWorkerOptions[]): Promise<Fleet> {
  const workers: SimTritonWorker[] = [];
  const addresses: string[] = [];
  let metricsPort = 0;
  for (const [i, spec] of specs.entries()) {
    const host = `127.0.0.${i + 2}`;
    const w = own.add(new SimTritonWorker(spec), (x) => x.close());
    const bound = await w.listen(host, 0);
    metricsPort = (await w.listenMetrics(host, metricsPort)).port;
    workers.push(w);
    addresses.push(bound.address);
  }
  return { workers, addresses, metricsPort };
}

/** Fulcrum with `least_loaded` over `fleet`, scraping the workers' metrics every 100 ms. */
async function startLeastLoaded(own: Teardown, fleet: Fleet, threads: number) {
  return own.add(
    await startFulcrum(
      `threads: ${threads}\n` +
        grpcConfig({
          policy: "least_loaded",
          endpoints: fleet.addresses,
          extra: [`load_metrics: { port: ${fleet.metricsPort}, path: /metrics, interval: 100ms }`],
        }),
    ),
    (x) => x.fulcrum.stop(0),
  );
}

describe("inference health dialects and least_loaded", { timeout: 120_000 }, () => {
  it("triton: ServerReady false moves traffic away by the deadline; ready again brings it back", async () => {
    const own = new Teardown();
    try {
      const fleet = await startTritonFleet(own, [{ name: "a" }, { name: "b" }, { name: "c" }]);
      const b = fleet.workers[1] as SimTritonWorker;
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            policy: "round_robin",
            healthCheck: `{ type: triton, ${thresholds} }`,
            endpoints: fleet.addresses,
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(clientOf(tritonService(), f), (c) => c.close());
      const health = (): string | undefined =>
        f.fulcrum.cluster("w").endpoints.get(fleet.addresses[1] as string)?.health;

      assert.deepEqual(await countUnderLoad(() => inferWho(client), 30, 3), { a: 10, b: 10, c: 10 });
      await waitFor(() => b.readyProbes >= 2, DEADLINE_MS, "ServerReady probes at the worker");

      b.setReady(false);
      const flipped = Date.now();
      await waitFor(() => health() === "unhealthy", DEADLINE_MS, "b unhealthy within the deadline");
      const took = Date.now() - flipped;
      const before = b.calls;
      assert.deepEqual(await countUnderLoad(() => inferWho(client), 40, 4), { a: 20, c: 20 });
      assert.equal(b.calls, before, "no inference reached the worker that is not ready");

      b.setReady(true);
      await waitFor(() => health() === "healthy", DEADLINE_MS, "b healthy again within the deadline");
      assert.deepEqual(await countUnderLoad(() => inferWho(client), 30, 3), { a: 10, b: 10, c: 10 });
      assert.ok(took <= DEADLINE_MS, `${took} ms`);
    } finally {
      await own.run();
    }
  });

  it("triton: ModelReady is tracked per endpoint and model with the thresholds; the endpoint stays healthy", async () => {
    const own = new Teardown();
    try {
      const models = ["simple", "other"];
      const fleet = await startTritonFleet(own, [
        { name: "a", models },
        { name: "b", models },
      ]);
      const [a, b] = fleet.workers as [SimTritonWorker, SimTritonWorker];
      const [addrA, addrB] = fleet.addresses as [string, string];
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            policy: "round_robin",
            healthCheck: `{ type: triton, ${thresholds} }`,
            endpoints: fleet.addresses,
            extra: ['models: [{ name: simple }, { name: other, version: "1" }]'],
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const cluster = f.fulcrum.cluster("w");
      const other = { name: "other", version: "1" };
      const simple = { name: "simple", version: "" };
      const client = own.add(clientOf(tritonService(), f), (c) => c.close());

      b.setModelReady("other", false);
      const flipped = Date.now();
      await waitFor(() => !cluster.models.isReady(addrB, other), DEADLINE_MS, "other not ready on b");
      assert.ok(Date.now() - flipped <= DEADLINE_MS);
      assert.equal(cluster.models.isReady(addrB, simple), true);
      assert.equal(cluster.models.isReady(addrA, other), true);
      assert.deepEqual(
        cluster.models.readyEndpoints(other, cluster.endpoints.endpoints).map((e) => e.address),
        [addrA],
      );
      // The server is ready, so the endpoint is healthy and serves the models it has.
      assert.equal(cluster.endpoints.get(addrB)?.health, "healthy");
      assert.deepEqual(await countUnderLoad(() => inferWho(client, "simple"), 20, 2), { a: 10, b: 10 });
      assert.ok(a.modelReadyProbes > 0 && b.modelReadyProbes > 0, "ModelReady asked at each worker");

      // A server that is not ready takes the endpoint out; its models keep their state meanwhile.
      b.setModelReady("other", true);
      b.setReady(false);
      await waitFor(() => cluster.endpoints.get(addrB)?.health === "unhealthy", DEADLINE_MS, "b unhealthy");
      assert.equal(cluster.models.isReady(addrB, other), false);

      b.setReady(true);
      await waitFor(
        () => cluster.endpoints.get(addrB)?.health === "healthy" && cluster.models.isReady(addrB, other),
        DEADLINE_MS,
        "b healthy with other ready",
      );
    } finally {
      await own.run();
    }
  });

  it("torchserve: Ping JSON other than Healthy (or not JSON) moves traffic away by the deadline; Healthy brings it back", async () => {
    const own = new Teardown();
    try {
      const workers = ["a", "b", "c"].map((name) =>
        own.add(new SimTorchServeWorker({ name }), (w) => w.close()),
      );
      const addresses = await Promise.all(workers.map(async (w) => (await w.listen()).address));
      const b = workers[1] as SimTorchServeWorker;
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            policy: "round_robin",
            healthCheck: `{ type: torchserve, ${thresholds} }`,
            endpoints: addresses,
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(clientOf(torchserveService(), f), (c) => c.close());
      const health = (): string | undefined =>
        f.fulcrum.cluster("w").endpoints.get(addresses[1] as string)?.health;

      assert.deepEqual(await countUnderLoad(() => predictWho(client), 30, 3), { a: 10, b: 10, c: 10 });

      b.setHealth("Partial Healthy");
      let flipped = Date.now();
      await waitFor(() => health() === "unhealthy", DEADLINE_MS, "b unhealthy on Partial Healthy");
      assert.ok(Date.now() - flipped <= DEADLINE_MS);
      const before = b.calls;
      assert.deepEqual(await countUnderLoad(() => predictWho(client), 40, 4), { a: 20, c: 20 });
      assert.equal(b.calls, before);

      b.setHealth("Healthy");
      await waitFor(() => health() === "healthy", DEADLINE_MS, "b healthy again");

      b.setPingBody("Healthy"); // not a JSON document
      flipped = Date.now();
      await waitFor(() => health() === "unhealthy", DEADLINE_MS, "b unhealthy on an unparsable Ping");
      assert.ok(Date.now() - flipped <= DEADLINE_MS);
      assert.ok(b.pings > 0);
    } finally {
      await own.run();
    }
  });

  for (const threads of [1, 2]) {
    // threads: 2 was a todo from 2026-11 (then 150 calls; the slow worker got 14–24 of them in one run
    // of three on a loaded machine). With 300 calls and this bound it has not come near failing: 27
    // runs on 2 cores, alone and beside 2 or 6 busy loops, both engines: the slow worker got 2–9.
    it(`least_loaded (threads: ${threads}): a worker 6× slower gets almost nothing, where counting active streams gives it ~15 %`, async () => {
      const own = new Teardown();
      try {
        const fleet = await startTritonFleet(own, [
          { name: "fast1", baseLatencyMs: 20 },
          { name: "slow", baseLatencyMs: 20, speed: 6 },
          { name: "fast2", baseLatencyMs: 20 },
        ]);
        const f = await startLeastLoaded(own, fleet, threads);
        const client = own.add(clientOf(tritonService(), f), (c) => c.close());
        // Two calls in flight: active counts alone hardly tell the workers apart (least_connections and
        // p2c give the slow one 22–25 of 150 here, round robin 50); its latency does.
        // With two threads each keeps its own latency estimates, and a loaded machine blurs them:
        // more calls, and a bound still well below the ~15 % that active counts alone give.
        const total = threads === 1 ? 150 : 300;
        const counts = await countUnderLoad(() => inferWho(client), total, 2);
        const slow = counts["slow"] ?? 0;
        assert.equal((counts["fast1"] ?? 0) + slow + (counts["fast2"] ?? 0), total, JSON.stringify(counts));
        const bound = threads === 1 ? 0.08 : 0.1;
        assert.ok(slow <= total * bound, `slow got ${slow} of ${total}: ${JSON.stringify(counts)}`);
      } finally {
        await own.run();
      }
    });

    it(`least_loaded (threads: ${threads}): a worker reporting a deep queue in load_metrics gets less`, async () => {
      const own = new Teardown();
      try {
        const fleet = await startTritonFleet(own, [
          { name: "a", baseLatencyMs: 20 },
          { name: "b", baseLatencyMs: 20 },
          { name: "c", baseLatencyMs: 20 },
        ]);
        const b = fleet.workers[1] as SimTritonWorker;
        // Requests other clients queued at b (another Fulcrum replica, say): invisible to this Fulcrum's
        // active counts and, with equal service times, to its latency estimates.
        b.setExternalPending("simple", 40);
        const f = await startLeastLoaded(own, fleet, threads);
        await waitFor(
          () => fleet.workers.every((w) => w.metricsScrapes >= 2),
          5000,
          "two scrapes at every worker",
        );
        const client = own.add(clientOf(tritonService(), f), (c) => c.close());
        const total = 300;
        const counts = await countUnderLoad(() => inferWho(client), total, 6);
        const got = counts["b"] ?? 0;
        assert.equal((counts["a"] ?? 0) + got + (counts["c"] ?? 0), total, JSON.stringify(counts));
        assert.ok(got < total * 0.1, `b got ${got} of ${total}: ${JSON.stringify(counts)}`);

        // Its queue drained (as the scrapes see it): b takes its share again.
        b.setExternalPending("simple", 0);
        const scrapes = b.metricsScrapes;
        await waitFor(() => b.metricsScrapes >= scrapes + 2, 5000, "two more scrapes at b");
        await sleep(50);
        const after = await countUnderLoad(() => inferWho(client), total, 6);
        assert.ok((after["b"] ?? 0) > total * 0.2, `b got ${after["b"] ?? 0} of ${total} after draining`);
      } finally {
        await own.run();
      }
    });
  }
});
