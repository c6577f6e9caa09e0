// Weighted random: stateless, so worker threads need no coordination; the baseline for smarter policies.
import type { Endpoint } from "./endpoint-set.js";
import { completeResults, isExcluded, noPick } from "./picker-results.js";
import type { PickContext, PickResult, Picker, RandomSource } from "./picker.js";

/**
 * Weighted draws over a fixed endpoint list: each candidate with probability weight / candidates'
 * total. O(log n) over precomputed cumulative weights when nothing is excluded; a linear scan otherwise.
 * Consumes exactly one random number per draw that has a candidate.
 */
export class WeightedDraw {
  /** cumulative[i] = weight of endpoints 0..i. */
  private readonly cumulative: Float64Array;
  private readonly total: number;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly random: RandomSource,
  ) {
    this.cumulative = new Float64Array(endpoints.length);
    let total = 0;
    endpoints.forEach((e, i) => {
      total += e.weight;
      this.cumulative[i] = total;
    });
    this.total = total;
  }

  /** An index not excluded by `ctx` and not `skip` (-1: skip nothing), or -1 when there is none. */
  draw(ctx: PickContext, skip: number): number {
    if (ctx.exclude !== undefined && ctx.exclude.size > 0) return this.scan(ctx, skip);
    const n = this.endpoints.length;
    if (skip < 0) return n === 0 ? -1 : this.search(this.random() * this.total);
    if (n <= 1) return -1;
    // Draw over the total without `skip`, then shift the point past its interval.
    const w = (this.endpoints[skip] as Endpoint).weight;
    const before = (this.cumulative[skip] as number) - w;
    const r = this.random() * (this.total - w);
    return this.search(r < before ? r : r + w);
  }

  /** The first index whose cumulative weight exceeds `r`. */
  private search(r: number): number {
    const c = this.cumulative;
    let lo = 0;
    let hi = c.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((c[mid] as number) > r) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  private scan(ctx: PickContext, skip: number): number {
    const n = this.endpoints.length;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[i] as Endpoint;
      if (i !== skip && !isExcluded(ctx, e)) total += e.weight;
    }
    if (total === 0) return -1;
    let r = this.random() * total;
    let last = -1;
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[i] as Endpoint;
      if (i === skip || isExcluded(ctx, e)) continue;
      last = i;
      r -= e.weight;
      if (r < 0) return i;
    }
    return last;
  }
}

/** Each pick an independent weighted draw over `eligible`, excluded endpoints left out. */
export class RandomPicker implements Picker {
  private readonly draws: WeightedDraw;
  private readonly results: readonly PickResult[];

  constructor(
    private readonly eligible: readonly Endpoint[],
    random: RandomSource,
  ) {
    this.draws = new WeightedDraw(eligible, random);
    this.results = completeResults(eligible);
  }

  pick(ctx: PickContext): PickResult {
    const i = this.draws.draw(ctx, -1);
    return i < 0 ? noPick(this.eligible.length, ctx) : (this.results[i] as PickResult);
  }
}
