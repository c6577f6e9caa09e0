// Preallocated pick results (grpc-js's picker returns results, not sockets): a pick allocates nothing.
import type { Endpoint } from "./endpoint-set.js";
import { unavailable, type PickContext, type PickResult } from "./picker.js";

/** One frozen `{ kind: "complete", endpoint }` per endpoint, built once per snapshot, by index. */
export function completeResults(endpoints: readonly Endpoint[]): readonly PickResult[] {
  return endpoints.map((endpoint) => Object.freeze({ kind: "complete", endpoint }) as PickResult);
}

/** True when the pick must skip `e` because it was already tried. */
export function isExcluded(ctx: PickContext, e: Endpoint): boolean {
  const exclude = ctx.exclude;
  return exclude !== undefined && exclude.size > 0 && exclude.has(e);
}

/**
 * Why a pick found nothing: no eligible endpoint at all, or every eligible one was already tried.
 * `eligibleCount` is the snapshot's; an empty exclusion set means nothing was tried.
 */
export function noPick(eligibleCount: number, ctx: PickContext): PickResult {
  return eligibleCount === 0 || ctx.exclude === undefined || ctx.exclude.size === 0
    ? unavailable("no_healthy_endpoint")
    : unavailable("all_endpoints_tried");
}
