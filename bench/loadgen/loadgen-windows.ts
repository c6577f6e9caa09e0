/**
 * Measurement windows repeated until stable, after Triton's perf_analyzer: a run is cut into windows;
 * once the last `windows` of them agree within `tolerance` (throughput and p99 each within ±tolerance
 * of their mean), the run stops and those windows are the measurement. A run that reaches its duration
 * without that reports all its windows, marked unstable.
 */
import { LatencyHistogram, type LatencySummary } from "./loadgen-histogram.js";
import type { LoadRun, WindowStats } from "./loadgen-run.js";

export interface StabilityRule {
  /** Consecutive windows that must agree (perf_analyzer: 3). */
  readonly windows: number;
  /** Allowed relative deviation from their mean, e.g. 0.1 for ±10 %. */
  readonly tolerance: number;
}

/** For LoadSpec.isStable: how many trailing windows to measure, once they are stable. */
export function stableWhen(rule: StabilityRule): (ws: readonly WindowStats[]) => number | undefined {
  return (ws) => {
    if (ws.length < rule.windows) return undefined;
    const last = ws.slice(-rule.windows);
    const agree = (xs: number[]): boolean => {
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      return mean > 0 && xs.every((x) => Math.abs(x - mean) <= rule.tolerance * mean);
    };
    const ok =
      agree(last.map((w) => w.ok / w.seconds)) && agree(last.map((w) => w.histogram.percentileMs(99)));
    return ok ? rule.windows : undefined;
  };
}

export interface LoadResult {
  readonly seconds: number;
  readonly requests: number;
  readonly ok: number;
  readonly errors: number;
  /** OK answers per second over the measured windows. */
  readonly throughput: number;
  readonly latency: LatencySummary;
  readonly statuses: Record<string, number>;
  readonly windows: number;
  /** False when a stability rule was given and never met. */
  readonly stable: boolean;
}

/** Merges the measured (trailing) windows of a run into one result. */
export function summarise(run: LoadRun, stabilityAsked: boolean): LoadResult {
  const ws = run.windows.slice(-run.measured);
  const h = new LatencyHistogram();
  const statuses: Record<string, number> = {};
  let seconds = 0;
  let requests = 0;
  let ok = 0;
  let errors = 0;
  for (const w of ws) {
    h.add(w.histogram);
    seconds += w.seconds;
    requests += w.requests;
    ok += w.ok;
    errors += w.errors;
    for (const [k, v] of Object.entries(w.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  }
  return {
    seconds,
    requests,
    ok,
    errors,
    throughput: seconds > 0 ? ok / seconds : 0,
    latency: h.summary(),
    statuses,
    windows: run.windows.length,
    stable: !stabilityAsked || run.stable,
  };
}
