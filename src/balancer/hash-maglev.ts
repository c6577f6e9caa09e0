/**
 * Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
 * Balancer", NSDI 2016): a lookup table filled by each endpoint's permutation in turn. Chosen over a
 * hash ring for its even spread and O(1) lookup; removing one of N endpoints remaps about 1/N of keys.
 *
 * The table depends only on the sorted set of addresses given to it, so every process builds the same
 * one. Hash: MurmurHash3 x86_32 of the address with seed 0 (offset) and 1 (skip); keys with seed 2.
 */
import type { Endpoint } from "./endpoint-set.js";
import { murmur3_32 } from "./hash-murmur3.js";

/** Prime, so every skip in [1, M-1] generates a full permutation. */
export const MAGLEV_TABLE_SIZE = 65537;
const KEY_SEED = 2;

export function hashKey(key: string): number {
  return murmur3_32(key, KEY_SEED);
}

export class MaglevTable {
  /** The endpoints in table order of identity: sorted by address. */
  readonly members: readonly Endpoint[];
  /** entry → index into `members`. */
  private readonly table: Uint16Array;

  constructor(endpoints: readonly Endpoint[]) {
    this.members = [...endpoints].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    this.table = buildTable(this.members.map((e) => e.address), MAGLEV_TABLE_SIZE);
  }

  get size(): number {
    return this.members.length;
  }

  /** The endpoint that owns `keyHash`, or undefined for an empty table. */
  lookup(keyHash: number): Endpoint | undefined {
    if (this.members.length === 0) return undefined;
    return this.members[this.table[keyHash % MAGLEV_TABLE_SIZE] as number];
  }

  /**
   * Visits each distinct endpoint once, in table order from the key's entry, until `accept` returns
   * true; returns that endpoint or undefined. The first visited is `lookup(keyHash)`.
   */
  walk(keyHash: number, accept: (e: Endpoint) => boolean): Endpoint | undefined {
    const n = this.members.length;
    if (n === 0) return undefined;
    const start = keyHash % MAGLEV_TABLE_SIZE;
    const first = this.members[this.table[start] as number] as Endpoint;
    if (accept(first)) return first;
    if (n === 1) return undefined;
    const visited = new Uint8Array(n);
    visited[this.table[start] as number] = 1;
    let seen = 1;
    for (let i = 1; i < MAGLEV_TABLE_SIZE && seen < n; i++) {
      const idx = this.table[(start + i) % MAGLEV_TABLE_SIZE] as number;
      if (visited[idx]) continue;
      visited[idx] = 1;
      seen++;
      const e = this.members[idx] as Endpoint;
      if (accept(e)) return e;
    }
    return undefined;
  }
}

/** The population step of the paper's Pseudocode 1. */
export function buildTable(addresses: readonly string[], m: number): Uint16Array {
  const n = addresses.length;
  const table = new Uint16Array(m);
  if (n === 0) return table;
  const offset = new Uint32Array(n);
  const skip = new Uint32Array(n);
  const next = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const a = addresses[i] as string;
    offset[i] = murmur3_32(a, 0) % m;
    skip[i] = (murmur3_32(a, 1) % (m - 1)) + 1;
  }
  const filled = new Uint8Array(m);
  let count = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      let c = ((offset[i] as number) + (next[i] as number) * (skip[i] as number)) % m;
      while (filled[c]) {
        next[i] = (next[i] as number) + 1;
        c = ((offset[i] as number) + (next[i] as number) * (skip[i] as number)) % m;
      }
      table[c] = i;
      filled[c] = 1;
      next[i] = (next[i] as number) + 1;
      if (++count === m) return table;
    }
  }
}
