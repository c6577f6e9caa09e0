/**
 * HPACK cross-checked against the hpack.js library (the HPACK codec of the spdy stack, tens of millions
 * of downloads a month) with fast-check: random header lists, across sequences of blocks sharing one
 * dynamic table, with random table sizes signalled by size updates (RFC 7541 §4.2, §6.3). Ours encodes →
 * the library decodes the same list, and the library encodes → ours decodes the same list. Fixed seeds
 * and bounded runs keep the file deterministic and fast.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import fc from "fast-check";
import { HpackDecoder } from "../../src/h2/hpack-decoder.js";
import { HpackEncoder } from "../../src/h2/hpack-encoder.js";
import { FIELD_NEVER_INDEXED, HeaderList } from "../../src/h2/hpack-header-list.js";
import { encodeInteger } from "../../src/h2/hpack-integer.js";

interface LibHeader {
  name: string;
  value: string;
  neverIndex?: boolean;
  huffman?: boolean;
}
interface LibCompressor {
  write(headers: LibHeader[]): void;
  read(): Buffer | null;
  updateTableSize(size: number): void;
}
interface LibDecompressor {
  write(block: Buffer): void;
  execute(): void;
  read(): LibHeader | null;
}
interface HpackJs {
  compressor: { create(options: { table: { maxSize: number } }): LibCompressor };
  decompressor: { create(options: { table: { maxSize: number } }): LibDecompressor };
}
const lib = createRequire(import.meta.url)("hpack.js") as HpackJs;

interface Field {
  readonly name: string;
  readonly value: string;
  readonly never: boolean;
  readonly huffman: boolean;
}

const COMMON_NAMES = [
  ":method",
  ":path",
  ":scheme",
  ":authority",
  ":status",
  "content-type",
  "te",
  "grpc-timeout",
  "grpc-encoding",
  "grpc-accept-encoding",
  "user-agent",
  "grpc-status",
  "grpc-message",
  "authorization",
  "x-session-id",
  "trace-bin",
  "accept-encoding",
  "cookie",
  "date",
];
const COMMON_VALUES = ["", "POST", "GET", "200", "http", "application/grpc", "trailers", "0", "1S", "gzip"];

/** Octet strings as latin1: every value 0–255 appears, to exercise every Huffman code. */
const octets = (max: number): fc.Arbitrary<string> =>
  fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: max }).map((a) => String.fromCharCode(...a));
const token = fc
  .array(fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789-_.".split("")), {
    minLength: 1,
    maxLength: 24,
  })
  .map((a) => a.join(""));

/** Fields that recur from block to block, so entries are evicted and then wanted again. */
const RECURRING: Array<[string, string]> = [
  [":path", "/inference.GRPCInferenceService/ModelInfer"],
  [":path", "/grpc.health.v1.Health/Check"],
  ["x-session-id", "a".repeat(90)],
  ["x-session-id", "b".repeat(70)],
  ["content-type", "application/grpc+proto"],
  ["custom-key", "custom-value"],
];

const field: fc.Arbitrary<Field> = fc.oneof(
  fc.record({
    name: fc.oneof(fc.constantFrom(...COMMON_NAMES), token),
    value: fc.oneof(fc.constantFrom(...COMMON_VALUES), octets(40), octets(300)),
    never: fc.boolean(),
    huffman: fc.boolean(),
  }),
  fc.record({ pair: fc.constantFrom(...RECURRING), huffman: fc.boolean() }).map(({ pair, huffman }) => ({
    name: pair[0],
    value: pair[1],
    never: false,
    huffman,
  })),
);

/** A block: its fields, and the table size the decoder's side announces before it (null: unchanged). */
const block = fc.record({
  fields: fc.array(field, { maxLength: 14 }),
  tableSize: fc.option(fc.oneof(fc.constantFrom(0, 64, 200, 256), fc.integer({ min: 0, max: 4096 })), {
    nil: null,
    freq: 3,
  }),
});
const sequence = fc.array(block, { minLength: 1, maxLength: 8 });

function libDecode(d: LibDecompressor, bytes: Buffer): LibHeader[] {
  d.write(bytes);
  d.execute();
  const out: LibHeader[] = [];
  for (let h = d.read(); h !== null; h = d.read()) out.push(h);
  return out;
}

function sizeUpdate(size: number): Buffer {
  const out = Buffer.alloc(8);
  return out.subarray(0, encodeInteger(size, 5, 0x20, out, 0));
}

const RUNS = { seed: 7541, numRuns: 150 };

describe("HPACK cross-checked with hpack.js (property-based)", { timeout: 30_000 }, () => {
  it("ours encodes, the library decodes the same fields, flags and all, as table sizes change", () => {
    fc.assert(
      fc.property(sequence, (blocks) => {
        const encoder = new HpackEncoder();
        const theirs = lib.decompressor.create({ table: { maxSize: 4096 } });
        const list = new HeaderList();
        let peerSize = 4096;
        for (const b of blocks) {
          if (b.tableSize !== null) {
            peerSize = b.tableSize;
            encoder.setPeerMaxTableSize(peerSize);
          }
          list.clear();
          for (const f of b.fields) list.add(f.name, f.value, f.never ? FIELD_NEVER_INDEXED : 0);
          const n = encoder.encode(list);
          assert.ok(encoder.dynamicTableCapacity <= peerSize);
          const decoded = libDecode(theirs, Buffer.from(encoder.output.subarray(0, n)));
          assert.deepEqual(
            decoded.map((h) => [h.name, h.value, h.neverIndex]),
            b.fields.map((f) => [f.name, f.value, f.never || f.name === "authorization"]),
          );
        }
      }),
      RUNS,
    );
  });

  it("the library encodes, ours decodes the same fields, never-indexed flags included, as sizes change", () => {
    fc.assert(
      fc.property(sequence, (blocks) => {
        const theirs = lib.compressor.create({ table: { maxSize: 4096 } });
        const decoder = new HpackDecoder({ maxHeaderListSize: 1 << 20 });
        const list = new HeaderList();
        for (const b of blocks) {
          const parts: Buffer[] = [];
          if (b.tableSize !== null) {
            // hpack.js signals only a return to its maximum itself; smaller sizes are signalled here.
            parts.push(sizeUpdate(b.tableSize));
            theirs.updateTableSize(b.tableSize);
            const own = theirs.read();
            if (own !== null) parts.push(own);
          }
          theirs.write(
            b.fields.map((f) => ({ name: f.name, value: f.value, neverIndex: f.never, huffman: f.huffman })),
          );
          parts.push(theirs.read() ?? Buffer.alloc(0));
          const bytes = Buffer.concat(parts);
          assert.equal(decoder.decode(bytes, 0, bytes.length, list), "ok", String(decoder.lastError));
          assert.deepEqual(
            list.toArray().map(([name, value], i) => [name, value, list.neverIndexed(i)]),
            b.fields.map((f) => [f.name, f.value, f.never]),
          );
          if (b.tableSize !== null) assert.equal(decoder.dynamicTableCapacity, b.tableSize);
          assert.ok(decoder.dynamicTableSize <= decoder.dynamicTableCapacity);
        }
      }),
      RUNS,
    );
  });

  it("ours to ours: every list round-trips and both tables agree after every block", () => {
    fc.assert(
      fc.property(sequence, fc.integer({ min: 0, max: 4096 }), (blocks, ownLimit) => {
        const encoder = new HpackEncoder({ maxTableSize: ownLimit });
        const decoder = new HpackDecoder({ maxHeaderListSize: 1 << 20 });
        const sent = new HeaderList();
        const received = new HeaderList();
        for (const b of blocks) {
          if (b.tableSize !== null) {
            encoder.setPeerMaxTableSize(b.tableSize);
            decoder.setMaxTableSize(b.tableSize);
          }
          sent.clear();
          for (const f of b.fields) sent.add(f.name, f.value, f.never ? FIELD_NEVER_INDEXED : 0);
          const n = encoder.encode(sent);
          assert.equal(decoder.decode(encoder.output, 0, n, received), "ok", String(decoder.lastError));
          assert.deepEqual(received.toArray(), sent.toArray());
          assert.deepEqual(decoder.dynamicTableEntries(), encoder.dynamicTableEntries());
          assert.ok(encoder.dynamicTableCapacity <= ownLimit);
        }
      }),
      RUNS,
    );
  });

  it("repeated blocks: a kept block encodes and decodes to what working it out would, as tables change", () => {
    // Blocks of a small pool sharing a prefix (a method's requests, a response's headers and trailers)
    // recur among fresh ones, table size changes and header list limits, so kept blocks are reused,
    // passed over as stale, and matched partway before a different field; each side is compared with
    // a codec that keeps nothing.
    const pool = fc.record({
      prefix: fc.array(field, { maxLength: 4 }),
      suffixes: fc.array(fc.array(field, { maxLength: 3 }), { minLength: 1, maxLength: 4 }),
    });
    const step = fc.oneof(
      { arbitrary: fc.nat({ max: 4 }).map((i) => ({ pick: i })), weight: 6 },
      { arbitrary: fc.array(field, { maxLength: 6 }).map((fresh) => ({ fresh })), weight: 2 },
      { arbitrary: fc.integer({ min: 0, max: 4096 }).map((size) => ({ size })), weight: 1 },
      { arbitrary: fc.integer({ min: 0, max: 1200 }).map((limit) => ({ limit })), weight: 1 },
    );
    let reusedSomewhere = 0;
    let decodedFromKept = 0;
    fc.assert(
      fc.property(
        pool,
        fc.array(step, { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 64, max: 4096 }),
        (p, steps, ownLimit) => {
          const blocks = [p.prefix, ...p.suffixes.map((s) => [...p.prefix, ...s])];
          const reusing = new HpackEncoder({ maxTableSize: ownLimit });
          const plain = new HpackEncoder({ maxTableSize: ownLimit, reuseBlocks: false });
          const decoder = new HpackDecoder({ maxHeaderListSize: 1 << 20 });
          const plainDecoder = new HpackDecoder({ maxHeaderListSize: 1 << 20, reuseBlocks: false });
          const sent = new HeaderList();
          const received = new HeaderList();
          const plainReceived = new HeaderList();
          for (const s of steps) {
            if ("size" in s) {
              reusing.setPeerMaxTableSize(s.size);
              plain.setPeerMaxTableSize(s.size);
              decoder.setMaxTableSize(s.size);
              plainDecoder.setMaxTableSize(s.size);
              continue;
            }
            if ("limit" in s) {
              decoder.setMaxHeaderListSize(s.limit);
              plainDecoder.setMaxHeaderListSize(s.limit);
              continue;
            }
            const fields = "fresh" in s ? s.fresh : (blocks[s.pick % blocks.length] as Field[]);
            sent.clear();
            for (const f of fields) sent.add(f.name, f.value, f.never ? FIELD_NEVER_INDEXED : 0);
            const n = reusing.encode(sent);
            const m = plain.encode(sent);
            assert.deepEqual(reusing.output.subarray(0, n), plain.output.subarray(0, m));
            const status = decoder.decode(reusing.output, 0, n, received);
            assert.equal(status, plainDecoder.decode(plain.output, 0, m, plainReceived));
            assert.notEqual(status, "compression_error", String(decoder.lastError));
            if (status === "ok") assert.deepEqual(received.toArray(), sent.toArray());
            const flags = (l: HeaderList): boolean[] => l.toArray().map((_, i) => l.neverIndexed(i));
            assert.deepEqual(received.toArray(), plainReceived.toArray());
            assert.deepEqual(flags(received), flags(plainReceived));
            assert.equal(received.malformed, plainReceived.malformed);
            assert.deepEqual(reusing.dynamicTableEntries(), plain.dynamicTableEntries());
            assert.deepEqual(decoder.dynamicTableEntries(), plainDecoder.dynamicTableEntries());
          }
          reusedSomewhere += reusing.blocksReused;
          decodedFromKept += decoder.blocksReused;
          assert.equal(plain.blocksReused + plainDecoder.blocksReused, 0);
        },
      ),
      RUNS,
    );
    assert.ok(reusedSomewhere > 100, `only ${reusedSomewhere} blocks reused over the runs`);
    assert.ok(decodedFromKept > 50, `only ${decodedFromKept} blocks decoded from kept ones`);
  });

  it("over a small header list limit: a prefix of the list is kept and both tables still agree", () => {
    fc.assert(
      fc.property(sequence, fc.integer({ min: 0, max: 600 }), (blocks, limit) => {
        const encoder = new HpackEncoder({ huffman: "always" });
        const decoder = new HpackDecoder({ maxHeaderListSize: limit });
        const sent = new HeaderList();
        const received = new HeaderList();
        for (const b of blocks) {
          sent.clear();
          for (const f of b.fields) sent.add(f.name, f.value, f.never ? FIELD_NEVER_INDEXED : 0);
          const n = encoder.encode(sent);
          const status = decoder.decode(encoder.output, 0, n, received);
          assert.equal(status, sent.size <= limit ? "ok" : "header_list_too_large");
          assert.ok(received.size <= limit);
          assert.deepEqual(received.toArray(), sent.toArray().slice(0, received.length));
          assert.deepEqual(decoder.dynamicTableEntries(), encoder.dynamicTableEntries());
        }
      }),
      RUNS,
    );
  });

  it("arbitrary octets never throw: each block decodes to one of the three statuses", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 4 }), (blocks) => {
        const decoder = new HpackDecoder({ maxHeaderListSize: 2048 });
        const list = new HeaderList();
        for (const bytes of blocks) {
          const b = Buffer.from(bytes);
          const status = decoder.decode(b, 0, b.length, list);
          assert.ok(["ok", "header_list_too_large", "compression_error"].includes(status));
          assert.equal(status === "compression_error", decoder.lastError !== null);
          if (status === "compression_error") break;
          assert.ok(list.size <= 2048);
        }
      }),
      { seed: 9113, numRuns: 1000 },
    );
  });
});
