/**
 * How a proxied gRPC stream ended, the same for both engines: reported once per stream to its
 * listener, which feeds the stream metrics and the access log.
 */
import type { RouteReason } from "./inference-routing.js";

export interface StreamOutcome {
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly seconds: number;
  /** The client's address (no port), when known. */
  readonly client: string | undefined;
  /** The request's `:path`. */
  readonly method: string | undefined;
  /** The endpoint of the last attempt; undefined when none was picked. */
  readonly endpoint: string | undefined;
  /** Attempts beyond the first. */
  readonly retries: number;
  /** Why the first attempt's endpoint was picked; undefined when none was. */
  readonly route: RouteReason | undefined;
}

/** Hears how each stream ended (the client's connection or session: an object, not a closure per stream). */
export interface StreamOwner {
  streamDone(cluster: string, outcome: StreamOutcome): void;
}
