/**
 * Power of two choices (Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing", 2001;
 * Envoy's LEAST_REQUEST default): two weighted-random draws, keep the one with less active / weight.
 * Nearly as good as scanning every endpoint, and it avoids the herd a strict least-connections causes
 * when many balancers see the same stale counts.
 */
import type { Endpoint } from "./endpoint-set.js";
import { PickedResults, noPick } from "./picked.js";
import type { LoadView, PickContext, PickResult, Picker, RandomSource } from "./picker.js";
import { weightedDraw } from "./policy-random.js";

export class P2cPicker implements Picker {
  private readonly picked: PickedResults;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly load: LoadView,
    private readonly random: RandomSource,
  ) {
    this.picked = new PickedResults(endpoints);
  }

  pick(ctx: PickContext): PickResult {
    const a = weightedDraw(this.endpoints, this.random, ctx.exclude);
    if (!a) return noPick(this.endpoints.length, ctx);
    const b = weightedDraw(this.endpoints, this.random, ctx.exclude, a);
    if (!b) return this.picked.of(a);
    const sa = this.load.activeOf(a) / a.weight;
    const sb = this.load.activeOf(b) / b.weight;
    return this.picked.of(sb < sa ? b : a);
  }
}
