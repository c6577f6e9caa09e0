/**
 * Checks of a message's header blocks that RFC 9113 §8.1.1 makes a stream error PROTOCOL_ERROR
 * ("malformed"), beyond what the HPACK decoder checks field by field: no pseudo-header field in
 * trailers (§8.1), no connection-specific field (§8.2.2), and content-length equal to the DATA
 * received (§8.1.1, RFC 9110 §8.6).
 */
import type { HeaderList } from "./hpack-header-list.js";

/** Connection-specific fields (§8.2.2): a message carrying one is malformed. */
export const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

/**
 * True for a name in CONNECTION_SPECIFIC. Every field of every block passes through this check, so it
 * compares by length first rather than hash the name for a Set lookup (a gRPC block's fields are
 * mostly of other lengths, and the few of the same length differ in their first octets).
 */
export function isConnectionSpecific(name: string): boolean {
  switch (name.length) {
    case 7:
      return name === "upgrade";
    case 10:
      return name === "connection" || name === "keep-alive";
    case 16:
      return name === "proxy-connection";
    case 17:
      return name === "transfer-encoding";
    default:
      return false;
  }
}

/** True when the block carries a connection-specific field (§8.2.2). */
export function hasConnectionSpecificField(list: HeaderList): boolean {
  for (let i = 0; i < list.length; i++) if (isConnectionSpecific(list.name(i))) return true;
  return false;
}

/** True when trailers carry a pseudo-header field (§8.1: "trailers MUST NOT include pseudo-header fields"). */
export function trailersMalformed(list: HeaderList): boolean {
  for (let i = 0; i < list.length; i++) if (list.name(i).charCodeAt(0) === 0x3a /* : */) return true;
  return false;
}

/** No content-length field in the block. */
export const NO_CONTENT_LENGTH = -1;
/** A content-length that is not one decimal number (or two fields that disagree): malformed. */
export const BAD_CONTENT_LENGTH = -2;

/**
 * The declared content-length of a header block: octets of DATA the message must carry, or
 * NO_CONTENT_LENGTH, or BAD_CONTENT_LENGTH. Repeated fields with the same value count once (RFC 9110
 * §8.6); a list of values is only valid when they agree, which is all a proxy needs to know.
 */
export function contentLengthOf(list: HeaderList): number {
  let length = NO_CONTENT_LENGTH;
  for (let i = 0; i < list.length; i++) {
    if (list.name(i) !== "content-length") continue;
    const n = parseContentLength(list.value(i));
    if (n === BAD_CONTENT_LENGTH || (length !== NO_CONTENT_LENGTH && n !== length)) return BAD_CONTENT_LENGTH;
    length = n;
  }
  return length;
}

/** One content-length value: 1*DIGIT, or BAD_CONTENT_LENGTH (also past 2^53, which no DATA reaches). */
export function parseContentLength(value: string): number {
  if (value.length === 0 || value.length > 15) return BAD_CONTENT_LENGTH;
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const d = value.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return BAD_CONTENT_LENGTH;
    n = n * 10 + d;
  }
  return n;
}
