/**
 * Maglev consistent hashing and its hash: reference vectors, pinned key → endpoint mappings (the
 * cross-process determinism contract), order independence, even spread and the 1/N + 2 % disruption
 * bound over 100k keys, and walks in table order.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAGLEV_TABLE_SIZE, MaglevTable, maglevKeyHash, murmur3_32 } from "../../src/balancer/hash-maglev.js";

interface Member {
  readonly address: string;
}

function members(addresses: readonly string[]): Member[] {
  return addresses.map((address) => ({ address }));
}

function addresses(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `10.1.0.${i + 1}:8001`);
}

function ownerOf(table: MaglevTable<Member>, key: string): string {
  const m = table.lookup(maglevKeyHash(key));
  assert.ok(m, `no owner for ${key}`);
  return m.address;
}

const KEYS = Array.from({ length: 100_000 }, (_, i) => `client-${i}`);

/**
 * Computed once with this implementation and hard-coded: if it changes, processes running different
 * versions stop agreeing on where a client or session goes.
 */
const PINNED_ENDPOINTS = ["127.0.0.1:8101", "127.0.0.1:8102", "127.0.0.1:8103"];
const PINNED: readonly (readonly [key: string, endpoint: string])[] = [
  ["127.0.0.1", "127.0.0.1:8103"],
  ["10.0.0.7", "127.0.0.1:8102"],
  ["session-42", "127.0.0.1:8101"],
  ["::1", "127.0.0.1:8103"],
  ["user:alice", "127.0.0.1:8101"],
];

/** MurmurHash3 x86_32 written independently: Buffer for UTF-8, DataView for the blocks. */
function referenceMurmur3(text: string, seed: number): number {
  const bytes = Buffer.from(text, "utf8");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const mix = (k: number): number => Math.imul(rotl(Math.imul(k, 0xcc9e2d51), 15), 0x1b873593);
  const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
  let h = seed | 0;
  let i = 0;
  for (; i + 4 <= bytes.length; i += 4)
    h = (Math.imul(rotl(h ^ mix(view.getUint32(i, true)), 13), 5) + 0xe6546b64) | 0;
  let k = 0;
  for (let j = bytes.length - 1; j >= i; j--) k = (k << 8) | (bytes[j] as number);
  if (bytes.length > i) h ^= mix(k);
  h ^= bytes.length;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

describe("maglev", { timeout: 30_000 }, () => {
  it("murmur3_32 matches the published MurmurHash3_x86_32 vectors", () => {
    const vectors: [text: string, seed: number, hash: number][] = [
      ["", 0, 0],
      ["", 1, 0x514e28b7],
      ["", 0xffffffff, 0x81f16f39],
      ["\0\0\0\0", 0, 0x2362f9de],
      ["a", 0x9747b28c, 0x7fa09ea6],
      ["ab", 0x9747b28c, 0x74875592],
      ["abc", 0x9747b28c, 0xc84a62dd],
      ["abcd", 0x9747b28c, 0xf0478627],
      ["aaaa", 0x9747b28c, 0x5a97808a],
      ["hello", 0, 0x248bfa47],
      ["Hello, world!", 0x9747b28c, 0x24884cba],
      ["Hello, world!", 1234, 0xfaf6cdb3],
      ["ππππππππ", 0x9747b28c, 0xd58063c1],
      ["The quick brown fox jumps over the lazy dog", 0x9747b28c, 0x2fa826cd],
    ];
    for (const [text, seed, hash] of vectors)
      assert.equal(murmur3_32(text, seed), hash, `${JSON.stringify(text)} seed ${seed}`);
  });

  it("murmur3_32 hashes UTF-8 of any length, before and after its scratch buffer grows", () => {
    const texts = ["x", "é", "😀 ok", "ü".repeat(255), "a".repeat(300), "€".repeat(1000), "short again"];
    for (const text of texts) {
      for (const seed of [0, 1, 2])
        assert.equal(
          murmur3_32(text, seed),
          referenceMurmur3(text, seed),
          `${text.slice(0, 8)}… seed ${seed}`,
        );
    }
  });

  it("pins key → endpoint mappings over 127.0.0.1:8101–8103", () => {
    const table = new MaglevTable(members(PINNED_ENDPOINTS));
    for (const [key, endpoint] of PINNED) assert.equal(ownerOf(table, key), endpoint, key);
  });

  it("the input order does not change the table", () => {
    const sorted = new MaglevTable(members(PINNED_ENDPOINTS));
    for (const order of [
      [2, 0, 1],
      [1, 2, 0],
      [2, 1, 0],
    ]) {
      const table = new MaglevTable(members(order.map((i) => PINNED_ENDPOINTS[i] as string)));
      assert.deepEqual(
        table.members.map((m) => m.address),
        PINNED_ENDPOINTS,
      );
      for (const k of KEYS.slice(0, 20_000)) assert.equal(ownerOf(table, k), ownerOf(sorted, k), k);
    }
  });

  for (const n of [3, 5, 10]) {
    it(`N = ${n}: each endpoint owns 1/${n} ± 0.02 of 100k keys; removing one remaps ≤ 1/${n} + 0.02`, () => {
      const all = addresses(n);
      const full = new MaglevTable(members(all));
      const before = KEYS.map((k) => ownerOf(full, k));
      const counts = new Map<string, number>();
      for (const a of before) counts.set(a, (counts.get(a) ?? 0) + 1);
      for (const a of all) {
        const share = (counts.get(a) ?? 0) / KEYS.length;
        assert.ok(Math.abs(share - 1 / n) <= 0.02, `${a} owns ${share}`);
      }
      for (const removed of [all[0] as string, all[n - 1] as string]) {
        const smaller = new MaglevTable(members(all.filter((a) => a !== removed)));
        let moved = 0;
        KEYS.forEach((k, i) => {
          const now = ownerOf(smaller, k);
          assert.notEqual(now, removed);
          if (now !== before[i]) moved++;
        });
        assert.ok(moved / KEYS.length <= 1 / n + 0.02, `removing ${removed} moved ${moved / KEYS.length}`);
      }
    });
  }

  it("a walk visits every member once, starting at the key's owner, and is reusable", () => {
    const table = new MaglevTable(members(addresses(10)));
    const walker = table.walker();
    for (const key of ["k1", "k2", "session-42"]) {
      const h = maglevKeyHash(key);
      const order = [...table.walk(h)].map((m) => m.address);
      assert.equal(order.length, 10);
      assert.equal(new Set(order).size, 10);
      assert.equal(order[0], ownerOf(table, key));
      walker.start(h);
      const indexes: number[] = [];
      for (let i = walker.next(); i >= 0; i = walker.next()) indexes.push(i);
      assert.deepEqual(
        indexes.map((i) => table.members[i]?.address),
        order,
      );
      assert.equal(walker.next(), -1);
    }
  });

  it("the walk order is the order of table entries from the key's slot", () => {
    // The second member in a walk is the owner of the first later entry owned by someone else.
    const table = new MaglevTable(members(addresses(3)));
    let checked = 0;
    for (const key of KEYS.slice(0, 200)) {
      const h = maglevKeyHash(key);
      const [first, second] = [...table.walk(h)];
      let slot = h % MAGLEV_TABLE_SIZE;
      let next = first;
      while (next === first) {
        slot = (slot + 1) % MAGLEV_TABLE_SIZE;
        next = table.lookup(slot);
      }
      assert.equal(second, next, key);
      checked++;
    }
    assert.equal(checked, 200);
  });

  it("an empty table owns nothing", () => {
    const table = new MaglevTable<Member>([]);
    assert.equal(table.lookup(maglevKeyHash("k")), undefined);
    assert.deepEqual([...table.walk(maglevKeyHash("k"))], []);
  });
});
