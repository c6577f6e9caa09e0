// Round robin, weights ignored (grpc-js's round_robin): the simplest fair rotation, for equal workers.
import type { Endpoint } from "./endpoint-set.js";
import { completeResults, isExcluded, noPick } from "./picker-results.js";
import type { PickContext, PickResult, Picker } from "./picker.js";

/** Rotates over `eligible` in order; an excluded endpoint passes its turn to the next one. */
export class RoundRobinPicker implements Picker {
  private next = 0;
  private readonly results: readonly PickResult[];

  constructor(private readonly eligible: readonly Endpoint[]) {
    this.results = completeResults(eligible);
  }

  pick(ctx: PickContext): PickResult {
    const n = this.eligible.length;
    for (let tried = 0, i = this.next; tried < n; tried++, i = i + 1 === n ? 0 : i + 1) {
      if (isExcluded(ctx, this.eligible[i] as Endpoint)) continue;
      this.next = i + 1 === n ? 0 : i + 1;
      return this.results[i] as PickResult;
    }
    return noPick(n, ctx);
  }
}
