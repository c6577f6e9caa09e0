/**
 * The HTTP/2 client connection preface (RFC 9113 §3.4): 24 fixed octets, then a SETTINGS frame. A server
 * that reads anything else must treat it as a connection error of type PROTOCOL_ERROR; checking octet by
 * octet as they arrive lets it give up on an HTTP/1.1 or TLS client after the first read.
 */

/** "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n". */
export const CLIENT_PREFACE: Buffer = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export type PrefaceCheck = "match" | "partial" | "mismatch";

/**
 * Compares `src[offset, offset + length)` with the preface octets starting at `prefaceOffset` (how many
 * octets of it were already matched): "match" when the preface is now complete, "partial" when every
 * octet seen agrees but more are needed, "mismatch" otherwise. Octets past the preface are not looked at.
 */
export function checkClientPreface(
  src: Uint8Array,
  offset: number,
  length: number,
  prefaceOffset = 0,
): PrefaceCheck {
  const n = Math.min(length, CLIENT_PREFACE.length - prefaceOffset);
  for (let i = 0; i < n; i++) {
    if (src[offset + i] !== CLIENT_PREFACE[prefaceOffset + i]) return "mismatch";
  }
  return prefaceOffset + n === CLIENT_PREFACE.length ? "match" : "partial";
}
