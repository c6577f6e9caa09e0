/**
 * `grpc-timeout` header: `^\d{1,8}[HMSmun]$` (gRPC's PROTOCOL-HTTP2.md). Fulcrum forwards the header
 * unchanged and enforces it itself, so a worker that ignores deadlines cannot hold a client past them.
 */

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** Milliseconds of the timeout, or undefined when the header is absent or malformed. */
export function parseGrpcTimeout(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}
