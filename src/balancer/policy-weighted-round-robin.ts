/**
 * Smooth weighted round robin (nginx, ngx_http_upstream_get_peer): each pick adds every endpoint's
 * weight to its current value, takes the largest, and subtracts the total from it. Weights 1,2,3
 * give exactly 1/6, 2/6, 3/6 of picks, interleaved rather than in runs.
 */
import type { Endpoint } from "./endpoint-set.js";
import { PickedResults, noPick } from "./picked.js";
import type { PickContext, PickResult, Picker } from "./picker.js";

export class WeightedRoundRobinPicker implements Picker {
  private readonly current: Float64Array;
  private readonly picked: PickedResults;

  constructor(private readonly endpoints: readonly Endpoint[]) {
    this.current = new Float64Array(endpoints.length);
    this.picked = new PickedResults(endpoints);
  }

  pick(ctx: PickContext): PickResult {
    const n = this.endpoints.length;
    let best = -1;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[i] as Endpoint;
      if (ctx.exclude?.has(e)) continue;
      this.current[i] = (this.current[i] as number) + e.weight;
      total += e.weight;
      if (best < 0 || (this.current[i] as number) > (this.current[best] as number)) best = i;
    }
    if (best < 0) return noPick(n, ctx);
    this.current[best] = (this.current[best] as number) - total;
    return this.picked.of(this.endpoints[best] as Endpoint);
  }
}
