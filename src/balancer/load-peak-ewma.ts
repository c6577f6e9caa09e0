/**
 * Peak-EWMA latency estimate, after Finagle's `PeakEwma` balancer (Twitter, "Peak EWMA" load metric)
 * and linkerd2-proxy's `tower::load::PeakEwma`. An exponentially weighted moving average weighted by
 * *time* rather than by sample count (weight of the old value `w = exp(-Δt / τ)`), with two twists that
 * make it suit load balancing:
 *
 * - **peak**: a sample above the current estimate replaces it at once, so an endpoint that turns slow
 *   (a GPU worker whose batch queue just filled) becomes expensive on its first slow answer instead of
 *   after τ; only improvements are smoothed;
 * - **decay towards zero** while no sample arrives, so an endpoint that was expensive and then got no
 *   traffic looks cheaper as time passes and is eventually tried again: without it a penalised endpoint
 *   would never be measured again.
 *
 * Pure: the caller passes the time (ms, any monotonic-enough clock; a negative Δt counts as 0).
 */

/** τ (ms): how fast the estimate forgets. Finagle and linkerd use 10 s; so does Fulcrum. */
export const DEFAULT_DECAY_MS = 10_000;

export class PeakEwma {
  private estimate: number;
  private stamp: number;

  /** `initialMs`: the estimate before the first sample; `now`: the time it holds for. */
  constructor(
    initialMs: number,
    now: number,
    private readonly decayMs: number = DEFAULT_DECAY_MS,
  ) {
    if (!(decayMs > 0)) throw new RangeError("decay time must be > 0");
    this.estimate = Math.max(0, initialMs);
    this.stamp = now;
  }

  /** The estimate at `now`: the last value decayed towards 0 for the time since the last sample. */
  valueAt(now: number): number {
    const dt = now - this.stamp;
    return dt <= 0 ? this.estimate : this.estimate * Math.exp(-dt / this.decayMs);
  }

  /** Counts one latency sample taken at `now`. */
  observe(latencyMs: number, now: number): void {
    const dt = Math.max(0, now - this.stamp);
    const w = Math.exp(-dt / this.decayMs);
    this.stamp = Math.max(this.stamp, now);
    const decayed = this.estimate * w;
    const sample = Math.max(0, latencyMs);
    this.estimate = sample > decayed ? sample : decayed + sample * (1 - w);
  }
}
