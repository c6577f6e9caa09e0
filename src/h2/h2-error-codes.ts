/**
 * HTTP/2 error codes (RFC 9113 §7), carried by RST_STREAM and GOAWAY: names for code that branches and
 * logs, numbers for the wire.
 */

export type H2ErrorName =
  | "NO_ERROR"
  | "PROTOCOL_ERROR"
  | "INTERNAL_ERROR"
  | "FLOW_CONTROL_ERROR"
  | "SETTINGS_TIMEOUT"
  | "STREAM_CLOSED"
  | "FRAME_SIZE_ERROR"
  | "REFUSED_STREAM"
  | "CANCEL"
  | "COMPRESSION_ERROR"
  | "CONNECT_ERROR"
  | "ENHANCE_YOUR_CALM"
  | "INADEQUATE_SECURITY"
  | "HTTP_1_1_REQUIRED";

/** Wire code of each error (§7). */
export const H2_ERROR_CODES: Readonly<Record<H2ErrorName, number>> = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
};

const NAMES: readonly H2ErrorName[] = (Object.keys(H2_ERROR_CODES) as H2ErrorName[]).sort(
  (a, b) => H2_ERROR_CODES[a] - H2_ERROR_CODES[b],
);

/**
 * Name of a received error code. An unknown code maps to INTERNAL_ERROR, which §7 allows ("MAY be treated
 * ... as being equivalent to INTERNAL_ERROR") and which keeps callers' unions closed.
 */
export function h2ErrorName(code: number): H2ErrorName {
  return NAMES[code] ?? "INTERNAL_ERROR";
}
