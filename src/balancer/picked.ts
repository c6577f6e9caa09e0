/**
 * Preallocated "complete" results, one per endpoint of a snapshot, so a pick allocates nothing.
 */
import type { Endpoint } from "./endpoint-set.js";
import type { PickContext, PickResult } from "./picker.js";
import { unavailable } from "./picker.js";

export class PickedResults {
  private readonly results: Map<Endpoint, PickResult>;

  constructor(endpoints: readonly Endpoint[]) {
    this.results = new Map(endpoints.map((e) => [e, Object.freeze({ kind: "complete", endpoint: e }) as PickResult]));
  }

  of(e: Endpoint): PickResult {
    return this.results.get(e) ?? { kind: "complete", endpoint: e };
  }
}

/** The failure for a pick that found nothing: nothing eligible at all, or everything already tried. */
export function noPick(eligibleCount: number, ctx: PickContext): PickResult {
  return eligibleCount === 0 || !ctx.exclude || ctx.exclude.size === 0
    ? unavailable("no_healthy_endpoint")
    : unavailable("all_endpoints_tried");
}
