/**
 * Why a cluster has no endpoint to offer, in the words of the answer a client gets: an operator who
 * drained every endpoint (admin API) reads "drained", not "no healthy endpoint", and a mix says how
 * many endpoints are out for which reason. Computed only when a pick already failed (never per pick).
 */
import type { Endpoint } from "./endpoint-set.js";

/** `drained`: every endpoint is drained; `no_healthy_endpoint`: anything else (none at all included). */
export interface EndpointShortage {
  readonly reason: "drained" | "no_healthy_endpoint";
  /** e.g. `every endpoint of cluster "x" is drained`, `no healthy endpoint in cluster "x" (2 drained, 1 unhealthy)`. */
  readonly message: string;
}

/**
 * The shortage of `cluster` given its current members. Each endpoint counts once, for the first of
 * drained (an operator's decision), unhealthy (active health), ejected (outlier detection).
 */
export function endpointShortage(cluster: string, endpoints: readonly Endpoint[]): EndpointShortage {
  let drained = 0;
  let unhealthy = 0;
  let ejected = 0;
  for (const e of endpoints) {
    if (e.drained) drained++;
    else if (e.health !== "healthy") unhealthy++;
    else if (e.ejected) ejected++;
  }
  if (endpoints.length > 0 && drained === endpoints.length)
    return { reason: "drained", message: `every endpoint of cluster "${cluster}" is drained` };
  const counts = [
    drained > 0 ? `${drained} drained` : "",
    unhealthy > 0 ? `${unhealthy} unhealthy` : "",
    ejected > 0 ? `${ejected} ejected` : "",
  ].filter((c) => c !== "");
  const why = counts.length > 0 ? ` (${counts.join(", ")})` : "";
  return { reason: "no_healthy_endpoint", message: `no healthy endpoint in cluster "${cluster}"${why}` };
}
