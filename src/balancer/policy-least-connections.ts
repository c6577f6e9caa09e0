/**
 * Least connections, weighted (HAProxy's leastconn, Envoy's LEAST_REQUEST with all hosts scanned):
 * the least `active / weight`; equal endpoints take turns through a rotating start, so an idle
 * cluster spreads new work instead of piling it on the first endpoint.
 */
import type { Endpoint } from "./endpoint-set.js";
import { PickedResults, noPick } from "./picked.js";
import type { LoadView, PickContext, PickResult, Picker } from "./picker.js";

export class LeastConnectionsPicker implements Picker {
  private start = 0;
  private readonly picked: PickedResults;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly load: LoadView,
  ) {
    this.picked = new PickedResults(endpoints);
  }

  pick(ctx: PickContext): PickResult {
    const n = this.endpoints.length;
    let best: Endpoint | undefined;
    let bestIdx = 0;
    let bestScore = Infinity;
    for (let i = 0; i < n; i++) {
      const idx = (this.start + i) % n;
      const e = this.endpoints[idx] as Endpoint;
      if (ctx.exclude?.has(e)) continue;
      const score = this.load.activeOf(e) / e.weight;
      if (score < bestScore) {
        best = e;
        bestIdx = idx;
        bestScore = score;
      }
    }
    if (!best) return noPick(n, ctx);
    this.start = (bestIdx + 1) % n;
    return this.picked.of(best);
  }
}
