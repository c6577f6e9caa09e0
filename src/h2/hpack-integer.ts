/**
 * HPACK integer representation (RFC 7541 §5.1): an N-bit prefix, and when the value does not fit,
 * continuation octets of 7 bits each, least significant first.
 *
 * §5.1 leaves the largest value to the implementation and requires decoders to treat larger ones as a
 * decoding error: here 2^31 - 1, far above any index, string length or table size Fulcrum accepts, and
 * at most five continuation octets, so an endless run of 0x80 octets (a value padded with zero groups)
 * is refused instead of being read to the end of the block.
 */

/** Largest integer the decoder accepts; anything larger is a COMPRESSION_ERROR. */
export const HPACK_MAX_INTEGER = 0x7fffffff;

const MAX_CONTINUATION_OCTETS = 5;

/** A read position that decoding advances; one per decoder, reused for every integer. */
export interface HpackCursor {
  offset: number;
}

/**
 * Reads an integer with a `prefixBits`-bit prefix at `cursor.offset` (the prefix octet's high bits are
 * ignored) and advances the cursor. Returns -1 when the integer is truncated by `end`, longer than five
 * continuation octets or above `HPACK_MAX_INTEGER`.
 */
export function decodeInteger(src: Uint8Array, cursor: HpackCursor, end: number, prefixBits: number): number {
  let p = cursor.offset;
  if (p >= end) return -1;
  const max = (1 << prefixBits) - 1;
  let value = (src[p++] as number) & max;
  if (value === max) {
    let scale = 1;
    let octets = 0;
    for (;;) {
      if (p >= end || octets === MAX_CONTINUATION_OCTETS) return -1;
      const b = src[p++] as number;
      octets++;
      value += (b & 0x7f) * scale;
      if (value > HPACK_MAX_INTEGER) return -1;
      if ((b & 0x80) === 0) break;
      scale *= 128;
    }
  }
  cursor.offset = p;
  return value;
}

/** Octets needed for `value` with a `prefixBits`-bit prefix. */
export function integerEncodedLength(value: number, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) return 1;
  let n = 2;
  for (let rest = value - max; rest >= 128; rest = Math.floor(rest / 128)) n++;
  return n;
}

/**
 * Writes `value` with a `prefixBits`-bit prefix at `out[offset]`, OR-ing `pattern` (the representation's
 * leading bits, e.g. 0x80 for an indexed field) into the first octet; returns the offset after it.
 */
export function encodeInteger(
  value: number,
  prefixBits: number,
  pattern: number,
  out: Uint8Array,
  offset: number,
): number {
  const max = (1 << prefixBits) - 1;
  let o = offset;
  if (value < max) {
    out[o++] = pattern | value;
    return o;
  }
  out[o++] = pattern | max;
  let rest = value - max;
  while (rest >= 128) {
    out[o++] = (rest % 128) | 0x80;
    rest = Math.floor(rest / 128);
  }
  out[o++] = rest;
  return o;
}
