/**
 * The open streams of one connection by stream id: open addressing with linear probing over a
 * power-of-two array, deletion by backward shift (no tombstones), grown when half full and never
 * shrunk (a connection's streams are bounded by MAX_CONCURRENT_STREAMS). Stream ids of one side are
 * all odd and increase, so `id >>> 1` spreads consecutive streams over consecutive slots.
 *
 * Why not a Map: V8 links a Map's hash table, when it is rehashed, to the table that replaces it (so
 * that live iterators can follow), and leaves the old entries in place. Under stream churn a table
 * that was promoted to the old generation and then replaced keeps every later table, and every
 * stream those held, alive through each young-generation collection until the next full one.
 * Measured with `--trace-gc-nvp` under the bench's unary 8 × 16 load: 28–32 % of the `frames`
 * engine's young allocation survived each scavenge (0.1 % at 1 × 1), and the scavenges cost about
 * a tenth of its CPU.
 */
export class StreamTable<T extends { readonly id: number }> {
  private slots: (T | undefined)[];
  private mask: number;
  private count = 0;
  /**
   * Entries not in their home slot. Streams of one connection have consecutive ids, so they sit at
   * home and a delete has nothing to shift; only when this is non-zero does it scan its run.
   */
  private displaced = 0;

  constructor(capacity = 16) {
    let size = 8;
    while (size < capacity) size *= 2;
    this.slots = new Array<T | undefined>(size).fill(undefined);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  get(id: number): T | undefined {
    const slots = this.slots;
    for (let i = (id >>> 1) & this.mask; ; i = (i + 1) & this.mask) {
      const s = slots[i];
      if (s === undefined || s.id === id) return s;
    }
  }

  /** Adds `entry`, replacing an entry with the same id. */
  set(entry: T): void {
    if ((this.count + 1) * 2 > this.slots.length) this.grow();
    const slots = this.slots;
    const home = (entry.id >>> 1) & this.mask;
    for (let i = home; ; i = (i + 1) & this.mask) {
      const s = slots[i];
      if (s === undefined) {
        slots[i] = entry;
        this.count++;
        if (i !== home) this.displaced++;
        return;
      }
      if (s.id === entry.id) {
        slots[i] = entry;
        return;
      }
    }
  }

  /** Removes the entry with `id`; false when there was none. */
  delete(id: number): boolean {
    const slots = this.slots;
    const mask = this.mask;
    let hole = (id >>> 1) & mask;
    for (; ; hole = (hole + 1) & mask) {
      const s = slots[hole];
      if (s === undefined) return false;
      if (s.id === id) break;
    }
    this.count--;
    if (hole !== ((id >>> 1) & mask)) this.displaced--;
    if (this.displaced === 0) {
      slots[hole] = undefined;
      return true;
    }
    // Backward shift: pull each later entry of the run into the hole when its home slot allows.
    for (let j = (hole + 1) & mask; ; j = (j + 1) & mask) {
      const s = slots[j];
      if (s === undefined) break;
      const home = (s.id >>> 1) & mask;
      // `s` may move to `hole` unless its home lies cyclically in (hole, j].
      const homeBetween = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!homeBetween) {
        slots[hole] = s;
        if (hole === home) this.displaced--;
        hole = j;
      }
    }
    slots[hole] = undefined;
    return true;
  }

  /** A copy of the entries (safe to iterate while deleting). */
  values(): T[] {
    const out: T[] = [];
    for (const s of this.slots) if (s !== undefined) out.push(s);
    return out;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Array<T | undefined>(old.length * 2).fill(undefined);
    this.mask = this.slots.length - 1;
    this.count = 0;
    this.displaced = 0;
    for (const s of old) if (s !== undefined) this.set(s);
  }
}
