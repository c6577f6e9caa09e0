/**
 * Weighted random: each endpoint with probability weight / total. Stateless, so it needs no
 * coordination between worker threads; the baseline the smarter policies are compared with.
 */
import type { Endpoint } from "./endpoint-set.js";
import { PickedResults, noPick } from "./picked.js";
import type { PickContext, PickResult, Picker, RandomSource } from "./picker.js";

/** Draws an endpoint with probability proportional to weight, skipping excluded ones. */
export function weightedDraw(
  endpoints: readonly Endpoint[],
  random: RandomSource,
  exclude: ReadonlySet<Endpoint> | undefined,
  alsoSkip?: Endpoint,
): Endpoint | undefined {
  let total = 0;
  for (const e of endpoints) if (!exclude?.has(e) && e !== alsoSkip) total += e.weight;
  if (total === 0) return undefined;
  let r = random() * total;
  let last: Endpoint | undefined;
  for (const e of endpoints) {
    if (exclude?.has(e) || e === alsoSkip) continue;
    last = e;
    r -= e.weight;
    if (r < 0) return e;
  }
  return last;
}

export class RandomPicker implements Picker {
  private readonly picked: PickedResults;

  constructor(
    private readonly endpoints: readonly Endpoint[],
    private readonly random: RandomSource,
  ) {
    this.picked = new PickedResults(endpoints);
  }

  pick(ctx: PickContext): PickResult {
    const e = weightedDraw(this.endpoints, this.random, ctx.exclude);
    return e ? this.picked.of(e) : noPick(this.endpoints.length, ctx);
  }
}
