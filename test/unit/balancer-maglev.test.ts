/**
 * Maglev consistent hashing: pinned mappings (the cross-process determinism contract), order
 * independence, even spread, and the 1/N + 2 % disruption bound over 100k keys.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EndpointSet, type Endpoint } from "../../src/balancer/endpoint-set.js";
import { MaglevTable, hashKey } from "../../src/balancer/hash-maglev.js";
import { murmur3_32 } from "../../src/balancer/hash-murmur3.js";
import { normalizeClientAddress } from "../../src/balancer/picker.js";

function endpoints(addresses: readonly string[]): Endpoint[] {
  return [...new EndpointSet("c", addresses.map((address) => ({ address, weight: 1 }))).endpoints];
}

function addresses(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `10.1.${Math.floor(i / 200)}.${(i % 200) + 1}:8001`);
}

const KEYS = Array.from({ length: 100_000 }, (_, i) => `client-${i}`);

describe("maglev", { timeout: 60_000 }, () => {
  it("murmur3_32 matches the reference vectors", () => {
    // Published MurmurHash3_x86_32 test vectors.
    assert.equal(murmur3_32("", 0), 0);
    assert.equal(murmur3_32("", 1), 0x514e28b7);
    assert.equal(murmur3_32("test", 0), 0xba6bd213);
    assert.equal(murmur3_32("Hello, world!", 1234), 0xfaf6cdb3);
    assert.equal(murmur3_32("The quick brown fox jumps over the lazy dog", 0), 0x2e4ff723);
  });

  it("pins key → endpoint mappings (same decisions in every process)", () => {
    const table = new MaglevTable(endpoints(["127.0.0.1:8101", "127.0.0.1:8102", "127.0.0.1:8103"]));
    const got = Object.fromEntries(
      ["127.0.0.1", "10.0.0.7", "session-42", "::1", "user:alice"].map((k) => [k, table.lookup(hashKey(k))?.address]),
    );
    assert.deepEqual(got, PINNED);
  });

  it("the input order does not change the table", () => {
    const a = new MaglevTable(endpoints(["b:1", "a:1", "c:1"]));
    const b = new MaglevTable(endpoints(["c:1", "b:1", "a:1"]));
    for (const k of KEYS.slice(0, 5000)) assert.equal(a.lookup(hashKey(k))?.address, b.lookup(hashKey(k))?.address);
  });

  for (const n of [3, 5, 10]) {
    it(`spreads 100k keys within 0.02 of 1/${n}, and removing 1 of ${n} remaps ≤ 1/${n} + 2 %`, () => {
      const all = addresses(n);
      const full = new MaglevTable(endpoints(all));
      const counts = new Map<string, number>();
      const before = KEYS.map((k) => {
        const a = full.lookup(hashKey(k))?.address as string;
        counts.set(a, (counts.get(a) ?? 0) + 1);
        return a;
      });
      for (const a of all) assert.ok(Math.abs((counts.get(a) ?? 0) / KEYS.length - 1 / n) <= 0.02, `${a} share`);
      const removed = all[Math.floor(n / 2)] as string;
      const smaller = new MaglevTable(endpoints(all.filter((a) => a !== removed)));
      let moved = 0;
      KEYS.forEach((k, i) => {
        if (smaller.lookup(hashKey(k))?.address !== before[i]) moved++;
      });
      assert.ok(moved / KEYS.length <= 1 / n + 0.02, `moved ${moved / KEYS.length}`);
    });
  }

  it("walk visits each endpoint once, starting at the key's owner", () => {
    const table = new MaglevTable(endpoints(addresses(5)));
    const h = hashKey("k");
    const seen: string[] = [];
    table.walk(h, (e) => {
      seen.push(e.address);
      return false;
    });
    assert.equal(seen.length, 5);
    assert.equal(new Set(seen).size, 5);
    assert.equal(seen[0], table.lookup(h)?.address);
  });

  it("normalises IPv4-mapped client addresses", () => {
    assert.equal(normalizeClientAddress("::ffff:127.0.0.5"), "127.0.0.5");
    assert.equal(normalizeClientAddress("::FFFF:10.0.0.1"), "10.0.0.1");
    assert.equal(normalizeClientAddress("::1"), "::1");
    assert.equal(normalizeClientAddress("fe80::ffff:1"), "fe80::ffff:1");
  });
});

/** Computed once with this implementation; a change here breaks affinity across mixed versions. */
const PINNED: Record<string, string> = {
  "127.0.0.1": "127.0.0.1:8103",
  "10.0.0.7": "127.0.0.1:8102",
  "session-42": "127.0.0.1:8101",
  "::1": "127.0.0.1:8103",
  "user:alice": "127.0.0.1:8101",
};
