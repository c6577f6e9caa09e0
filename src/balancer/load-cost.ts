/**
 * The cost that `policy: least_loaded` minimises, per endpoint of one cluster:
 *
 *     cost = (max(active, queue × freshness) + 1) × (latency + 0.01 ms) / weight
 *
 * - `latency`: a peak-EWMA of the endpoint's stream latencies (load-peak-ewma.ts; Finagle's and
 *   linkerd's load metric). Latency is what a client of a GPU worker pays, and it already contains the
 *   worker's queueing and batching delays, its model's speed and the hardware's; it is the one signal
 *   that ranks a slow GPU below a fast one without being told which is which.
 * - `active`: Fulcrum's streams in flight on the endpoint (global across worker threads). Multiplying
 *   by `active + 1` is the "(outstanding + 1) × latency" of Finagle and linkerd: the latency we expect if
 *   the request joins the work already sent, and it reacts at once, before any new latency sample.
 * - `queue`: with `load_metrics`, the queue depth scraped from the worker (Triton's
 *   `nv_inference_pending_request_count`, summed over models). It sees work that did not come through
 *   this Fulcrum (other replicas, other clients). It overlaps with `active` (Fulcrum's queued streams
 *   are in it), so the larger of the two counts rather than their sum. A scrape is trusted fully for
 *   two intervals (the next may be in flight), then its weight halves every further interval, so a
 *   worker whose metrics endpoint stopped answering soon falls back to `active` instead of being
 *   judged forever by an old number. With `stale_after`, an endpoint whose scrapes stopped longer
 *   ago than that counts as saturated instead (infinite cost): a fleet whose load is only known
 *   from its metrics sends nothing to a worker it cannot see.
 * - fast failures: a stream that ended UNAVAILABLE or RESOURCE_EXHAUSTED counts as a latency sample of
 *   at least `max(100 ms, 4 × the highest cost of the other endpoints)` (cost before the weight).
 *   Otherwise a worker that rejects everything in a millisecond would look like the fastest in the
 *   cluster and draw traffic into a black hole. The penalty is scaled by the others' *cost*, not their
 *   latency, because the failing endpoint holds almost nothing in flight (its streams end at once)
 *   while the others' `active + 1` grows with load: a fixed or latency-scaled penalty is outgrown under
 *   heavy load. Peak-EWMA decay brings the endpoint back into the comparison after about τ·ln 4 ≈ 14 s,
 *   when one stream tests it; each further failure renews the penalty (and outlier detection may eject
 *   it meanwhile). CANCELLED streams say nothing about the endpoint and are not counted.
 * - the 0.01 ms floor keeps `active` meaningful when estimates have decayed to nothing (an idle
 *   cluster degrades to least connections); `weight` scales as in every Fulcrum policy.
 *
 * An endpoint seen for the first time starts at the mean of the current estimates, so a new worker is
 * neither flooded (as with 0) nor starved (as with a pessimistic default) before its first sample.
 *
 * A sample is a whole stream (start upstream to end), so long-lived streams count by their duration;
 * the policy is meant for clusters of mostly unary calls.
 *
 * With worker threads each thread keeps its own estimates from the streams it proxied; `active` and the
 * scraped queue depths are shared memory, so they are global. Pure: the clock is injected.
 */
import type { Endpoint } from "./endpoint-set.js";
import type { LoadView } from "./picker.js";
import { DEFAULT_DECAY_MS, PeakEwma } from "./load-peak-ewma.js";

/** Scraped queue depths (shared memory in practice); `scrapedAt` is epoch ms, 0 = never scraped. */
export interface QueueView {
  queueDepthOf(endpoint: Endpoint): number;
  queueScrapedAtOf(endpoint: Endpoint): number;
}

export interface LoadCostOptions {
  /** Epoch ms (scrape times come from another thread's clock, so it must be the wall clock). */
  readonly now: () => number;
  /** Streams in flight per endpoint (the endpoint set: global across worker threads). */
  readonly load: LoadView;
  /** τ of the latency estimates (default 10 s). */
  readonly decayMs?: number | undefined;
  /**
   * Scraped queue depths and the scrape interval; absent: no queue term. `staleMs` > 0: an endpoint
   * whose last scrape is older than that (or that was never scraped) counts as saturated.
   */
  readonly queue?:
    | { readonly view: QueueView; readonly intervalMs: number; readonly staleMs?: number | undefined }
    | undefined;
}

/** gRPC status codes the cost reads (grpc/doc/statuscodes.md). */
const CANCELLED = 1;
const RESOURCE_EXHAUSTED = 8;
const UNAVAILABLE = 14;

/** Smallest latency a fast failure counts as. */
export const FAILURE_PENALTY_FLOOR_MS = 100;
/** A fast failure counts as this many times the highest cost of the other endpoints. */
export const FAILURE_PENALTY_FACTOR = 4;
/** Added to every latency estimate so `active` still ranks endpoints whose estimates decayed to 0. */
export const LATENCY_FLOOR_MS = 0.01;
/** A scrape counts fully for this many intervals, then its weight halves every interval… */
const FRESH_INTERVALS = 2;
/** …and not at all past this many. */
const STALE_INTERVALS = 12;

/** One endpoint's estimate, resolved once per picker so a pick does no map lookup. */
export interface LoadState {
  /** The endpoint as last tracked (weight and slot may change between pickers). */
  endpoint: Endpoint;
  readonly ewma: PeakEwma;
}

export class LoadCosts {
  private readonly states = new Map<string, LoadState>();
  private readonly decayMs: number;
  private queue: LoadCostOptions["queue"];

  constructor(private readonly options: LoadCostOptions) {
    this.decayMs = options.decayMs ?? DEFAULT_DECAY_MS;
    this.queue = options.queue;
  }

  /** A reload's queue settings; the latency estimates carry over. */
  setQueue(queue: LoadCostOptions["queue"]): void {
    this.queue = queue;
  }

  /** The clock the costs use. */
  now(): number {
    return this.options.now();
  }

  /**
   * The states of `endpoints` (in their order), created for endpoints seen for the first time; states
   * of endpoints not listed are dropped, so an endpoint that leaves and returns starts afresh.
   */
  track(endpoints: readonly Endpoint[]): LoadState[] {
    const now = this.options.now();
    const keep = new Set(endpoints.map((e) => e.address));
    for (const address of [...this.states.keys()]) if (!keep.has(address)) this.states.delete(address);
    let initial: number | undefined;
    return endpoints.map((e) => {
      let s = this.states.get(e.address);
      if (!s) {
        initial ??= this.meanEstimate(now);
        s = { endpoint: e, ewma: new PeakEwma(initial, now, this.decayMs) };
        this.states.set(e.address, s);
      }
      s.endpoint = e;
      return s;
    });
  }

  /**
   * A stream on `address` ended with gRPC `status` after `latencyMs`. Endpoints not tracked (left the
   * eligible set meanwhile) and cancelled streams are not counted.
   */
  record(address: string, latencyMs: number, status: number): void {
    if (status === CANCELLED) return;
    const s = this.states.get(address);
    if (!s) return;
    const now = this.options.now();
    let sample = latencyMs;
    if (status === UNAVAILABLE || status === RESOURCE_EXHAUSTED) {
      sample = Math.max(
        sample,
        FAILURE_PENALTY_FLOOR_MS,
        FAILURE_PENALTY_FACTOR * this.highestOtherCost(s, now),
      );
    }
    s.ewma.observe(sample, now);
  }

  /** The latency estimate of `address` now (tests, status), or undefined when it is not tracked. */
  estimateOf(address: string): number | undefined {
    return this.states.get(address)?.ewma.valueAt(this.options.now());
  }

  /** The cost of `endpoint` (state `s`) at `now` with `active` streams in flight; lower is better. */
  cost(endpoint: Endpoint, s: LoadState, active: number, now: number): number {
    return this.unweightedCost(endpoint, s, active, now) / endpoint.weight;
  }

  private unweightedCost(endpoint: Endpoint, s: LoadState, active: number, now: number): number {
    let outstanding = active;
    const q = this.queue;
    if (q) {
      const age = now - q.view.queueScrapedAtOf(endpoint);
      // Saturated: picked only when every other candidate is too.
      if (q.staleMs !== undefined && q.staleMs > 0 && age > q.staleMs) return Infinity;
      const queued = q.view.queueDepthOf(endpoint) * freshness(age, q.intervalMs);
      if (queued > outstanding) outstanding = queued;
    }
    return (outstanding + 1) * (s.ewma.valueAt(now) + LATENCY_FLOOR_MS);
  }

  private meanEstimate(now: number): number {
    if (this.states.size === 0) return 0;
    let sum = 0;
    for (const s of this.states.values()) sum += s.ewma.valueAt(now);
    return sum / this.states.size;
  }

  private highestOtherCost(self: LoadState, now: number): number {
    let max = 0;
    for (const s of this.states.values()) {
      if (s === self) continue;
      const cost = this.unweightedCost(s.endpoint, s, this.options.load.activeOf(s.endpoint), now);
      // A saturated endpoint's infinite cost would make the penalty infinite, and the estimate with it.
      if (Number.isFinite(cost)) max = Math.max(max, cost);
    }
    return max;
  }
}

/**
 * The weight of a queue depth scraped `ageMs` ago: 1 while fresh, then halving every interval, 0 once
 * stale (or never scraped: a scrape time of 0 makes the age huge).
 */
export function freshness(ageMs: number, intervalMs: number): number {
  const intervals = Math.max(0, ageMs) / intervalMs;
  if (intervals <= FRESH_INTERVALS) return 1;
  if (intervals >= STALE_INTERVALS) return 0;
  return Math.pow(2, FRESH_INTERVALS - intervals);
}
