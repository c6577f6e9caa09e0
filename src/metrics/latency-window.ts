/**
 * Durations of one endpoint's recent streams (grpc) or connections (tcp) for the status page: a
 * fixed ring of 10-second buckets, each a small log-spaced histogram (HdrHistogram's idea with
 * three bins per doubling, so a percentile is off by at most one bin, about 26 %, and by less after
 * interpolation) plus the bucket's count, errors, sum, min and max. Recording is a few array stores
 * and no allocation; percentiles are computed when `/status` is read. Worker threads keep their own
 * windows and the main thread merges their snapshots (`absorb`), bucket by bucket.
 *
 * Pure: the caller passes the time (epoch ms), so tests inject a clock.
 */

/** Width of one bucket. */
export const WINDOW_BUCKET_MS = 10_000;
/** Buckets kept: 5 minutes of history, the current (partial) bucket included. */
export const WINDOW_BUCKETS = 30;
/** Buckets the latency summary covers: the last minute. */
export const SUMMARY_BUCKETS = 6;

/** Lower bound of the first bin above 0 (ms); bins grow by 2^(1/3) up to about 168 s, then one open bin. */
const MIN_MS = 0.1;
const BINS_PER_DOUBLING = 3;
const BINS = 64;

/** A window as plain typed arrays: what crosses a thread boundary (structured clone). */
export interface WindowSnapshot {
  /** Per slot: the bucket number (floor(epoch ms / bucket width)) it holds, or -1. */
  readonly stamps: Float64Array;
  readonly bins: Uint32Array;
  readonly calls: Float64Array;
  readonly errors: Float64Array;
  readonly sumMs: Float64Array;
  readonly minMs: Float64Array;
  readonly maxMs: Float64Array;
}

/** Percentiles over some buckets; null when nothing was recorded there. */
export interface LatencySummary {
  readonly calls: number;
  readonly errors: number;
  readonly p50_ms: number | null;
  readonly p99_ms: number | null;
  readonly mean_ms: number | null;
}

/** One bucket of the history, oldest first; `at` is its start (epoch seconds). */
export interface HistoryBucket extends LatencySummary {
  readonly at: number;
}

/** The bin of a duration. */
export function binOf(ms: number): number {
  if (!(ms >= MIN_MS)) return 0; // also NaN and negatives
  const i = 1 + Math.floor(Math.log2(ms / MIN_MS) * BINS_PER_DOUBLING);
  return i < BINS ? i : BINS - 1;
}

function binLow(i: number): number {
  return i === 0 ? 0 : MIN_MS * 2 ** ((i - 1) / BINS_PER_DOUBLING);
}

function binHigh(i: number): number {
  return MIN_MS * 2 ** (i / BINS_PER_DOUBLING);
}

export class LatencyWindow {
  private readonly s: WindowSnapshot = {
    stamps: new Float64Array(WINDOW_BUCKETS).fill(-1),
    bins: new Uint32Array(WINDOW_BUCKETS * BINS),
    calls: new Float64Array(WINDOW_BUCKETS),
    errors: new Float64Array(WINDOW_BUCKETS),
    sumMs: new Float64Array(WINDOW_BUCKETS),
    minMs: new Float64Array(WINDOW_BUCKETS),
    maxMs: new Float64Array(WINDOW_BUCKETS),
  };

  /** Counts one stream or connection that ended at `nowMs` after `durationMs`. */
  record(nowMs: number, durationMs: number, error: boolean): void {
    const slot = this.slotFor(Math.floor(nowMs / WINDOW_BUCKET_MS));
    if (slot < 0) return;
    const s = this.s;
    const ms = durationMs > 0 ? durationMs : 0;
    const bin = slot * BINS + binOf(ms);
    s.bins[bin] = (s.bins[bin] ?? 0) + 1;
    const calls = (s.calls[slot] ?? 0) + 1;
    s.calls[slot] = calls;
    if (error) s.errors[slot] = (s.errors[slot] ?? 0) + 1;
    s.sumMs[slot] = (s.sumMs[slot] ?? 0) + ms;
    if (calls === 1 || ms < (s.minMs[slot] ?? 0)) s.minMs[slot] = ms;
    if (ms > (s.maxMs[slot] ?? 0)) s.maxMs[slot] = ms;
  }

  /** A copy of the buckets, for another thread to `absorb`. */
  snapshot(): WindowSnapshot {
    const s = this.s;
    return {
      stamps: s.stamps.slice(),
      bins: s.bins.slice(),
      calls: s.calls.slice(),
      errors: s.errors.slice(),
      sumMs: s.sumMs.slice(),
      minMs: s.minMs.slice(),
      maxMs: s.maxMs.slice(),
    };
  }

  /** Adds another window's buckets to this one's (buckets older than this window's are dropped). */
  absorb(other: WindowSnapshot): void {
    const s = this.s;
    for (let from = 0; from < WINDOW_BUCKETS; from++) {
      const stamp = other.stamps[from] ?? -1;
      const calls = other.calls[from] ?? 0;
      if (stamp < 0 || calls === 0) continue;
      const slot = this.slotFor(stamp);
      if (slot < 0) continue;
      for (let b = 0; b < BINS; b++) {
        const i = slot * BINS + b;
        s.bins[i] = (s.bins[i] ?? 0) + (other.bins[from * BINS + b] ?? 0);
      }
      const before = s.calls[slot] ?? 0;
      s.calls[slot] = before + calls;
      s.errors[slot] = (s.errors[slot] ?? 0) + (other.errors[from] ?? 0);
      s.sumMs[slot] = (s.sumMs[slot] ?? 0) + (other.sumMs[from] ?? 0);
      const min = other.minMs[from] ?? 0;
      const max = other.maxMs[from] ?? 0;
      if (before === 0 || min < (s.minMs[slot] ?? 0)) s.minMs[slot] = min;
      if (max > (s.maxMs[slot] ?? 0)) s.maxMs[slot] = max;
    }
  }

  /** Count, errors, p50, p99 and mean over the last `buckets` buckets up to `nowMs` (default: a minute). */
  summary(nowMs: number, buckets = SUMMARY_BUCKETS): LatencySummary {
    const current = Math.floor(nowMs / WINDOW_BUCKET_MS);
    const slots: number[] = [];
    for (let slot = 0; slot < WINDOW_BUCKETS; slot++) {
      const stamp = this.s.stamps[slot] ?? -1;
      if (stamp > current - buckets && stamp <= current) slots.push(slot);
    }
    return this.summarize(slots);
  }

  /** The last `WINDOW_BUCKETS` buckets up to `nowMs`, oldest first; empty ones count 0. */
  history(nowMs: number): HistoryBucket[] {
    const current = Math.floor(nowMs / WINDOW_BUCKET_MS);
    const out: HistoryBucket[] = [];
    for (let stamp = current - WINDOW_BUCKETS + 1; stamp <= current; stamp++) {
      const slot = stamp % WINDOW_BUCKETS;
      const held = this.s.stamps[slot] === stamp ? [slot] : [];
      out.push({ at: (stamp * WINDOW_BUCKET_MS) / 1000, ...this.summarize(held) });
    }
    return out;
  }

  /** The slot of bucket `stamp`, cleared when it held an older bucket; -1 when `stamp` is older than the slot's. */
  private slotFor(stamp: number): number {
    const slot = stamp % WINDOW_BUCKETS;
    const s = this.s;
    const held = s.stamps[slot] ?? -1;
    if (held === stamp) return slot;
    if (held > stamp) return -1;
    s.stamps[slot] = stamp;
    s.bins.fill(0, slot * BINS, (slot + 1) * BINS);
    s.calls[slot] = 0;
    s.errors[slot] = 0;
    s.sumMs[slot] = 0;
    s.minMs[slot] = 0;
    s.maxMs[slot] = 0;
    return slot;
  }

  private summarize(slots: readonly number[]): LatencySummary {
    const s = this.s;
    const merged = new Float64Array(BINS);
    let calls = 0;
    let errors = 0;
    let sum = 0;
    let min = Infinity;
    let max = 0;
    for (const slot of slots) {
      const n = s.calls[slot] ?? 0;
      if (n === 0) continue;
      for (let b = 0; b < BINS; b++) merged[b] = (merged[b] ?? 0) + (s.bins[slot * BINS + b] ?? 0);
      calls += n;
      errors += s.errors[slot] ?? 0;
      sum += s.sumMs[slot] ?? 0;
      min = Math.min(min, s.minMs[slot] ?? 0);
      max = Math.max(max, s.maxMs[slot] ?? 0);
    }
    if (calls === 0) return { calls: 0, errors: 0, p50_ms: null, p99_ms: null, mean_ms: null };
    return {
      calls,
      errors,
      p50_ms: round(percentile(merged, calls, 0.5, min, max)),
      p99_ms: round(percentile(merged, calls, 0.99, min, max)),
      mean_ms: round(sum / calls),
    };
  }
}

/** The `q` quantile of a histogram of `total` values in [min, max], interpolated within its bin. */
function percentile(bins: Float64Array, total: number, q: number, min: number, max: number): number {
  const rank = Math.max(1, Math.ceil(q * total));
  let below = 0;
  for (let b = 0; b < BINS; b++) {
    const n = bins[b] ?? 0;
    if (n === 0) continue;
    if (below + n >= rank) {
      const high = b === BINS - 1 ? max : binHigh(b);
      const value = binLow(b) + (high - binLow(b)) * ((rank - below) / n);
      return Math.min(max, Math.max(min, value));
    }
    below += n;
  }
  return max;
}

/** Three significant digits: the bins are coarser than that anyway. */
function round(ms: number): number {
  return Number(ms.toPrecision(3));
}
