// Smooth weighted round robin (nginx ngx_http_upstream_get_peer): exact weight shares, interleaved.
import type { Endpoint } from "./endpoint-set.js";
import { completeResults, isExcluded, noPick } from "./picker-results.js";
import type { PickContext, PickResult, Picker } from "./picker.js";

/**
 * Each pick adds every candidate's weight to its current value, takes the largest (the first on a tie)
 * and subtracts the candidates' total from it. Weights 1, 2, 3 give exactly 1/6, 2/6, 3/6 of every six
 * picks. Excluded endpoints sit the pick out, as nginx's tried peers do.
 */
export class WeightedRoundRobinPicker implements Picker {
  private readonly current: Float64Array;
  private readonly results: readonly PickResult[];

  constructor(private readonly eligible: readonly Endpoint[]) {
    this.current = new Float64Array(eligible.length);
    this.results = completeResults(eligible);
  }

  pick(ctx: PickContext): PickResult {
    const n = this.eligible.length;
    const current = this.current;
    let best = -1;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const e = this.eligible[i] as Endpoint;
      if (isExcluded(ctx, e)) continue;
      const c = (current[i] as number) + e.weight;
      current[i] = c;
      total += e.weight;
      if (best < 0 || c > (current[best] as number)) best = i;
    }
    if (best < 0) return noPick(n, ctx);
    current[best] = (current[best] as number) - total;
    return this.results[best] as PickResult;
  }
}
