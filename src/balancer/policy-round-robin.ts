/**
 * Round robin (ignores weights): the simplest fair rotation, as in grpc-js's round_robin.
 */
import type { Endpoint } from "./endpoint-set.js";
import { PickedResults, noPick } from "./picked.js";
import type { PickContext, PickResult, Picker } from "./picker.js";

export class RoundRobinPicker implements Picker {
  private next = 0;
  private readonly picked: PickedResults;

  constructor(private readonly endpoints: readonly Endpoint[]) {
    this.picked = new PickedResults(endpoints);
  }

  pick(ctx: PickContext): PickResult {
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const idx = (this.next + i) % n;
      const e = this.endpoints[idx] as Endpoint;
      if (ctx.exclude?.has(e)) continue;
      this.next = (idx + 1) % n;
      return this.picked.of(e);
    }
    return noPick(n, ctx);
  }
}
