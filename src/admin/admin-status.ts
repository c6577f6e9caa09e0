/**
 * The `/status` document of docs/architecture.md: every listener with its bound address and activity, every
 * cluster with its endpoints' health, weight, drain flag and counters. Counts are read from the
 * endpoint sets (shared with worker threads), so they are global and the ones the policies see;
 * listener activity is summed over worker threads.
 */
import type { Fulcrum } from "../runtime/fulcrum.js";

export interface EndpointStatus {
  readonly address: string;
  readonly weight: number;
  readonly health: "healthy" | "unhealthy" | "ejected";
  readonly drained: boolean;
  readonly active: number;
  readonly total: number;
  readonly failures: number;
}

export interface StatusDocument {
  readonly listeners: readonly {
    name: string;
    protocol: "tcp" | "grpc";
    address: string;
    engine: string | null;
    active: number;
  }[];
  readonly clusters: readonly { name: string; policy: string; endpoints: readonly EndpointStatus[] }[];
  readonly draining: boolean;
}

export async function statusOf(fulcrum: Fulcrum): Promise<StatusDocument> {
  const listeners = await fulcrum.listenerStatus();
  return {
    listeners: listeners.map((l) => ({
      name: l.name,
      protocol: l.protocol,
      address: l.address,
      engine: l.protocol === "grpc" ? l.engine : null,
      active: l.active,
    })),
    clusters: [...fulcrum.clusters.values()].map((c) => {
      const set = c.endpoints;
      return {
        name: c.name,
        policy: c.config.policy,
        endpoints: set.endpoints.map((e) => ({
          address: e.address,
          weight: e.weight,
          health: e.health === "unhealthy" ? "unhealthy" : e.ejected ? "ejected" : "healthy",
          drained: e.drained,
          active: set.activeOf(e),
          total: set.totalOf(e),
          failures: set.failuresOf(e),
        })),
      };
    }),
    draining: fulcrum.draining,
  };
}
