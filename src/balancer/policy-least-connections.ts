// Weighted least connections (HAProxy leastconn, Envoy LEAST_REQUEST full scan): follows live load exactly.
import type { Endpoint } from "./endpoint-set.js";
import { completeResults, isExcluded, noPick } from "./picker-results.js";
import type { LoadView, PickContext, PickResult, Picker } from "./picker.js";

/**
 * Picks the least `active / weight` among `eligible`. The scan starts one past the last pick, and the
 * first strictly smaller score wins, so equal endpoints take turns instead of the first one taking all
 * new work of an idle cluster.
 */
export class LeastConnectionsPicker implements Picker {
  private start = 0;
  private readonly results: readonly PickResult[];

  constructor(
    private readonly eligible: readonly Endpoint[],
    private readonly load: LoadView,
  ) {
    this.results = completeResults(eligible);
  }

  pick(ctx: PickContext): PickResult {
    const n = this.eligible.length;
    let best = -1;
    let bestActive = 0;
    let bestWeight = 1;
    for (let tried = 0, i = this.start; tried < n; tried++, i = i + 1 === n ? 0 : i + 1) {
      const e = this.eligible[i] as Endpoint;
      if (isExcluded(ctx, e)) continue;
      const active = this.load.activeOf(e);
      // active / weight < bestActive / bestWeight, without floating-point division.
      if (best < 0 || active * bestWeight < bestActive * e.weight) {
        best = i;
        bestActive = active;
        bestWeight = e.weight;
      }
    }
    if (best < 0) return noPick(n, ctx);
    this.start = best + 1 === n ? 0 : best + 1;
    return this.results[best] as PickResult;
  }
}
