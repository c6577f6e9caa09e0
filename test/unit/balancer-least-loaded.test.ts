/**
 * least_loaded, pure: the peak-EWMA estimator, the scrape freshness weight, and seeded discrete-event
 * simulations (100k picks each, fake clock) of a cluster under bounded load: equal endpoints share
 * evenly, a slower endpoint gets less traffic, a fast-failing one is treated as expensive, and a deep
 * scraped queue repels traffic while fresh but not once the scrape is stale.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Balancer } from "../../src/balancer/balancer.js";
import { EndpointSet, type Endpoint } from "../../src/balancer/endpoint-set.js";
import { LoadCosts, freshness, type LoadState, type QueueView } from "../../src/balancer/load-cost.js";
import { PeakEwma } from "../../src/balancer/load-peak-ewma.js";
import { seededRandom } from "../../src/balancer/random-seeded.js";

const ADDRS = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"];
const OK = 0;
const CANCELLED = 1;
const UNAVAILABLE = 14;

/** How an endpoint behaves in a simulation: its latency and the status it answers with. */
interface Behaviour {
  readonly latencyMs: number;
  readonly status?: number;
}

interface SimOptions {
  readonly behaviours: readonly Behaviour[];
  readonly picks?: number;
  /** Time between arrivals (ms); with the latencies it sets the load. */
  readonly arrivalMs?: number;
  readonly seed?: number;
  /** Scraped queue depth of each endpoint and its age at every pick. */
  readonly queue?: {
    readonly depths: readonly number[];
    readonly ageMs: number;
    readonly intervalMs: number;
  };
}

/**
 * Arrivals every `arrivalMs` on a fake clock; each is picked by least_loaded, counted active until it
 * completes `latencyMs` later, then reported with its status. Returns each endpoint's share of picks.
 */
function simulate(o: SimOptions): number[] {
  const picks = o.picks ?? 100_000;
  const arrivalMs = o.arrivalMs ?? 0.1;
  let clock = 1_000_000;
  const set = new EndpointSet(
    "c",
    ADDRS.slice(0, o.behaviours.length).map((address) => ({ address, weight: 1 })),
  );
  const endpoints = set.endpoints;
  const q = o.queue;
  const view: QueueView | undefined = q && {
    queueDepthOf: (e) => q.depths[endpoints.indexOf(e)] ?? 0,
    queueScrapedAtOf: () => clock - q.ageMs,
  };
  const costs = new LoadCosts({
    now: () => clock,
    load: set,
    queue: view && q ? { view, intervalMs: q.intervalMs } : undefined,
  });
  const balancer = new Balancer(set, { policy: "least_loaded", random: seededRandom(o.seed ?? 1), costs });
  // Constant latency per endpoint: each endpoint's completions are already in time order.
  const pending: number[][] = endpoints.map(() => []);
  const heads = endpoints.map(() => 0);
  const counts = endpoints.map(() => 0);
  const completeUntil = (t: number): void => {
    for (;;) {
      let next = -1;
      for (let i = 0; i < endpoints.length; i++) {
        const at = (pending[i] as number[])[heads[i] as number];
        if (
          at !== undefined &&
          at <= t &&
          (next < 0 || at < ((pending[next] as number[])[heads[next] as number] as number))
        )
          next = i;
      }
      if (next < 0) return;
      const at = (pending[next] as number[])[heads[next] as number] as number;
      heads[next] = (heads[next] as number) + 1;
      clock = at;
      const e = endpoints[next] as Endpoint;
      const b = o.behaviours[next] as Behaviour;
      set.release(e);
      costs.record(e.address, b.latencyMs, b.status ?? OK);
    }
  };
  for (let n = 0; n < picks; n++) {
    const t = 1_000_000 + n * arrivalMs;
    completeUntil(t);
    clock = t;
    const r = balancer.pick({});
    assert.equal(r.kind, "complete");
    if (r.kind !== "complete") break;
    const i = endpoints.indexOf(r.endpoint);
    counts[i] = (counts[i] as number) + 1;
    set.acquire(r.endpoint);
    (pending[i] as number[]).push(t + (o.behaviours[i] as Behaviour).latencyMs);
  }
  return counts.map((c) => c / picks);
}

function fmt(shares: readonly number[]): string {
  return shares.map((s) => s.toFixed(3)).join(" / ");
}

describe("least_loaded", { timeout: 60_000 }, () => {
  describe("peak EWMA", () => {
    it("a sample above the estimate replaces it at once (peak)", () => {
      const e = new PeakEwma(10, 0, 10_000);
      e.observe(100, 1);
      assert.ok(Math.abs(e.valueAt(1) - 100) < 1e-9);
    });

    it("a lower sample moves the estimate by 1 − exp(−Δt/τ) of the gap", () => {
      const e = new PeakEwma(100, 0, 10_000);
      e.observe(0, 10_000); // one τ later: decayed to 100/e, then blended with 0
      assert.ok(Math.abs(e.valueAt(10_000) - 100 * Math.exp(-1)) < 1e-9);
      const f = new PeakEwma(100, 0, 10_000);
      f.observe(50, 5_000);
      const w = Math.exp(-0.5);
      assert.ok(Math.abs(f.valueAt(5_000) - (100 * w + 50 * (1 - w))) < 1e-9);
    });

    it("frequent samples smooth by time, not by count: 1000 samples in 10 ms barely move it", () => {
      const e = new PeakEwma(100, 0, 10_000);
      for (let i = 1; i <= 1000; i++) e.observe(10, i / 100);
      assert.ok(e.valueAt(10) > 99, `estimate ${e.valueAt(10)}`);
    });

    it("decays towards 0 while no sample arrives, so a penalised endpoint is tried again", () => {
      const e = new PeakEwma(1000, 0, 10_000);
      assert.ok(Math.abs(e.valueAt(30_000) - 1000 * Math.exp(-3)) < 1e-9);
      assert.equal(e.valueAt(-5), 1000, "a clock step back does not grow it");
    });

    it("refuses a non-positive decay time", () => {
      assert.throws(() => new PeakEwma(0, 0, 0), RangeError);
    });
  });

  describe("scrape freshness", () => {
    const cases: { ageIntervals: number; want: number }[] = [
      { ageIntervals: 0, want: 1 },
      { ageIntervals: 1.5, want: 1 },
      { ageIntervals: 2, want: 1 },
      { ageIntervals: 3, want: 0.5 },
      { ageIntervals: 4, want: 0.25 },
      { ageIntervals: 11, want: 2 ** -9 },
      { ageIntervals: 12, want: 0 },
      { ageIntervals: 1e6, want: 0 },
      { ageIntervals: -1, want: 1 },
    ];
    for (const c of cases) {
      it(`a scrape ${c.ageIntervals} intervals old weighs ${c.want}`, () => {
        assert.ok(Math.abs(freshness(c.ageIntervals * 1000, 1000) - c.want) < 1e-12);
      });
    }
  });

  describe("cost", () => {
    it("(active + 1) × latency / weight; queue depth counts when it exceeds active; CANCELLED is ignored", () => {
      let clock = 0;
      const set = new EndpointSet("c", [
        { address: "10.0.0.1:80", weight: 1 },
        { address: "10.0.0.2:80", weight: 2 },
      ]);
      const [a, b] = set.endpoints as [Endpoint, Endpoint];
      const depths = new Map([[b, 9]]);
      const costs = new LoadCosts({
        now: () => clock,
        load: set,
        queue: {
          view: { queueDepthOf: (e) => depths.get(e) ?? 0, queueScrapedAtOf: () => clock },
          intervalMs: 1000,
        },
      });
      const [sa, sb] = costs.track([a, b]) as [LoadState, LoadState];
      costs.record(a.address, 20, OK);
      costs.record(b.address, 20, OK);
      costs.record(a.address, 5000, CANCELLED);
      assert.ok(Math.abs(costs.cost(a, sa, 3, clock) - 4 * 20.01) < 1e-9);
      // b: max(active 3, queue 9) + 1 = 10, over weight 2.
      assert.ok(Math.abs(costs.cost(b, sb, 3, clock) - (10 * 20.01) / 2) < 1e-9);
      assert.ok(Math.abs(costs.cost(b, sb, 12, clock) - (13 * 20.01) / 2) < 1e-9);
      // One τ later without samples: the latency decayed to 20/e, the queue scrape is still fresh.
      clock += 10_000;
      assert.ok(Math.abs(costs.cost(a, sa, 0, clock) - (20 * Math.exp(-1) + 0.01)) < 1e-9);
    });

    it("a fast UNAVAILABLE counts as max(100 ms, 4 × the highest cost of the others)", () => {
      const clock = 0;
      const set = new EndpointSet(
        "c",
        ADDRS.map((address) => ({ address, weight: 1 })),
      );
      const costs = new LoadCosts({ now: () => clock, load: set });
      costs.track(set.endpoints);
      costs.record(ADDRS[0] as string, 10, OK);
      costs.record(ADDRS[1] as string, 60, OK);
      costs.record(ADDRS[2] as string, 1, UNAVAILABLE);
      // Idle others: costs 1 × (10 + 0.01) and 1 × (60 + 0.01).
      assert.ok(Math.abs((costs.estimateOf(ADDRS[2] as string) ?? 0) - 4 * 60.01) < 1e-9);
      // With 9 streams in flight on the first, its cost (10 × 10.01) is the highest.
      for (let i = 0; i < 9; i++) set.acquire(set.endpoints[0] as Endpoint);
      costs.record(ADDRS[2] as string, 1, UNAVAILABLE);
      assert.ok(Math.abs((costs.estimateOf(ADDRS[2] as string) ?? 0) - 4 * 100.1) < 1e-9);
      const alone = new LoadCosts({ now: () => clock, load: set });
      alone.track(set.endpoints.slice(0, 1));
      alone.record(ADDRS[0] as string, 1, UNAVAILABLE);
      assert.equal(alone.estimateOf(ADDRS[0] as string), 100);
    });

    it("a new endpoint starts at the mean of the current estimates", () => {
      const clock = 0;
      const set = new EndpointSet(
        "c",
        ADDRS.map((address) => ({ address, weight: 1 })),
      );
      const costs = new LoadCosts({ now: () => clock, load: set });
      costs.track(set.endpoints.slice(0, 2));
      costs.record(ADDRS[0] as string, 10, OK);
      costs.record(ADDRS[1] as string, 30, OK);
      costs.track(set.endpoints);
      assert.equal(costs.estimateOf(ADDRS[2] as string), 20);
      // Leaving the tracked set forgets the estimate.
      costs.track(set.endpoints.slice(1));
      assert.equal(costs.estimateOf(ADDRS[0] as string), undefined);
    });
  });

  describe("simulation, 100k seeded picks", () => {
    it("equal endpoints share evenly (absolute share error ≤ 0.01)", () => {
      const shares = simulate({ behaviours: [{ latencyMs: 10 }, { latencyMs: 10 }, { latencyMs: 10 }] });
      for (const s of shares) assert.ok(Math.abs(s - 1 / 3) <= 0.01, fmt(shares));
    });

    it("an endpoint 3× slower gets clearly less than round robin's third", () => {
      const shares = simulate({ behaviours: [{ latencyMs: 10 }, { latencyMs: 30 }, { latencyMs: 10 }] });
      const [a, slow, c] = shares as [number, number, number];
      assert.ok(slow < 0.15, `slow share ${fmt(shares)}`);
      assert.ok(Math.abs(a - c) <= 0.02, `fast endpoints uneven: ${fmt(shares)}`);
    });

    it("fast failures make an endpoint expensive; the same speed with OK would attract traffic", () => {
      const failing = simulate({
        behaviours: [{ latencyMs: 10 }, { latencyMs: 10 }, { latencyMs: 1, status: UNAVAILABLE }],
      });
      const fast = simulate({ behaviours: [{ latencyMs: 10 }, { latencyMs: 10 }, { latencyMs: 1 }] });
      assert.ok((failing[2] as number) < 0.05, `failing endpoint's share ${fmt(failing)}`);
      assert.ok((fast[2] as number) > 0.5, `fast OK endpoint's share ${fmt(fast)}`);
    });

    it("a deep fresh queue repels traffic; the same depth discounted by age counts less, stale not at all", () => {
      const run = (ageMs: number): number[] =>
        simulate({
          behaviours: [{ latencyMs: 10 }, { latencyMs: 10 }, { latencyMs: 10 }],
          queue: { depths: [0, 50, 0], ageMs, intervalMs: 1000 },
          // About 10 streams in flight: a queue of 50 is deep next to them.
          arrivalMs: 1,
        });
      const fresh = run(500);
      // 5.5 intervals: weight 2^-3.5 ≈ 0.09, depth ≈ 4.4, about the others' active counts.
      const aged = run(5500);
      const stale = run(20_000);
      assert.ok((fresh[1] as number) < 0.01, `fresh: ${fmt(fresh)}`);
      assert.ok(
        (aged[1] as number) > (fresh[1] as number) + 0.01,
        `aged ${fmt(aged)} vs fresh ${fmt(fresh)}`,
      );
      assert.ok(
        (aged[1] as number) < (stale[1] as number) - 0.05,
        `aged ${fmt(aged)} vs stale ${fmt(stale)}`,
      );
      assert.ok(Math.abs((stale[1] as number) - 1 / 3) <= 0.01, `stale: ${fmt(stale)}`);
    });
  });

  it("never picks excluded endpoints; reports no_healthy_endpoint / all_endpoints_tried", () => {
    const set = new EndpointSet(
      "c",
      ADDRS.map((address) => ({ address, weight: 1 })),
    );
    const costs = new LoadCosts({ now: () => 0, load: set });
    const balancer = new Balancer(set, { policy: "least_loaded", random: seededRandom(3), costs });
    const [a, b, c] = set.endpoints as [Endpoint, Endpoint, Endpoint];
    for (let i = 0; i < 300; i++) {
      const r = balancer.pick({ exclude: new Set([a]) });
      assert.ok(r.kind === "complete" && r.endpoint !== a);
    }
    assert.deepEqual(balancer.pick({ exclude: new Set([a, b, c]) }), {
      kind: "unavailable",
      reason: "all_endpoints_tried",
    });
    for (const e of [a, b, c]) set.setHealth(e.address, "unhealthy");
    assert.deepEqual(balancer.pick({}), { kind: "unavailable", reason: "no_healthy_endpoint" });
  });

  it("refuses to be built without costs", () => {
    const set = new EndpointSet("c", [{ address: "10.0.0.1:80", weight: 1 }]);
    assert.throws(() => new Balancer(set, { policy: "least_loaded", random: seededRandom(1) }));
  });
});
