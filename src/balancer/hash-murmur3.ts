/**
 * MurmurHash3 x86_32 (Austin Appleby, public domain algorithm): a well-known, documented 32-bit hash,
 * so the consistent-hash tables of every Fulcrum process, thread and replica agree. Hashes the UTF-8
 * bytes of a string, encoded into a reusable scratch buffer (no allocation per hash).
 */

const encoder = new TextEncoder();
let scratch = new Uint8Array(256);

export function murmur3_32(text: string, seed: number): number {
  if (text.length * 3 > scratch.length) scratch = new Uint8Array(text.length * 3);
  const { written: len } = encoder.encodeInto(text, scratch);
  const b = scratch;
  let h = seed >>> 0;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const blocks = len & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = (b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = len & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= (b[blocks + 2] as number) << 16;
    if (tail >= 2) k ^= (b[blocks + 1] as number) << 8;
    k ^= b[blocks] as number;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
