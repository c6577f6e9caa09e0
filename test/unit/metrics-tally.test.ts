import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AggregatorRegistry, Counter, Histogram, Registry } from "prom-client";
import { TalliedHistogram, TallyBook } from "../../src/metrics/metrics-tally.js";

const BUCKETS = [0.001, 0.01, 0.1, 1];
const config = (registry: Registry) => ({
  name: "t_seconds",
  help: "test histogram",
  labelNames: ["listener", "cluster"] as const,
  buckets: BUCKETS,
  registers: [registry],
});

/** A stock prom-client histogram and a tallied one, fed the same observations in `feed`. */
function both(feed: (h: Histogram<"listener" | "cluster">, tallies: boolean) => void): {
  stock: Registry;
  tallied: Registry;
} {
  const stock = new Registry();
  const tallied = new Registry();
  feed(new Histogram(config(stock)), false);
  feed(new TalliedHistogram(config(tallied)), true);
  return { stock, tallied };
}

describe("metric tallies", { timeout: 10_000 }, () => {
  it("a tallied histogram exposes exactly what prom-client's histogram exposes for the same observations", async () => {
    const values = [0.0005, 0.001, 0.002, 0.05, 0.5, 1, 3, 0];
    const { stock, tallied } = both((h, tallies) => {
      const a = { listener: "grpc", cluster: "gpu" };
      const b = { listener: "grpc", cluster: "cpu" };
      if (tallies) {
        const ta = (h as TalliedHistogram<"listener" | "cluster">).tally(a);
        for (const v of values) ta.observe(v);
      } else {
        for (const v of values) h.observe(a, v);
      }
      h.observe(b, 0.02);
      h.labels("tcp", "gpu").observe(0.3);
      h.zero({ listener: "idle", cluster: "gpu" });
    });
    assert.equal(await tallied.metrics(), await stock.metrics());
    assert.deepEqual(await tallied.getMetricsAsJSON(), await stock.getMetricsAsJSON());
  });

  it("reset empties the series; handles held by the hot path keep counting", async () => {
    const registry = new Registry();
    const h = new TalliedHistogram(config(registry));
    const t = h.tally({ listener: "grpc", cluster: "gpu" });
    t.observe(0.5);
    h.reset();
    assert.equal((await h.get()).values.length, 0);
    t.observe(0.05);
    const count = (await h.get()).values.find((v) => v.metricName === "t_seconds_count");
    assert.equal(count?.value, 1);
    h.remove("grpc", "gpu");
    assert.equal((await h.get()).values.length, 0);
  });

  it("worker threads' tallied histograms aggregate like prom-client's", async () => {
    const regs = [new Registry(), new Registry()];
    for (const [i, r] of regs.entries()) {
      const h = new TalliedHistogram(config(r));
      h.tally({ listener: "grpc", cluster: "gpu" }).observe(0.005 * (i + 1));
    }
    const merged = AggregatorRegistry.aggregate(await Promise.all(regs.map((r) => r.getMetricsAsJSON())));
    const text = await merged.metrics();
    assert.match(text, /t_seconds_bucket\{le="0.01",listener="grpc",cluster="gpu"\} 2/);
    assert.match(text, /t_seconds_count\{listener="grpc",cluster="gpu"\} 2/);
  });

  it("counter tallies reach the counter when it is read", async () => {
    const registry = new Registry();
    const book = new TallyBook<"listener">();
    const counter = new Counter({
      name: "c_total",
      help: "test counter",
      labelNames: ["listener"],
      registers: [registry],
      collect: () => book.flush(),
    });
    book.counter = counter;
    const t = book.tally({ listener: "grpc" });
    t.add(2);
    t.add();
    assert.equal(book.tally({ listener: "grpc" }), t);
    assert.match(await registry.metrics(), /c_total\{listener="grpc"\} 3/);
  });
});
