// Power of two choices (Mitzenmacher 2001; Envoy LEAST_REQUEST): near least-load, no herd on stale counts.
import type { Endpoint } from "./endpoint-set.js";
import { completeResults, noPick } from "./picker-results.js";
import type { LoadView, PickContext, PickResult, Picker, RandomSource } from "./picker.js";
import { WeightedDraw } from "./policy-random.js";

/**
 * Two weighted-random draws over `eligible` (distinct endpoints whenever two candidates remain), keeping
 * the one with less `active / weight`; on a tie the first draw, so equal load gives the weight shares.
 */
export class P2cPicker implements Picker {
  private readonly draws: WeightedDraw;
  private readonly results: readonly PickResult[];

  constructor(
    private readonly eligible: readonly Endpoint[],
    private readonly load: LoadView,
    random: RandomSource,
  ) {
    this.draws = new WeightedDraw(eligible, random);
    this.results = completeResults(eligible);
  }

  pick(ctx: PickContext): PickResult {
    const a = this.draws.draw(ctx, -1);
    if (a < 0) return noPick(this.eligible.length, ctx);
    const b = this.draws.draw(ctx, a);
    if (b < 0) return this.results[a] as PickResult;
    const ea = this.eligible[a] as Endpoint;
    const eb = this.eligible[b] as Endpoint;
    // active_b / weight_b < active_a / weight_a, without floating-point division.
    const bWins = this.load.activeOf(eb) * ea.weight < this.load.activeOf(ea) * eb.weight;
    return this.results[bWins ? b : a] as PickResult;
  }
}
