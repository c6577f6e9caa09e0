/**
 * Several load metrics (`load_metrics.metrics`): the weighted sum of every metric's samples that carry
 * its labels, from Prometheus text as Triton and TensorRT-LLM export it; and `stale_after`: an
 * endpoint whose last scrape is older counts as saturated, so least_loaded sends it nothing while
 * another endpoint is usable, and a fast failure elsewhere still gets a finite penalty.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Balancer } from "../../src/balancer/balancer.js";
import { EndpointSet, type Endpoint } from "../../src/balancer/endpoint-set.js";
import { LoadCosts, type QueueView } from "../../src/balancer/load-cost.js";
import { seededRandom } from "../../src/balancer/random-seeded.js";
import { sumPromSeries, type LoadSeries } from "../../src/health/load-metrics-scraper.js";

const TEXT = `# HELP nv_inference_pending_request_count Pending requests per model.
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{model="llama",version="1"} 3
nv_inference_pending_request_count{model="embed",version="1"} 40
nv_trt_llm_request_metrics{model="llama",request_type="waiting",version="1"} 5
nv_trt_llm_request_metrics{model="llama",request_type="scheduled",version="1"} 8
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction",model="llama",version="1"} 0.75
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="used",model="llama",version="1"} 1200
odd_metric{path="a\\"b,c}d"} 2
`;

const series = (name: string, weight = 1, labels: Record<string, string> = {}): LoadSeries => ({
  name,
  weight,
  labels,
});

describe("load metrics: several weighted series, and staleness", { timeout: 10_000 }, () => {
  it("sums each metric's matching samples times its weight", () => {
    const pending = series("nv_inference_pending_request_count", 1, { model: "llama" });
    const waiting = series("nv_trt_llm_request_metrics", 1, { request_type: "waiting" });
    const kv = series("nv_trt_llm_kv_cache_block_metrics", 20, { kv_cache_block_type: "fraction" });
    assert.equal(sumPromSeries(TEXT, [pending]), 3);
    assert.equal(sumPromSeries(TEXT, [series("nv_inference_pending_request_count")]), 43);
    assert.equal(sumPromSeries(TEXT, [pending, waiting, kv]), 3 + 5 + 20 * 0.75);
    // A label value with an escaped quote, a comma and a brace is read whole.
    assert.equal(sumPromSeries(TEXT, [series("odd_metric", 2, { path: 'a"b,c}d' })]), 4);
    assert.equal(sumPromSeries(TEXT, [series("odd_metric", 2, { path: "a" })]), undefined);
  });

  it("a metric the worker does not export adds nothing; none of them at all is no load (a failed scrape)", () => {
    const pending = series("nv_inference_pending_request_count", 1, { model: "llama" });
    assert.equal(sumPromSeries(TEXT, [pending, series("vllm:num_requests_waiting", 5)]), 3);
    assert.equal(sumPromSeries(TEXT, [series("vllm:num_requests_waiting")]), undefined);
    assert.equal(
      sumPromSeries(TEXT, [series("nv_inference_pending_request_count", 1, { model: "x" })]),
      undefined,
    );
  });

  it("stale_after: an endpoint not scraped for longer is saturated; it gets nothing while another is usable", () => {
    let clock = 1_000_000;
    const set = new EndpointSet("c", [
      { address: "10.0.0.1:8001", weight: 1 },
      { address: "10.0.0.2:8001", weight: 1 },
      { address: "10.0.0.3:8001", weight: 1 },
    ]);
    const [a, b, c] = set.endpoints as [Endpoint, Endpoint, Endpoint];
    const scrapedAt = new Map<Endpoint, number>([
      [a, clock],
      [b, clock - 5000], // five intervals ago: past stale_after (3 s)
      [c, clock],
    ]);
    const view: QueueView = { queueDepthOf: () => 0, queueScrapedAtOf: (e) => scrapedAt.get(e) ?? 0 };
    const costs = new LoadCosts({
      now: () => clock,
      load: set,
      queue: { view, intervalMs: 1000, staleMs: 3000 },
    });
    const balancer = new Balancer(set, { policy: "least_loaded", random: seededRandom(7), costs });
    const counts = new Map<Endpoint, number>();
    for (let i = 0; i < 3000; i++) {
      const r = balancer.pick({});
      assert.equal(r.kind, "complete");
      if (r.kind === "complete") counts.set(r.endpoint, (counts.get(r.endpoint) ?? 0) + 1);
    }
    assert.equal(counts.get(b) ?? 0, 0);
    assert.equal((counts.get(a) ?? 0) + (counts.get(c) ?? 0), 3000);

    // A fast failure on a is penalised by the others' costs, the saturated b left out: finite.
    costs.track(set.endpoints);
    costs.record(c.address, 10, 0);
    costs.record(a.address, 1, 14 /* UNAVAILABLE */);
    assert.ok(Number.isFinite(costs.estimateOf(a.address)));

    // Scraped again: b is back in the comparison.
    scrapedAt.set(b, clock);
    clock += 1;
    let gotB = 0;
    for (let i = 0; i < 3000; i++) {
      const r = balancer.pick({});
      if (r.kind === "complete" && r.endpoint === b) gotB++;
    }
    assert.ok(gotB > 300, `b got ${gotB} of 3000 once scraped again`);
  });

  it("every endpoint saturated: picks still succeed (the policy's draw decides)", () => {
    const set = new EndpointSet("c", [
      { address: "10.0.0.1:8001", weight: 1 },
      { address: "10.0.0.2:8001", weight: 1 },
    ]);
    const view: QueueView = { queueDepthOf: () => 0, queueScrapedAtOf: () => 0 };
    const costs = new LoadCosts({
      now: () => 10_000_000,
      load: set,
      queue: { view, intervalMs: 100, staleMs: 500 },
    });
    const balancer = new Balancer(set, { policy: "least_loaded", random: seededRandom(1), costs });
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const r = balancer.pick({});
      assert.equal(r.kind, "complete");
      if (r.kind === "complete") seen.add(r.endpoint.address);
    }
    assert.equal(seen.size, 2);
  });
});
