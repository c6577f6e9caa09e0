/**
 * Triton sequence pins (`affinity.key: triton_sequence`): which endpoint each live sequence was sent
 * to, so that every request of a sequence reaches the instance holding its state, even after the
 * cluster's membership changed (a consistent hash alone would move ~1/N of the sequences).
 *
 * An open-addressing hash table in shared memory (like the endpoint counters), so every worker thread
 * of the process reads and writes the same pins without messages: keys are two 32-bit MurmurHash3
 * values of the sequence key (a 64-bit fingerprint; a collision of two live sequences is about
 * n²/2^65), values the endpoint's counter slot and the time of the last request. Two threads pinning
 * the same new sequence at once compute the same consistent-hash choice, so the race is benign.
 * Entries end on `sequence_end` (unpin) or after `sequence_idle_timeout` without a request; their
 * places are reused. Pure: the clock is passed in.
 */
import { murmur3_32 } from "./hash-murmur3.js";

/** What crosses a thread boundary to attach the same table elsewhere. */
export interface SequencePinBuffers {
  readonly capacity: number;
  /** Per entry: fingerprint high, fingerprint low (0, 0 = never used). */
  readonly keys: SharedArrayBuffer;
  /** Per entry: endpoint slot, or -1 when the entry is free for reuse. */
  readonly slots: SharedArrayBuffer;
  /** Per entry: last request, in seconds of the passed clock. */
  readonly used: SharedArrayBuffer;
}

const FREE = -1;

export class SequencePins {
  private readonly keys: Int32Array;
  private readonly slots: Int32Array;
  private readonly used: Int32Array;
  private readonly mask: number;

  constructor(
    readonly buffers: SequencePinBuffers,
    private readonly idleSeconds: number,
  ) {
    this.keys = new Int32Array(buffers.keys);
    this.slots = new Int32Array(buffers.slots);
    this.used = new Int32Array(buffers.used);
    this.mask = buffers.capacity - 1;
  }

  /** A table for `capacity` live sequences (a power of two). */
  static create(capacity: number, idleSeconds: number): SequencePins {
    if (capacity <= 0 || (capacity & (capacity - 1)) !== 0)
      throw new RangeError("capacity must be a power of two");
    const slots = new SharedArrayBuffer(capacity * 4);
    new Int32Array(slots).fill(FREE);
    return new SequencePins(
      {
        capacity,
        keys: new SharedArrayBuffer(capacity * 8),
        slots,
        used: new SharedArrayBuffer(capacity * 4),
      },
      idleSeconds,
    );
  }

  /** The endpoint slot `key` is pinned to, or undefined (never pinned, ended, or idle too long). */
  lookup(key: string, nowSeconds: number): number | undefined {
    const i = this.find(key, nowSeconds);
    if (i < 0) return undefined;
    Atomics.store(this.used, i, nowSeconds);
    return Atomics.load(this.slots, i);
  }

  /** Pins `key` to `slot`; false when the table is full (the request is then routed unpinned). */
  pin(key: string, slot: number, nowSeconds: number): boolean {
    const [hi, lo] = fingerprint(key);
    const cap = this.buffers.capacity;
    let reusable = -1;
    for (let n = 0, i = hi & this.mask; n < cap; n++, i = (i + 1) & this.mask) {
      const h = Atomics.load(this.keys, 2 * i);
      const l = Atomics.load(this.keys, 2 * i + 1);
      if (h === hi && l === lo) {
        Atomics.store(this.used, i, nowSeconds);
        Atomics.store(this.slots, i, slot);
        return true;
      }
      if (reusable < 0 && this.isFree(i, nowSeconds)) reusable = i;
      if (h === 0 && l === 0) break; // never used: the key is not further on
    }
    if (reusable < 0) return false;
    // Claim the place: the previous fingerprint (or 0) must still be there.
    const old = Atomics.load(this.keys, 2 * reusable);
    if (Atomics.compareExchange(this.keys, 2 * reusable, old, hi) !== old)
      return this.pin(key, slot, nowSeconds);
    Atomics.store(this.keys, 2 * reusable + 1, lo);
    Atomics.store(this.used, reusable, nowSeconds);
    Atomics.store(this.slots, reusable, slot);
    return true;
  }

  /** Ends the pin of `key` (`sequence_end`). */
  unpin(key: string, nowSeconds: number): void {
    const i = this.find(key, nowSeconds);
    if (i >= 0) Atomics.store(this.slots, i, FREE);
  }

  /** Live pins (tests, status). */
  count(nowSeconds: number): number {
    let n = 0;
    for (let i = 0; i < this.buffers.capacity; i++) if (!this.isFree(i, nowSeconds)) n++;
    return n;
  }

  private isFree(i: number, nowSeconds: number): boolean {
    return Atomics.load(this.slots, i) === FREE || nowSeconds - Atomics.load(this.used, i) > this.idleSeconds;
  }

  /** Index of `key`'s live entry, or -1. */
  private find(key: string, nowSeconds: number): number {
    const [hi, lo] = fingerprint(key);
    const cap = this.buffers.capacity;
    for (let n = 0, i = hi & this.mask; n < cap; n++, i = (i + 1) & this.mask) {
      const h = Atomics.load(this.keys, 2 * i);
      const l = Atomics.load(this.keys, 2 * i + 1);
      if (h === hi && l === lo) return this.isFree(i, nowSeconds) ? -1 : i;
      if (h === 0 && l === 0) return -1;
    }
    return -1;
  }
}

/** Two independent 32-bit hashes of the key; never (0, 0), which marks a never-used entry. */
function fingerprint(key: string): [number, number] {
  const hi = murmur3_32(key, 0x51ed) | 0;
  const lo = murmur3_32(key, 0x7a3) | 0;
  return hi === 0 && lo === 0 ? [1, 0] : [hi, lo];
}
