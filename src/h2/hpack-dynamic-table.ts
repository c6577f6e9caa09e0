/**
 * The HPACK dynamic table (RFC 7541 §2.3.2, §4): a FIFO of (name, value) entries, newest first, whose
 * size is the sum over entries of name length + value length + 32 octets (§4.1) and never exceeds the
 * current maximum size; adding an entry evicts from the oldest end until it fits (§4.4), an entry larger
 * than the maximum empties the table (§4.4), and lowering the maximum evicts (§4.3).
 *
 * A ring buffer over parallel arrays, so adding and evicting move no entries and allocate nothing once
 * the arrays have grown to the table's working set. Names and values are latin1 strings (one character
 * per octet), so `string.length` is the octet count §4.1 asks for.
 */

/** Per-entry overhead in octets (§4.1), also used by the header list size of RFC 9113 §6.5.2. */
export const HPACK_ENTRY_OVERHEAD = 32;

/** The table's size in octets as §4.1 counts it for one entry. */
export function hpackEntrySize(name: string, value: string): number {
  return name.length + value.length + HPACK_ENTRY_OVERHEAD;
}

export class HpackDynamicTable {
  private names: string[];
  private values: string[];
  private flags: Uint8Array;
  private mask: number;
  /** Slot the next entry goes into. */
  private head = 0;
  private count = 0;
  private octets = 0;
  private maxSize: number;
  /** Entries ever added; entry i (0 = newest) was the (insertCount - 1 - i)-th. */
  private inserted = 0;
  /**
   * Bumped by every change (an entry added, the size changed, the table emptied): an HPACK block
   * decodes, or encodes, to the same thing as long as it is unchanged (hpack-block-memo.ts).
   */
  private changes = 0;

  /** @param maxSize initial maximum size in octets (4,096 on a new HTTP/2 connection, RFC 9113 §6.5.2). */
  constructor(maxSize: number) {
    this.maxSize = maxSize;
    const slots = 16;
    this.names = new Array<string>(slots).fill("");
    this.values = new Array<string>(slots).fill("");
    this.flags = new Uint8Array(slots);
    this.mask = slots - 1;
  }

  /** Number of entries. */
  get length(): number {
    return this.count;
  }

  /** Octets in use, as §4.1 counts them. */
  get size(): number {
    return this.octets;
  }

  /** Current maximum size in octets. */
  get capacity(): number {
    return this.maxSize;
  }

  /** The table's version: equal versions, equal table. */
  get version(): number {
    return this.changes;
  }

  /** Entries added since the table was created (evicted ones included). */
  get insertCount(): number {
    return this.inserted;
  }

  /** Name of entry `i`, 0 being the newest (HPACK index 62 + i). `i` must be below `length`. */
  name(i: number): string {
    return this.names[(this.head - 1 - i) & this.mask] as string;
  }

  value(i: number): string {
    return this.values[(this.head - 1 - i) & this.mask] as string;
  }

  /** The caller's 8 bits stored with entry `i` (the decoder marks fields RFC 9113 §8.2.1 rejects). */
  flag(i: number): number {
    return this.flags[(this.head - 1 - i) & this.mask] as number;
  }

  /** Copies the entries, newest first; for tests and diagnostics, not the data path. */
  entries(): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (let i = 0; i < this.count; i++) out.push([this.name(i), this.value(i)]);
    return out;
  }

  /** Adds an entry, evicting older ones; one larger than the maximum size leaves the table empty. */
  add(name: string, value: string, flag: number): void {
    this.changes++;
    const size = hpackEntrySize(name, value);
    if (size > this.maxSize) {
      this.evictTo(0);
      return;
    }
    this.evictTo(this.maxSize - size);
    if (this.count === this.names.length) this.grow();
    const slot = this.head;
    this.names[slot] = name;
    this.values[slot] = value;
    this.flags[slot] = flag;
    this.head = (slot + 1) & this.mask;
    this.count++;
    this.octets += size;
    this.inserted++;
  }

  /** Evicts every entry: what adding an entry larger than the maximum size does (§4.4). */
  clear(): void {
    this.changes++;
    this.evictTo(0);
  }

  /** Applies a new maximum size (a dynamic table size update, §6.3), evicting as needed. */
  setCapacity(maxSize: number): void {
    this.changes++;
    this.maxSize = maxSize;
    this.evictTo(maxSize);
  }

  /** Called for each evicted entry with its insertion number; the encoder keeps its index in step. */
  protected evicted(_name: string, _value: string, _insertion: number): void {}

  private evictTo(limit: number): void {
    while (this.octets > limit) {
      const slot = (this.head - this.count) & this.mask;
      const name = this.names[slot] as string;
      const value = this.values[slot] as string;
      this.octets -= hpackEntrySize(name, value);
      this.count--;
      this.names[slot] = "";
      this.values[slot] = "";
      this.evicted(name, value, this.inserted - this.count - 1);
    }
  }

  private grow(): void {
    const slots = this.names.length * 2;
    const names = new Array<string>(slots).fill("");
    const values = new Array<string>(slots).fill("");
    const flags = new Uint8Array(slots);
    // Oldest first into slots 0..count-1, so head becomes count.
    for (let k = 0; k < this.count; k++) {
      const from = (this.head - this.count + k) & this.mask;
      names[k] = this.names[from] as string;
      values[k] = this.values[from] as string;
      flags[k] = this.flags[from] as number;
    }
    this.names = names;
    this.values = values;
    this.flags = flags;
    this.mask = slots - 1;
    this.head = this.count;
  }
}
