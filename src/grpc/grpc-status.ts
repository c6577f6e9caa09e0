/**
 * gRPC status codes and the mapping from HTTP/2 stream errors to them (gRPC's
 * doc/PROTOCOL-HTTP2.md, "Errors"). The one place where a transport failure becomes what the client
 * sees, so the log line, the metric label and the client's status agree.
 */
import { constants } from "node:http2";

export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  PERMISSION_DENIED: 7,
} as const;
export type GrpcStatusCode = number;

/** Status names for the `grpc_code` metric label (bounded: 17 values). */
const NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

export function statusName(code: number): string {
  return NAMES[code] ?? "UNKNOWN";
}

/** Parses a `grpc-status` header value; a missing or malformed one is UNKNOWN. */
export function parseStatus(value: unknown): number {
  if (typeof value !== "string") return GrpcStatus.UNKNOWN;
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 && n <= 16 ? n : GrpcStatus.UNKNOWN;
}

/** The status a client sees for an upstream stream reset with `rstCode`. */
export function statusOfResetCode(rstCode: number): number {
  switch (rstCode) {
    case constants.NGHTTP2_REFUSED_STREAM:
      return GrpcStatus.UNAVAILABLE;
    case constants.NGHTTP2_CANCEL:
      return GrpcStatus.CANCELLED;
    case constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case constants.NGHTTP2_INADEQUATE_SECURITY:
      return GrpcStatus.PERMISSION_DENIED;
    default:
      return GrpcStatus.INTERNAL;
  }
}

/**
 * Percent-encodes a status message as gRPC requires (`grpc-message` is ASCII; anything outside
 * 0x20–0x7E and `%` itself are encoded as UTF-8 percent escapes).
 */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
