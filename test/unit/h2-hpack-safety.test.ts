/**
 * HPACK decoder safety: malformed blocks are COMPRESSION_ERRORs with a reason (RFC 7541 §4.2, §5.1,
 * §5.2, §6), the header list limit of RFC 9113 §6.5.2 holds while the dynamic table stays in step, HPACK
 * bombs are bounded, and RFC 9113 §8.2.1 field violations are flagged.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HpackDecoder, type HpackDecoderOptions } from "../../src/h2/hpack-decoder.js";
import { HpackEncoder } from "../../src/h2/hpack-encoder.js";
import { HeaderList } from "../../src/h2/hpack-header-list.js";
import { huffmanEncode, huffmanEncodedLength } from "../../src/h2/hpack-huffman.js";
import { encodeInteger } from "../../src/h2/hpack-integer.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

function int(value: number, prefix: number, pattern: number): Buffer {
  const out = Buffer.alloc(8);
  return out.subarray(0, encodeInteger(value, prefix, pattern, out, 0));
}

/** A raw (not Huffman) string literal. */
function raw(s: string): Buffer {
  return Buffer.concat([int(s.length, 7, 0), Buffer.from(s, "latin1")]);
}

function huff(s: string): Buffer {
  const body = Buffer.alloc(huffmanEncodedLength(s));
  huffmanEncode(s, body, 0);
  return Buffer.concat([int(body.length, 7, 0x80), body]);
}

/** Literal with incremental indexing and a new name (§6.2.1). */
const incremental = (name: string, value: string): Buffer =>
  Buffer.concat([hex("40"), raw(name), raw(value)]);
/** Literal without indexing and a new name (§6.2.2). */
const plain = (name: Buffer, value: Buffer): Buffer => Buffer.concat([hex("00"), name, value]);

function decode(block: Buffer, options: HpackDecoderOptions = {}, decoder = new HpackDecoder(options)) {
  const list = new HeaderList();
  const status = decoder.decode(block, 0, block.length, list);
  return { status, list, error: decoder.lastError, decoder };
}

describe("HPACK decoder: malformed blocks are COMPRESSION_ERROR", { timeout: 10_000 }, () => {
  const cases: Array<[string, Buffer, string]> = [
    ["index 0", hex("80"), "bad_index"],
    ["an index past the empty dynamic table", hex("be"), "bad_index"],
    ["a literal naming index 70 of an empty dynamic table", hex("7f07 0161"), "bad_index"],
    ["an integer above 2^31 - 1", hex("ff ffffffff0f"), "bad_integer"],
    ["an integer cut by the end of the block", hex("ff"), "bad_integer"],
    ["a literal with no name octets", hex("40"), "truncated"],
    ["a string longer than the rest of the block", hex("400a 6375 7374"), "truncated"],
    [
      "a string of 2^31 - 2 octets claimed in a 7-octet block",
      Buffer.concat([hex("00"), int(2 ** 31 - 2, 7, 0)]),
      "truncated",
    ],
    ["a Huffman string holding EOS", hex("00 84 ffffffff 00"), "bad_huffman"],
    ["Huffman padding longer than 7 bits", hex("00 82 1fff 00"), "bad_huffman"],
    ["Huffman padding that is not all ones", hex("00 81 00 00"), "bad_huffman"],
    ["a size update after a field", hex("82 20"), "size_update_misplaced"],
    ["a size update to 4097, above SETTINGS_HEADER_TABLE_SIZE", hex("3fe21f"), "size_update_too_large"],
  ];
  for (const [what, block, reason] of cases) {
    it(what, () => {
      const r = decode(block);
      assert.equal(r.status, "compression_error");
      assert.equal(r.error, reason);
    });
  }

  it("after our SETTINGS lowered the table size, the next block must start with a size update", () => {
    const decoder = new HpackDecoder();
    assert.equal(decode(incremental("k", "v"), {}, decoder).status, "ok");
    decoder.setMaxTableSize(100);
    assert.equal(decode(hex("82"), {}, decoder).error, "size_update_missing");
    const ok = new HpackDecoder();
    ok.setMaxTableSize(100);
    assert.equal(decode(hex("3f41 82"), {}, ok).status, "ok", "an update to 96 (≤ 100) first");
    assert.equal(decode(hex("82"), {}, ok).status, "ok", "only the first block needs it");
    assert.equal(decode(hex("3f46"), {}, ok).error, "size_update_too_large", "101 > 100");
  });

  it("two size updates at the start of a block (lowest first, §4.2) are fine and evict", () => {
    const decoder = new HpackDecoder();
    assert.equal(decode(incremental("custom", "value"), {}, decoder).status, "ok");
    const r = decode(Buffer.concat([hex("20"), int(4096, 5, 0x20), hex("82")]), {}, decoder);
    assert.equal(r.status, "ok");
    assert.deepEqual(decoder.dynamicTableEntries(), []);
    assert.equal(decoder.dynamicTableCapacity, 4096);
  });
});

describe("HPACK decoder: header list limit and bombs", { timeout: 10_000 }, () => {
  it("over the limit: status says so, no field past it is kept, the table stays in step", () => {
    const decoder = new HpackDecoder({ maxHeaderListSize: 100 });
    const block = Buffer.concat([
      hex("82"),
      incremental("x-big", "v".repeat(80)),
      incremental("x-next", "n"),
    ]);
    const r = decode(block, {}, decoder);
    assert.equal(r.status, "header_list_too_large");
    assert.deepEqual(r.list.toArray(), [[":method", "GET"]]);
    assert.deepEqual(decoder.dynamicTableEntries(), [
      ["x-next", "n"],
      ["x-big", "v".repeat(80)],
    ]);
    // The next block refers to both entries by index: the peer's view and ours agree.
    const next = decode(hex("be"), {}, decoder);
    assert.equal(next.status, "ok");
    assert.deepEqual(next.list.toArray(), [["x-next", "n"]]);
  });

  it("the limit counts name + value + 32 per field (RFC 9113 §6.5.2), inclusive", () => {
    // ":method: GET" is 7 + 3 + 32 = 42 octets.
    assert.equal(decode(hex("8282"), { maxHeaderListSize: 84 }).status, "ok");
    assert.equal(decode(hex("8282"), { maxHeaderListSize: 83 }).status, "header_list_too_large");
  });

  it("bomb: one 4 KiB entry referenced 16,000 times stays within the limit", () => {
    const decoder = new HpackDecoder({ maxHeaderListSize: 16_384 });
    const bomb = Buffer.concat([incremental("x", "a".repeat(4000)), Buffer.alloc(16_000, 0xbe)]);
    const started = process.hrtime.bigint();
    const r = decode(bomb, {}, decoder);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(r.status, "header_list_too_large");
    assert.ok(r.list.size <= 16_384);
    assert.equal(r.list.length, 4);
    assert.ok(ms < 200, `decoding took ${ms} ms`);
  });

  it("bomb: a Huffman value that would decode to 64 KiB is measured, not materialised", () => {
    const value = "0".repeat(65_536); // 5 bits each: 40 KiB of Huffman octets
    const decoder = new HpackDecoder({ maxHeaderListSize: 1000 });
    const r = decode(plain(raw("x-bomb"), huff(value)), {}, decoder);
    assert.equal(r.status, "header_list_too_large");
    assert.equal(r.list.length, 0);
    const scratch = (decoder as unknown as { scratch: Buffer }).scratch;
    assert.ok(scratch.length <= 8192, `scratch grew to ${scratch.length}`);
    // Measured but still validated: a bad code in an over-limit string is still an error.
    const bad = Buffer.concat([hex("00"), raw("x-bomb"), int(4, 7, 0x80), hex("ffffffff")]);
    assert.equal(decode(bad, { maxHeaderListSize: 10 }).error, "bad_huffman");
  });

  it("an entry larger than the table empties it (§4.4) even when not kept for the list", () => {
    const decoder = new HpackDecoder({ maxHeaderListSize: 50 });
    assert.equal(decode(incremental("a", "b"), {}, decoder).status, "ok");
    const r = decode(incremental("x", "y".repeat(5000)), {}, decoder);
    assert.equal(r.status, "header_list_too_large");
    assert.deepEqual(decoder.dynamicTableEntries(), []);
    assert.equal(decoder.dynamicTableSize, 0);
  });

  it("an entry larger than the table empties it (§4.4) when it is kept for the list too", () => {
    const decoder = new HpackDecoder({ maxHeaderListSize: 16_384 });
    assert.equal(decode(incremental("a", "b"), {}, decoder).status, "ok");
    const r = decode(incremental("x", "y".repeat(5000)), {}, decoder);
    assert.equal(r.status, "ok");
    assert.equal(r.list.get("x")?.length, 5000);
    assert.deepEqual(decoder.dynamicTableEntries(), []);
    assert.equal(decoder.dynamicTableSize, 0);
  });

  it("a repeated unindexed literal decodes to its value, and a changed one to the new value", () => {
    const decoder = new HpackDecoder();
    const without = (nameIndex: number, value: string): Buffer =>
      Buffer.concat([int(nameIndex, 4, 0x00), raw(value)]);
    // :path (static 4) without indexing, twice the same, then another value, then the first again.
    for (const value of ["/a.B/C", "/a.B/C", "/a.B/D", "/a.B/C"]) {
      const r = decode(without(4, value), {}, decoder);
      assert.equal(r.status, "ok");
      assert.deepEqual(r.list.toArray(), [[":path", value]]);
    }
    // A value with a forbidden octet stays malformed when it repeats.
    for (let i = 0; i < 2; i++) {
      const r = decode(without(4, "/x\u0000"), {}, decoder);
      assert.equal(r.list.malformed, true);
    }
    assert.deepEqual(decoder.dynamicTableEntries(), []);
  });

  it("a HeaderList is reused: decoding clears it", () => {
    const decoder = new HpackDecoder();
    const list = new HeaderList();
    decoder.decode(hex("8286"), 0, 2, list);
    decoder.decode(hex("88"), 0, 1, list);
    assert.deepEqual(list.toArray(), [[":status", "200"]]);
    assert.equal(list.size, 7 + 3 + 32);
  });
});

describe("HPACK encoder: output room", { timeout: 10_000 }, () => {
  it("a Huffman string longer than its raw form (always mode) still fits the output", () => {
    // 0xff has a 26-bit code: 200 of them take 650 octets Huffman-coded, 200 raw.
    const encoder = new HpackEncoder({ huffman: "always" });
    const sent = new HeaderList();
    sent.add("x", "\u00ff".repeat(200));
    const n = encoder.encode(sent);
    assert.equal(n, 656);
    const r = decode(Buffer.from(encoder.output.subarray(0, n)));
    assert.equal(r.status, "ok");
    assert.deepEqual(r.list.toArray(), sent.toArray());
  });
});

describe("HPACK decoder: RFC 9113 §8.2.1 field checks", { timeout: 10_000 }, () => {
  const cases: Array<[string, Buffer, boolean]> = [
    ["a valid literal", plain(raw("grpc-status"), raw("0")), false],
    ["an upper-case name", plain(raw("Grpc-Status"), raw("0")), true],
    ["an upper-case name, Huffman-coded", plain(huff("X-Trace"), raw("1")), true],
    ["a name with a space", plain(raw("a b"), raw("1")), true],
    ["a colon inside a name", plain(raw("a:b"), raw("1")), true],
    ["a pseudo-header name", plain(raw(":path"), raw("/")), false],
    ["a value with CR LF", plain(raw("x"), raw("a\r\nb")), true],
    ["a value with a leading space", plain(raw("x"), raw(" a")), true],
    ["a value with NUL, Huffman-coded", plain(raw("x"), huff("a\u0000b")), true],
    ["a value with octets above 0x7f", plain(raw("x"), raw("caf\u00e9")), false],
    ["the empty value", plain(raw("x"), raw("")), false],
  ];
  for (const [what, block, malformed] of cases) {
    it(`${what}: malformed=${malformed}`, () => {
      const r = decode(block);
      assert.equal(r.status, "ok");
      assert.equal(r.list.malformed, malformed);
    });
  }

  it("a dynamic entry with an invalid name stays flagged when indexed later", () => {
    const decoder = new HpackDecoder();
    assert.equal(decode(incremental("Bad", "v"), {}, decoder).list.malformed, true);
    assert.equal(decode(hex("be"), {}, decoder).list.malformed, true);
    // Reusing only its name with a fine value: still the bad name.
    assert.equal(decode(Buffer.concat([hex("0f2f"), raw("w")]), {}, decoder).list.malformed, true);
  });
});
