// Maglev hashing (Eisenbud et al., NSDI 2016): even spread, O(1) lookup, ~1/N of keys move per removal.
import { murmur3_32 } from "./hash-murmur3.js";

export { murmur3_32 } from "./hash-murmur3.js";

/**
 * Entries in every Maglev table. Prime, so every skip in [1, M-1] visits every entry; large against the
 * endpoint count (≤ 1024 per cluster), so each endpoint's share is within a fraction of a percent of 1/N.
 */
export const MAGLEV_TABLE_SIZE = 65537;
/** MurmurHash3 seeds: an endpoint address's offset and skip, and a key. Part of the determinism contract. */
export const MAGLEV_OFFSET_SEED = 0;
export const MAGLEV_SKIP_SEED = 1;
export const MAGLEV_KEY_SEED = 2;

/** The hash a key is looked up with: MurmurHash3 x86_32 of its UTF-8 bytes, seed 2. */
export function maglevKeyHash(key: string): number {
  return murmur3_32(key, MAGLEV_KEY_SEED);
}

/**
 * A Maglev lookup table over members identified by `address`. It depends only on the set of addresses
 * (sorted with plain `<`), never on their input order, weights or the process: the same addresses give
 * the same table everywhere. Addresses are expected to be distinct (EndpointSet guarantees it).
 */
export class MaglevTable<T extends { readonly address: string }> {
  /** The members sorted by address; entries and walks refer to them by index into this array. */
  readonly members: readonly T[];
  /** Table entry → member index. */
  private readonly entries: Uint16Array | Uint32Array;

  constructor(members: readonly T[]) {
    this.members = [...members].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    this.entries = entriesFor(this.members.map((m) => m.address));
  }

  get size(): number {
    return this.members.length;
  }

  /** The member index owning `keyHash`'s entry, or -1 for an empty table. */
  indexOf(keyHash: number): number {
    if (this.members.length === 0) return -1;
    return this.entries[(keyHash >>> 0) % MAGLEV_TABLE_SIZE] as number;
  }

  /** The member owning `keyHash`'s entry, or undefined for an empty table. */
  lookup(keyHash: number): T | undefined {
    const i = this.indexOf(keyHash);
    return i < 0 ? undefined : this.members[i];
  }

  /** A reusable cursor for allocation-free walks; one per picker (walks are not re-entrant). */
  walker(): MaglevWalk {
    // With more members than entries (never with EndpointSet's limits) the surplus owns no entry.
    return new MaglevWalk(this.entries, Math.min(this.members.length, MAGLEV_TABLE_SIZE));
  }

  /**
   * Every member once, in table order from `keyHash`'s entry (the first is `lookup(keyHash)`). The order a
   * key falls back through when its owner cannot take it. Allocates; pickers use `walker()` instead.
   */
  *walk(keyHash: number): Generator<T, void, undefined> {
    const w = this.walker();
    w.start(keyHash);
    for (let i = w.next(); i >= 0; i = w.next()) yield this.members[i] as T;
  }
}

/**
 * A cursor over a table's distinct members in table order from a key's entry: `start(keyHash)`, then
 * `next()` until it returns -1. Visited members are marked with an epoch stamp, so a walk allocates
 * nothing. The table has at least one entry per member, so a walk ends after at most M entries.
 */
export class MaglevWalk {
  private readonly stamps: Uint32Array;
  private epoch = 0;
  private position = 0;
  private remaining = 0;

  constructor(
    private readonly entries: Uint16Array | Uint32Array,
    private readonly memberCount: number,
  ) {
    this.stamps = new Uint32Array(memberCount);
  }

  start(keyHash: number): void {
    if (++this.epoch === 0xffffffff) {
      this.stamps.fill(0);
      this.epoch = 1;
    }
    this.position = (keyHash >>> 0) % MAGLEV_TABLE_SIZE;
    this.remaining = this.memberCount;
  }

  /** The next member index not yet visited in this walk, or -1 once all have been. */
  next(): number {
    if (this.remaining === 0) return -1;
    for (;;) {
      const i = this.entries[this.position] as number;
      if (++this.position === MAGLEV_TABLE_SIZE) this.position = 0;
      if (this.stamps[i] !== this.epoch) {
        this.stamps[i] = this.epoch;
        this.remaining--;
        return i;
      }
    }
  }
}

/**
 * Recently built tables by their sorted address list. A drain, an ejection or a weight change rebuilds
 * the pickers but leaves the healthy set, and so the table, as it was; ip_hash and affinity over one
 * cluster share theirs. Entries are never mutated after population, so sharing is safe.
 */
const recent = new Map<string, Uint16Array | Uint32Array>();
const RECENT_MAX = 8;

function entriesFor(sortedAddresses: readonly string[]): Uint16Array | Uint32Array {
  const key = sortedAddresses.join("\n");
  let entries = recent.get(key);
  if (entries) {
    recent.delete(key);
  } else {
    entries = populate(sortedAddresses);
    if (recent.size >= RECENT_MAX) recent.delete(recent.keys().next().value as string);
  }
  recent.set(key, entries);
  return entries;
}

/**
 * The population loop of the paper's Pseudocode 1: members take turns claiming the next free entry of
 * their own permutation `(offset + j × skip) mod M`, offset and skip derived from the address.
 */
function populate(addresses: readonly string[]): Uint16Array | Uint32Array {
  const m = MAGLEV_TABLE_SIZE;
  const n = addresses.length;
  const entries = n <= 0x10000 ? new Uint16Array(m) : new Uint32Array(m);
  if (n === 0) return entries;
  const skip = new Uint32Array(n);
  /** Each member's current permutation position: offset + j × skip, advanced by skip. */
  const position = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const address = addresses[i] as string;
    position[i] = murmur3_32(address, MAGLEV_OFFSET_SEED) % m;
    skip[i] = (murmur3_32(address, MAGLEV_SKIP_SEED) % (m - 1)) + 1;
  }
  const filled = new Uint8Array(m);
  let count = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      const s = skip[i] as number;
      let c = position[i] as number;
      while (filled[c]) c = (c + s) % m;
      entries[c] = i;
      filled[c] = 1;
      position[i] = (c + s) % m;
      if (++count === m) return entries;
    }
  }
}
