/**
 * `least_loaded` with several load metrics scraped every 50 ms (`load_metrics.metrics`, weighted and
 * filtered by labels) and `stale_after`, through Fulcrum with grpc-js Triton clients: a queue on a model
 * the filter leaves out does not repel traffic; a KV cache near full (TensorRT-LLM's fraction gauge,
 * weighted) does; a worker whose metrics stop answering counts as saturated once its last scrape is
 * older than stale_after and gets no call at all; scraped again, it is back. Runs on both engines.
 *
 * As on a real fleet, one metrics port for the cluster: the workers sit on 127.0.0.2, .3 and .4.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { tritonService } from "../../src/protos/inference-protos.js";
import { SimTritonWorker } from "../../src/sim/sim-triton-worker.js";
import { Teardown, grpcConfig, sleep } from "../helpers/grpc-client.js";
import { clientOf, countUnderLoad, inferWho } from "../helpers/inference-client.js";
import { startFulcrum, waitFor } from "../helpers/harness.js";

const KV_FRACTION = 'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction",model="simple"}';

describe("least_loaded: several load metrics and staleness", { timeout: 60_000 }, () => {
  it("a filtered-out queue does not count, a full KV cache does, stale metrics mean saturated", async () => {
    const own = new Teardown();
    try {
      const workers: SimTritonWorker[] = [];
      const addresses: string[] = [];
      let metricsPort = 0;
      for (const [i, name] of ["a", "b", "c"].entries()) {
        const host = `127.0.0.${i + 2}`;
        const w = own.add(new SimTritonWorker({ name, models: ["simple", "other"], baseLatencyMs: 5 }), (x) =>
          x.close(),
        );
        addresses.push((await w.listen(host, 0)).address);
        metricsPort = (await w.listenMetrics(host, metricsPort)).port;
        workers.push(w);
      }
      const [, b, c] = workers as [SimTritonWorker, SimTritonWorker, SimTritonWorker];
      const metrics = [
        "{ name: nv_inference_pending_request_count, labels: { model: simple } }",
        "{ name: nv_trt_llm_kv_cache_block_metrics, weight: 100, labels: { kv_cache_block_type: fraction } }",
      ].join(", ");
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            policy: "least_loaded",
            endpoints: addresses,
            extra: [
              `load_metrics: { port: ${metricsPort}, interval: 50ms, stale_after: 300ms, metrics: [${metrics}] }`,
            ],
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(clientOf(tritonService(), f), (x) => x.close());
      const scrapesOf = (w: SimTritonWorker, n: number, what: string) => {
        const from = w.metricsScrapes;
        return waitFor(() => w.metricsScrapes >= from + n, 5000, what);
      };
      const total = 300;

      // 40 queued on "other" at b: the filter reads model="simple" only.
      b.setExternalPending("other", 40);
      await scrapesOf(b, 2, "two scrapes at b");
      const filtered = await countUnderLoad(() => inferWho(client), total, 6);
      assert.ok((filtered["b"] ?? 0) > total * 0.2, `b: ${JSON.stringify(filtered)}`);

      // b's KV cache 90 % full: 100 × 0.9 = a load of 90.
      b.setExportedMetric(KV_FRACTION, 0.9);
      await scrapesOf(b, 2, "two scrapes at b after its KV cache filled");
      const full = await countUnderLoad(() => inferWho(client), total, 6);
      assert.ok((full["b"] ?? 0) < total * 0.1, `b with a full KV cache: ${JSON.stringify(full)}`);
      b.setExportedMetric(KV_FRACTION, 0.1);

      // c's metrics go away: 300 ms after its last scrape it is saturated and gets nothing.
      await c.closeMetrics();
      await sleep(500);
      const blind = await countUnderLoad(() => inferWho(client), total, 6);
      assert.equal(blind["c"] ?? 0, 0, `c without metrics: ${JSON.stringify(blind)}`);
      assert.equal((blind["a"] ?? 0) + (blind["b"] ?? 0), total, JSON.stringify(blind));

      // Scraped again: c is back.
      await c.listenMetrics("127.0.0.4", metricsPort);
      await scrapesOf(c, 2, "two scrapes at c again");
      const back = await countUnderLoad(() => inferWho(client), total, 6);
      assert.ok((back["c"] ?? 0) > total * 0.1, `c scraped again: ${JSON.stringify(back)}`);
    } finally {
      await own.run();
    }
  });
});
