/**
 * Field name and value validity of HTTP/2 (RFC 9113 §8.2.1), checked on octets so the HPACK decoder can
 * flag a block while it copies the literal anyway, and on strings for fields Fulcrum builds itself.
 *
 * A name must not be empty nor contain 0x00–0x20, 'A'–'Z' (0x41–0x5a) or 0x7f–0xff, and a colon only as
 * the first character (pseudo-header fields, §8.3). A value must not contain NUL, LF or CR, nor start or
 * end with SP or HTAB. A request or response carrying such a field is malformed (§8.1.1): a stream error
 * of type PROTOCOL_ERROR, which the HTTP/2 layer applies; HPACK itself has no opinion (RFC 7541 §5.2
 * allows any octet).
 */

/** 1 where the octet may appear in a field name (colon excluded: only allowed first). */
const NAME_OCTET: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let c = 0x21; c < 0x7f; c++) t[c] = c >= 0x41 && c <= 0x5a ? 0 : 1;
  t[0x3a] = 0;
  return t;
})();

/** 1 where the octet may appear in a field value. */
const VALUE_OCTET: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(1);
  t[0x00] = 0;
  t[0x0a] = 0;
  t[0x0d] = 0;
  return t;
})();

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** RFC 9113 §8.2.1 name check over `src[start, end)`. */
export function isValidFieldNameOctets(src: Uint8Array, start: number, end: number): boolean {
  if (start >= end) return false;
  let i = src[start] === 0x3a ? start + 1 : start;
  if (i === end) return false;
  for (; i < end; i++) if (NAME_OCTET[src[i] as number] === 0) return false;
  return true;
}

/** RFC 9113 §8.2.1 value check over `src[start, end)`; the empty value is valid. */
export function isValidFieldValueOctets(src: Uint8Array, start: number, end: number): boolean {
  if (start === end) return true;
  if (isWhitespace(src[start] as number) || isWhitespace(src[end - 1] as number)) return false;
  for (let i = start; i < end; i++) if (VALUE_OCTET[src[i] as number] === 0) return false;
  return true;
}

/** RFC 9113 §8.2.1 name check on a latin1 string (characters above 0xff are invalid). */
export function isValidFieldName(name: string): boolean {
  if (name.length === 0) return false;
  let i = name.charCodeAt(0) === 0x3a ? 1 : 0;
  if (i === name.length) return false;
  for (; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0xff || NAME_OCTET[c] === 0) return false;
  }
  return true;
}

/** RFC 9113 §8.2.1 value check on a latin1 string (characters above 0xff are invalid). */
export function isValidFieldValue(value: string): boolean {
  const n = value.length;
  if (n === 0) return true;
  if (isWhitespace(value.charCodeAt(0)) || isWhitespace(value.charCodeAt(n - 1))) return false;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c > 0xff || VALUE_OCTET[c] === 0) return false;
  }
  return true;
}
