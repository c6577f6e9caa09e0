/**
 * Prefix-cache affinity, without sockets: chained block hashes of a prompt (any split of its bytes
 * gives the same hashes; prompts that share their first k blocks share exactly k leading hashes), the
 * bounded per-endpoint LRU of block hashes, and the routing rule of src/balancer/prefix-index.ts with
 * exact load counts (longest match; the bounded-load limit and the "much busier than the least active"
 * limit hand the prompt to the least active endpoint).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EndpointSet, type Endpoint } from "../../src/balancer/endpoint-set.js";
import { murmur3Bytes, murmur3_32 } from "../../src/balancer/hash-murmur3.js";
import { PrefixBlockHasher } from "../../src/balancer/prefix-blocks.js";
import { BlockLru, PrefixIndex } from "../../src/balancer/prefix-index.js";
import type { LoadView } from "../../src/balancer/picker.js";

const BLOCK = 16;

function hashesOf(prompt: string, maxBlocks = 64, splits: readonly number[] = []): number[] {
  const bytes = Buffer.from(prompt);
  const hasher = new PrefixBlockHasher(BLOCK, maxBlocks);
  let at = 0;
  for (const cut of [...splits, bytes.length]) {
    hasher.push(bytes, at, cut);
    at = cut;
  }
  return hasher.hashes;
}

/** A prompt of `blocks` whole blocks, block i being `${tag}-${i}` padded to the block size. */
function prompt(tags: readonly string[]): string {
  return tags.map((t) => t.padEnd(BLOCK, ".")).join("");
}

function endpoints(n: number): Endpoint[] {
  const set = new EndpointSet(
    "c",
    Array.from({ length: n }, (_, i) => ({ address: `10.0.0.${i + 1}:8001`, weight: 1 })),
  );
  return [...set.endpoints];
}

function loads(eps: readonly Endpoint[], active: readonly number[]): LoadView {
  const m = new Map(eps.map((e, i) => [e, active[i] ?? 0]));
  return { activeOf: (e) => m.get(e) ?? 0 };
}

describe("prefix blocks and index", { timeout: 10_000 }, () => {
  it("murmur3Bytes is MurmurHash3 x86_32: the reference vector, and the string hash over the same bytes", () => {
    assert.equal(murmur3Bytes(Buffer.from("hello"), 0, 5, 0), 0x248bfa47);
    for (const s of ["", "a", "ab", "abc", "abcd", "abcde", "the quick brown fox"]) {
      const padded = Buffer.concat([Buffer.from("xx"), Buffer.from(s)]);
      assert.equal(murmur3Bytes(padded, 2, s.length, 7), murmur3_32(s, 7), s);
    }
  });

  it("any split of a prompt's bytes gives the same chained hashes; only whole blocks count", () => {
    const text = prompt(["system", "user-1", "turn-1", "turn-2"]) + "partial";
    const whole = hashesOf(text);
    assert.equal(whole.length, 4);
    for (let a = 0; a <= text.length; a += 3) {
      for (const b of [a, a + 1, a + 17, a + 40]) {
        if (b > text.length) continue;
        assert.deepEqual(hashesOf(text, 64, [a, b]), whole, `split at ${a}, ${b}`);
      }
    }
    // Byte by byte too.
    assert.deepEqual(
      hashesOf(
        text,
        64,
        Array.from({ length: text.length }, (_, i) => i),
      ),
      whole,
    );
  });

  it("prompts sharing their first k blocks share exactly k leading hashes; maxBlocks caps the count", () => {
    const a = hashesOf(prompt(["sys", "u1", "t1", "t2"]));
    const b = hashesOf(prompt(["sys", "u1", "tX", "t2"]));
    const c = hashesOf(prompt(["SYS", "u1", "t1", "t2"]));
    assert.deepEqual(b.slice(0, 2), a.slice(0, 2));
    assert.notEqual(b[2], a[2]);
    // Chained: the same last block after a different start is a different prefix.
    assert.notEqual(b[3], a[3]);
    assert.ok(c.every((h, i) => h !== a[i]));
    assert.equal(hashesOf(prompt(["a", "b", "c", "d", "e"]), 3).length, 3);
    assert.deepEqual(hashesOf(prompt(["a", "b", "c", "d", "e"]), 3), hashesOf(prompt(["a", "b", "c"])));
  });

  it("the LRU matches leading hashes, touches on record, and evicts the least recently used", () => {
    const lru = new BlockLru(4);
    lru.record([1, 2, 3]);
    assert.equal(lru.matchLength([1, 2, 3, 4]), 3);
    assert.equal(lru.matchLength([2, 3]), 2);
    assert.equal(lru.matchLength([9, 1]), 0);
    lru.record([1, 5]); // 2, 3 are now the oldest
    lru.record([6]); // evicts 2
    assert.equal(lru.size, 4);
    assert.equal(lru.matchLength([1, 2, 3]), 1);
    assert.equal(lru.matchLength([3, 1, 5, 6]), 4);
    lru.record([7, 8, 9, 10, 11]);
    assert.equal(lru.size, 4);
    assert.equal(lru.matchLength([8, 9, 10, 11]), 4);
    assert.equal(lru.matchLength([7]), 0);
  });

  it("idle endpoints: a cold prompt goes to the least active, a prompt sharing its prefix follows it", () => {
    const eps = endpoints(3);
    const index = new PrefixIndex(1000, 1.25);
    const idle = loads(eps, [0, 0, 0]);
    const first = index.pick(eps, idle, hashesOf(prompt(["sys-A", "user-1", "t1"])));
    assert.deepEqual([first.endpoint, first.decision, first.matched], [eps[0], "least_loaded", 0]);
    const busyFirst = loads(eps, [1, 0, 0]);
    const cold = index.pick(eps, busyFirst, hashesOf(prompt(["sys-B", "user-2", "t1"])));
    assert.deepEqual([cold.endpoint, cold.decision], [eps[1], "least_loaded"]);
    const again = index.pick(eps, idle, hashesOf(prompt(["sys-A", "user-1", "t1", "t2"])));
    assert.deepEqual([again.endpoint, again.decision, again.matched], [eps[0], "prefix_match", 3]);
    const shared = index.pick(eps, idle, hashesOf(prompt(["sys-B", "user-9"])));
    assert.deepEqual([shared.endpoint, shared.decision, shared.matched], [eps[1], "prefix_match", 1]);
    // The longer match wins over a shorter one elsewhere.
    const longer = index.pick(eps, idle, hashesOf(prompt(["sys-A", "user-1", "t1", "t2", "t3"])));
    assert.deepEqual([longer.endpoint, longer.matched], [eps[0], 4]);
  });

  it("bounded load: an endpoint at ceil(1.25 × (total + 1) / n) hands the prompt to the least active", () => {
    const eps = endpoints(3);
    const index = new PrefixIndex(1000, 1.25);
    const hot = hashesOf(prompt(["sys", "u", "t"]));
    index.pick(eps, loads(eps, [0, 0, 0]), hot); // recorded on eps[0]
    // total 1 → limit ceil(1.25 × 2 / 3) = 1: eps[0] at 1 is at the limit.
    const over = index.pick(eps, loads(eps, [1, 0, 0]), hot);
    assert.deepEqual([over.endpoint, over.decision, over.matched], [eps[1], "least_loaded", 0]);
    // Now both eps[0] and eps[1] have it; at [2, 1, 1] the limit is ceil(1.25 × 5 / 3) = 3 and
    // min(3, ceil(1.25 × 2) + 1 = 4) = 3: eps[0] is under it but eps[1] (1 active) ties on the match.
    const tie = index.pick(eps, loads(eps, [2, 1, 1]), hot);
    assert.deepEqual([tie.endpoint, tie.decision, tie.matched], [eps[1], "prefix_match", 3]);
  });

  it("much busier than the least active: ceil(1.25 × (least + 1)) + 1 hands it over below the mean limit", () => {
    const eps = endpoints(4);
    const index = new PrefixIndex(1000, 1.25);
    const hot = hashesOf(prompt(["sys", "u", "t"]));
    index.pick(eps, loads(eps, [0, 0, 0, 0]), hot); // recorded on eps[0]
    // total 10: the mean limit is ceil(1.25 × 11 / 4) = 4, the least-active one ceil(1.25 × 1) + 1 = 3;
    // eps[0]'s 2 is under both: the match wins.
    const kept = index.pick(eps, loads(eps, [2, 4, 4, 0]), hot);
    assert.deepEqual([kept.endpoint, kept.decision], [eps[0], "prefix_match"]);
    // total 12: the mean limit is ceil(1.25 × 13 / 4) = 5, and eps[0]'s 4 is under it; but the least
    // active has 0, so the limit is 3 and eps[0] is over.
    const handed = index.pick(eps, loads(eps, [4, 4, 4, 0]), hot);
    assert.deepEqual([handed.endpoint, handed.decision], [eps[3], "least_loaded"]);
  });

  it("balance slack: a match stays until its endpoint reaches both limits plus the slack", () => {
    const eps = endpoints(4);
    const index = new PrefixIndex(1000, 1.25, 64, 2);
    const hot = hashesOf(prompt(["sys", "u", "t"]));
    index.pick(eps, loads(eps, [0, 0, 0, 0]), hot); // recorded on eps[0]
    // total 3: min(ceil(1.25 × 4 / 4) = 2, ceil(1.25 × 1) + 1 = 3) + 2 = 4: eps[0]'s 3 is under it.
    const kept = index.pick(eps, loads(eps, [3, 0, 0, 0]), hot);
    assert.deepEqual([kept.endpoint, kept.decision], [eps[0], "prefix_match"]);
    // total 4: min(ceil(1.25 × 5 / 4) = 2, 3) + 2 = 4: eps[0]'s 4 is at it.
    const handed = index.pick(eps, loads(eps, [4, 0, 0, 0]), hot);
    assert.deepEqual([handed.endpoint, handed.decision], [eps[1], "least_loaded"]);
    // The same counts without slack hand over at 2 already.
    const eager = new PrefixIndex(1000, 1.25);
    eager.pick(eps, loads(eps, [0, 0, 0, 0]), hot);
    assert.equal(eager.pick(eps, loads(eps, [2, 0, 0, 0]), hot).endpoint, eps[1]);
  });

  it("min match: a match covering less than that fraction of the prompt does not decide", () => {
    const eps = endpoints(3);
    const index = new PrefixIndex(1000, 1.25, 64, 2, 0.5);
    index.pick(eps, loads(eps, [0, 0, 0]), hashesOf(prompt(["sys"]))); // "sys" recorded on eps[0]
    // 1 of 3 blocks matched on eps[0]: under half, so the least active (eps[1]) takes it.
    const low = index.pick(eps, loads(eps, [1, 0, 0]), hashesOf(prompt(["sys", "q1", "q2"])));
    assert.deepEqual([low.endpoint, low.decision, low.matched], [eps[1], "least_loaded", 0]);
    // 2 of 3 blocks matched on eps[1] now: the match decides even though eps[1] is not the least active.
    const high = index.pick(eps, loads(eps, [0, 1, 0]), hashesOf(prompt(["sys", "q1", "q3"])));
    assert.deepEqual([high.endpoint, high.decision, high.matched], [eps[1], "prefix_match", 2]);
  });

  it("balance factor 0: the longest match always wins; keepOnly forgets endpoints that left", () => {
    const eps = endpoints(2);
    const index = new PrefixIndex(1000, 0);
    const hot = hashesOf(prompt(["sys", "u"]));
    index.pick(eps, loads(eps, [0, 0]), hot);
    const pinned = index.pick(eps, loads(eps, [50, 0]), hot);
    assert.deepEqual([pinned.endpoint, pinned.decision], [eps[0], "prefix_match"]);
    assert.equal(index.sizeOf(eps[0] as Endpoint), 2);
    index.keepOnly(new Set([(eps[1] as Endpoint).address]));
    assert.equal(index.sizeOf(eps[0] as Endpoint), 0);
    assert.equal(index.matchLength(eps[0] as Endpoint, hot), 0);
  });

  it("memory is bounded: the index keeps at most blocksPerEndpoint hashes per endpoint", () => {
    const eps = endpoints(2);
    const index = new PrefixIndex(100, 1.25);
    for (let u = 0; u < 500; u++) index.pick(eps, loads(eps, [0, 0]), hashesOf(prompt([`s${u}`, "a", "b"])));
    assert.ok(index.sizeOf(eps[0] as Endpoint) <= 100);
    assert.ok(index.sizeOf(eps[1] as Endpoint) <= 100);
  });
});
