// MurmurHash3 x86_32 (Austin Appleby, SMHasher): a published, fast 32-bit hash, so every process agrees.

const encoder = new TextEncoder();
/** UTF-8 scratch shared by every hash; grows only when a string does not fit. */
let scratch = new Uint8Array(256);

/**
 * MurmurHash3 x86_32 of the UTF-8 bytes of `text` with `seed`, as an unsigned 32-bit integer. Matches
 * the reference implementation (e.g. `"hello"`, seed 0 → `0x248bfa47`); allocates nothing once the
 * scratch buffer fits the longest string seen.
 */
export function murmur3_32(text: string, seed: number): number {
  let encoded = encoder.encodeInto(text, scratch);
  if (encoded.read < text.length) {
    // A UTF-16 code unit never takes more than 3 UTF-8 bytes.
    scratch = new Uint8Array(text.length * 3);
    encoded = encoder.encodeInto(text, scratch);
  }
  return murmur3Bytes(scratch, 0, encoded.written, seed);
}

/** MurmurHash3 x86_32 of `b[at, at + len)` with `seed`, as an unsigned 32-bit integer. */
export function murmur3Bytes(b: Uint8Array, at: number, len: number, seed: number): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed | 0;
  const blocksEnd = at + (len & ~3);
  for (let i = at; i < blocksEnd; i += 4) {
    let k =
      (b[i] as number) |
      ((b[i + 1] as number) << 8) |
      ((b[i + 2] as number) << 16) |
      ((b[i + 3] as number) << 24);
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
    if (tail === 3) k ^= (b[blocksEnd + 2] as number) << 16;
    if (tail >= 2) k ^= (b[blocksEnd + 1] as number) << 8;
    k ^= b[blocksEnd] as number;
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
