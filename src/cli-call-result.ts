// What one call of `fulcrum call` gives back, in a file of its own so that the gRPC caller
// (cli-call.ts) and the TCP caller (cli-call-tcp.ts) share it without importing each other.

/** One call's outcome, as printed and summed up. */
export interface CallResult {
  /** "OK", a gRPC status name, or (TCP) an error code. */
  readonly status: string;
  readonly worker: string | undefined;
  /** The endpoint named by the `fulcrum-route` trailer, if any. */
  readonly endpoint: string | undefined;
  readonly ms: number;
  readonly detail: string;
}
