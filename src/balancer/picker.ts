/**
 * The seam between a policy and the data path, after grpc-js's load-balancer/picker split: a policy
 * turns a snapshot of the endpoint set into a picker; `pick()` is synchronous and cheap and returns a
 * tagged result. The data path never throws on a failed pick: it reports the reason.
 */
import type { Endpoint } from "./endpoint-set.js";

/** What the data path knows about the work being placed. */
export interface PickContext {
  /** Client address, IPv4-mapped IPv6 already normalised (see `normalizeClientAddress`). */
  readonly clientAddress?: string | undefined;
  /** Affinity key value when the cluster has `affinity` and the key is present (header value, ip…). */
  readonly affinityKey?: string | undefined;
  /** Endpoints already tried for this connection or stream; the picker never returns one of them. */
  readonly exclude?: ReadonlySet<Endpoint> | undefined;
  /**
   * The prompt's chained block hashes (`affinity.key: prompt_prefix`, prefix-blocks.ts), when the
   * request's prompt was found: the prefix picker decides.
   */
  readonly prefix?: readonly number[] | undefined;
}

/** Why no endpoint was picked; also a metric label and part of the message a client sees. */
export type PickFailureReason = "no_healthy_endpoint" | "all_endpoints_tried" | "at_capacity";

export type PickResult =
  | {
      readonly kind: "complete";
      readonly endpoint: Endpoint;
      /**
       * "cost": least_loaded compared two candidates and their costs decided (explain, access log);
       * "prefix_match" / "least_loaded": the prefix picker's rule (prefix-index.ts).
       */
      readonly decidedBy?: "cost" | "prefix_match" | "least_loaded";
    }
  | { readonly kind: "unavailable"; readonly reason: PickFailureReason };

/**
 * What a policy builds its picker from: the endpoint set at one version, split the two ways policies
 * read it (the balancer rebuilds it when the set's version moves).
 */
export interface PolicySnapshot {
  /** Endpoints that may take new work (healthy, not ejected, not drained), in configuration order. */
  readonly eligible: readonly Endpoint[];
  /** Endpoints whose health is "healthy" (ejected and drained included): consistent-hash tables use it. */
  readonly healthy: readonly Endpoint[];
}

export interface Picker {
  pick(ctx: PickContext): PickResult;
}

/** Reads live load: the picker is a snapshot of membership, but active counts move between rebuilds. */
export interface LoadView {
  activeOf(endpoint: Endpoint): number;
}

/** Injected randomness: a float in [0, 1). */
export type RandomSource = () => number;

export function unavailable(reason: PickFailureReason): PickResult {
  return reason === "no_healthy_endpoint" ? NO_HEALTHY : reason === "at_capacity" ? AT_CAPACITY : ALL_TRIED;
}

const NO_HEALTHY: PickResult = Object.freeze({ kind: "unavailable", reason: "no_healthy_endpoint" });
const ALL_TRIED: PickResult = Object.freeze({ kind: "unavailable", reason: "all_endpoints_tried" });
/** Endpoints could take the work but every one of them is at its cap (`max_active`). */
const AT_CAPACITY: PickResult = Object.freeze({ kind: "unavailable", reason: "at_capacity" });

/** `::ffff:10.0.0.1` → `10.0.0.1`, so one client hashes the same on v4 and dual-stack sockets. */
export function normalizeClientAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const lower = address.toLowerCase();
  if (lower.startsWith("::ffff:") && lower.indexOf(".") > 0) return address.slice(7);
  return address;
}
