// least_loaded: power of two choices (Mitzenmacher 2001) on the peak-EWMA cost of load-cost.ts, as in
// Finagle's and linkerd's P2C + PeakEwma balancers. Two random candidates rather than the global minimum,
// because the cost is an estimate that moves only when streams finish or scrapes land: a full scan would
// send every new stream to the same momentary minimum (a herd), two choices spread them.
import type { Endpoint } from "./endpoint-set.js";
import type { LoadCosts, LoadState } from "./load-cost.js";
import { completeResults, noPick } from "./picker-results.js";
import type { LoadView, PickContext, PickResult, Picker, RandomSource } from "./picker.js";
import { WeightedDraw } from "./policy-random.js";

/**
 * Two weighted-random draws over `eligible` (distinct whenever two candidates remain), keeping the one
 * with the lower cost; on a tie the first draw. The endpoints' latency states are resolved once, when
 * the picker is built, so a pick costs two draws, two active-count loads and two cost evaluations.
 */
export class LeastLoadedPicker implements Picker {
  private readonly draws: WeightedDraw;
  private readonly results: readonly PickResult[];
  /** The same results marked `decidedBy: "cost"`, for picks the costs decided. */
  private readonly costResults: readonly PickResult[];
  private readonly states: readonly LoadState[];

  constructor(
    private readonly eligible: readonly Endpoint[],
    private readonly load: LoadView,
    random: RandomSource,
    private readonly costs: LoadCosts,
  ) {
    this.draws = new WeightedDraw(eligible, random);
    this.results = completeResults(eligible);
    this.costResults = eligible.map(
      (endpoint) => Object.freeze({ kind: "complete", endpoint, decidedBy: "cost" }) as PickResult,
    );
    this.states = costs.track(eligible);
  }

  pick(ctx: PickContext): PickResult {
    const a = this.draws.draw(ctx, -1);
    if (a < 0) return noPick(this.eligible.length, ctx);
    const b = this.draws.draw(ctx, a);
    if (b < 0) return this.results[a] as PickResult;
    const now = this.costs.now();
    const ea = this.eligible[a] as Endpoint;
    const eb = this.eligible[b] as Endpoint;
    const ca = this.costs.cost(ea, this.states[a] as LoadState, this.load.activeOf(ea), now);
    const cb = this.costs.cost(eb, this.states[b] as LoadState, this.load.activeOf(eb), now);
    if (ca === cb) return this.results[a] as PickResult;
    return this.costResults[cb < ca ? b : a] as PickResult;
  }
}
