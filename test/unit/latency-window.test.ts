/**
 * The status page's latency windows (latency-window.ts, endpoint-stats.ts) on an injected clock:
 * percentiles within one bin of the truth, the one-minute summary and the 5-minute history sliding
 * with time, buckets reused after the ring wrapped, and worker threads' snapshots merging as if one
 * window had seen every stream.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  LatencyWindow,
  SUMMARY_BUCKETS,
  WINDOW_BUCKETS,
  WINDOW_BUCKET_MS,
  binOf,
} from "../../src/metrics/latency-window.js";
import { EndpointStats, mergeStatsReports } from "../../src/metrics/endpoint-stats.js";
import { HealthChanges, probeReason } from "../../src/health/health-changes.js";

/** A bin spans a factor 2^(1/3): an estimate within that of the true value is "within one bin". */
const BIN_RATIO = 2 ** (1 / 3);

function within(actual: number | null, expected: number): void {
  assert.ok(actual !== null, "no value");
  assert.ok(
    actual >= expected / BIN_RATIO && actual <= expected * BIN_RATIO,
    `${actual} is not within one bin of ${expected}`,
  );
}

const T0 = 1_800_000_000_000; // a bucket boundary (divisible by 10 s)

describe("latency window", { timeout: 10_000 }, () => {
  it("bins grow by 2^(1/3) and clamp at both ends", () => {
    assert.equal(binOf(0), 0);
    assert.equal(binOf(-5), 0);
    assert.equal(binOf(Number.NaN), 0);
    assert.equal(binOf(0.1), 1);
    assert.equal(binOf(0.2), 4);
    assert.equal(binOf(1e9), 63);
    for (let ms = 0.1; ms < 1e5; ms *= 1.7) assert.ok(binOf(ms * 2) - binOf(ms) === 3, `at ${ms}`);
  });

  it("p50 and p99 of a known distribution, within one bin; exact min/max clamp", () => {
    const w = new LatencyWindow();
    for (let i = 1; i <= 1000; i++) w.record(T0 + i, i, false); // 1 … 1000 ms
    const s = w.summary(T0 + 5000);
    assert.equal(s.calls, 1000);
    assert.equal(s.errors, 0);
    within(s.p50_ms, 500);
    within(s.p99_ms, 990);
    assert.equal(s.mean_ms, 501);
    const same = new LatencyWindow();
    for (let i = 0; i < 20; i++) same.record(T0, 7.5, i < 3);
    const t = same.summary(T0);
    assert.deepEqual([t.p50_ms, t.p99_ms, t.mean_ms, t.errors], [7.5, 7.5, 7.5, 3]);
  });

  it("an empty window has null percentiles", () => {
    const s = new LatencyWindow().summary(T0);
    assert.deepEqual(s, { calls: 0, errors: 0, p50_ms: null, p99_ms: null, mean_ms: null });
  });

  it("the summary covers the last minute; older buckets drop out as the clock moves", () => {
    const w = new LatencyWindow();
    w.record(T0, 100, false); // bucket 0
    w.record(T0 + 3 * WINDOW_BUCKET_MS, 10, false); // bucket 3
    assert.equal(w.summary(T0 + 3 * WINDOW_BUCKET_MS).calls, 2);
    // Bucket 0 is inside the minute up to bucket 5, outside from bucket 6.
    assert.equal(w.summary(T0 + (SUMMARY_BUCKETS - 1) * WINDOW_BUCKET_MS + 9_999).calls, 2);
    const later = w.summary(T0 + SUMMARY_BUCKETS * WINDOW_BUCKET_MS);
    assert.equal(later.calls, 1);
    within(later.p99_ms, 10);
    assert.equal(w.summary(T0 + 9 * WINDOW_BUCKET_MS).calls, 0);
  });

  it("history: 30 buckets oldest first with their start times; the ring reuses slots after 5 minutes", () => {
    const w = new LatencyWindow();
    for (let b = 0; b < 3; b++)
      for (let i = 0; i <= b; i++) w.record(T0 + b * WINDOW_BUCKET_MS + i, 5, i === 0);
    const h = w.history(T0 + 2 * WINDOW_BUCKET_MS);
    assert.equal(h.length, WINDOW_BUCKETS);
    assert.equal(h[WINDOW_BUCKETS - 1]?.at, (T0 + 2 * WINDOW_BUCKET_MS) / 1000);
    assert.equal(h[0]?.at, (T0 - 27 * WINDOW_BUCKET_MS) / 1000);
    assert.deepEqual(
      h.slice(-4).map((b) => [b.calls, b.errors]),
      [
        [0, 0],
        [1, 1],
        [2, 1],
        [3, 1],
      ],
    );
    // 30 buckets later the slot of bucket 0 holds the new bucket only.
    const wrapped = T0 + WINDOW_BUCKETS * WINDOW_BUCKET_MS;
    w.record(wrapped, 50, false);
    const h2 = w.history(wrapped);
    assert.equal(h2[WINDOW_BUCKETS - 1]?.calls, 1);
    assert.equal(h2[WINDOW_BUCKETS - 1]?.p50_ms, 50);
    assert.deepEqual(
      h2.slice(-4, -1).map((b) => b.calls),
      [0, 0, 0],
    );
    assert.deepEqual(
      h2.slice(0, 2).map((b) => b.calls),
      [2, 3],
    );
    // A late record for a bucket older than its slot's is dropped, not mixed in.
    w.record(T0, 1, false);
    assert.equal(w.history(wrapped)[WINDOW_BUCKETS - 1]?.calls, 1);
  });

  it("merged snapshots of two threads equal one window that saw every stream", () => {
    const one = new LatencyWindow();
    const a = new LatencyWindow();
    const b = new LatencyWindow();
    for (let i = 0; i < 400; i++) {
      const at = T0 + i * 150; // spans 6 buckets
      const ms = 1 + ((i * 37) % 200);
      one.record(at, ms, i % 7 === 0);
      (i % 2 === 0 ? a : b).record(at, ms, i % 7 === 0);
    }
    const merged = new LatencyWindow();
    merged.absorb(a.snapshot());
    merged.absorb(b.snapshot());
    const now = T0 + 400 * 150;
    assert.deepEqual(merged.summary(now), one.summary(now));
    assert.deepEqual(merged.history(now), one.history(now));
  });

  it("endpoint stats count statuses by code and merge reports per cluster and address", () => {
    const t1 = new EndpointStats();
    const t2 = new EndpointStats();
    for (let i = 0; i < 5; i++) t1.stream(T0, 2, 12);
    for (let i = 0; i < 3; i++) t2.stream(T0, 2, 14);
    t2.stream(T0, 2, 0);
    t2.stream(T0, 2, 99); // out of range: UNKNOWN
    const merged = mergeStatsReports([
      { name: "c", endpoints: [["a:1", t1.snapshot()]] },
      { name: "c", endpoints: [["a:1", t2.snapshot()]] },
    ]);
    const s = merged.get("c")?.get("a:1");
    assert.ok(s);
    assert.deepEqual([s.statuses[0], s.statuses[2], s.statuses[12], s.statuses[14]], [1, 1, 5, 3]);
    const summary = s.window.summary(T0);
    assert.deepEqual([summary.calls, summary.errors], [10, 9]);
    const tcp = new EndpointStats();
    tcp.connection(T0, 1500);
    assert.equal(tcp.window.summary(T0).p50_ms, 1500);
    assert.equal(
      tcp.statuses.reduce((x, y) => x + y, 0),
      0,
    );
  });
});

describe("health changes", { timeout: 10_000 }, () => {
  it("keeps the last change per endpoint, forgets endpoints that left, and words probe reasons", () => {
    const h = new HealthChanges();
    h.record("a:1", "unhealthy", probeReason("unhealthy", 3, "ECONNREFUSED"), T0);
    h.record("a:1", "healthy", probeReason("healthy", 2, undefined), T0 + 1);
    h.record("b:1", "drained", "drained by admin API", T0 + 2);
    assert.deepEqual(h.lastOf("a:1"), { to: "healthy", reason: "2 passed probes", at: T0 + 1 });
    assert.equal(probeReason("unhealthy", 3, "ECONNREFUSED"), "3 failed probes (ECONNREFUSED)");
    assert.equal(probeReason("unhealthy", 1, undefined), "1 failed probe");
    h.keepOnly(new Set(["a:1"]));
    assert.equal(h.lastOf("b:1"), undefined);
  });
});
