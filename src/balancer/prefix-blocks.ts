/**
 * A prompt as chained block hashes, for prefix-cache affinity: the prompt's bytes are cut into blocks
 * of `blockBytes`, and block i's hash is MurmurHash3 (x86_32) of its bytes seeded with block i−1's
 * hash, so one number names the whole prefix up to the end of block i. Two prompts share hash i
 * exactly when (hash collisions aside) their first i + 1 blocks are equal, which is what an inference
 * server's prefix cache (vLLM's and TensorRT-LLM's KV blocks, SGLang's radix tree) reuses.
 *
 * Only whole blocks count (a cache reuses whole blocks), and at most `maxBlocks` of them: past that
 * the hasher ignores the rest. The bytes arrive as they come off the wire, in any split; a block that
 * straddles two chunks is copied into a block-sized scratch, every other block is hashed in place.
 * Pure: no I/O, no clock.
 */

import { murmur3Bytes } from "./hash-murmur3.js";

/** The first block's seed: any fixed value, the same in every process. */
const CHAIN_SEED = 0x9747b28c;

export class PrefixBlockHasher {
  /** The chained hash of each whole block so far, first block first. */
  readonly hashes: number[] = [];
  private readonly scratch: Buffer;
  private filled = 0;

  constructor(
    private readonly blockBytes: number,
    private readonly maxBlocks: number,
  ) {
    if (!Number.isInteger(blockBytes) || blockBytes < 1) throw new RangeError(`block size ${blockBytes}`);
    this.scratch = Buffer.allocUnsafe(blockBytes);
  }

  /** True once `maxBlocks` blocks were hashed: further bytes change nothing. */
  get full(): boolean {
    return this.hashes.length >= this.maxBlocks;
  }

  /** Feeds the prompt's next bytes `b[start, end)`. */
  push(b: Uint8Array, start: number, end: number): void {
    const size = this.blockBytes;
    let p = start;
    if (this.filled > 0) {
      const k = Math.min(size - this.filled, end - p);
      this.scratch.set(b.subarray(p, p + k), this.filled);
      this.filled += k;
      p += k;
      if (this.filled < size) return;
      this.filled = 0;
      this.addBlock(this.scratch, 0);
    }
    for (; p + size <= end && !this.full; p += size) this.addBlock(b, p);
    if (p < end && !this.full) {
      this.scratch.set(b.subarray(p, end), 0);
      this.filled = end - p;
    }
  }

  private addBlock(b: Uint8Array, at: number): void {
    if (this.full) return;
    const hashes = this.hashes;
    const seed = hashes.length === 0 ? CHAIN_SEED : (hashes[hashes.length - 1] as number);
    hashes.push(murmur3Bytes(b, at, this.blockBytes, seed));
  }
}
