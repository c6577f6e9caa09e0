/**
 * HPACK codec against RFC 7541: the Appendix C examples byte for byte (C.2–C.6, with and without
 * Huffman, dynamic table after each block), Appendix B codes, §5.1 integers, malformed blocks
 * (COMPRESSION_ERROR) and bounded work against HPACK bombs.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { HpackDecoder, type HpackDecoderOptions } from "../../src/h2/hpack-decoder.js";
import { HpackEncoder, type HpackEncoderOptions } from "../../src/h2/hpack-encoder.js";
import { HeaderList } from "../../src/h2/hpack-header-list.js";
import {
  HUFFMAN_CODES,
  HUFFMAN_LENGTHS,
  huffmanDecode,
  huffmanEncode,
  huffmanEncodedLength,
} from "../../src/h2/hpack-huffman.js";
import { decodeInteger, encodeInteger } from "../../src/h2/hpack-integer.js";
import { STATIC_NAMES, STATIC_VALUES } from "../../src/h2/hpack-static-table.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

type Fields = Array<[string, string]>;

function decodeBlock(decoder: HpackDecoder, block: Buffer): { status: string; list: HeaderList } {
  const list = new HeaderList();
  return { status: decoder.decode(block, 0, block.length, list), list };
}

function encodeBlock(encoder: HpackEncoder, fields: Fields): string {
  encoder.begin();
  for (const [name, value] of fields) encoder.field(name, value);
  const n = encoder.end();
  return encoder.output.toString("hex", 0, n);
}

interface Example {
  readonly block: string;
  readonly fields: Fields;
  /** Dynamic table after the block, newest first, and its size. */
  readonly table: Fields;
  readonly size: number;
}

const AUTH: [string, string] = [":authority", "www.example.com"];
const REQUESTS_FIELDS: Fields[] = [
  [[":method", "GET"], [":scheme", "http"], [":path", "/"], AUTH],
  [[":method", "GET"], [":scheme", "http"], [":path", "/"], AUTH, ["cache-control", "no-cache"]],
  [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], AUTH, ["custom-key", "custom-value"]],
];
const REQUESTS_TABLES: Array<[Fields, number]> = [
  [[AUTH], 57],
  [[["cache-control", "no-cache"], AUTH], 110],
  [[["custom-key", "custom-value"], ["cache-control", "no-cache"], AUTH], 164],
];
const DATE1: [string, string] = ["date", "Mon, 21 Oct 2013 20:13:21 GMT"];
const DATE2: [string, string] = ["date", "Mon, 21 Oct 2013 20:13:22 GMT"];
const LOCATION: [string, string] = ["location", "https://www.example.com"];
const PRIVATE: [string, string] = ["cache-control", "private"];
const COOKIE: [string, string] = ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"];
const RESPONSES_FIELDS: Fields[] = [
  [[":status", "302"], PRIVATE, DATE1, LOCATION],
  [[":status", "307"], PRIVATE, DATE1, LOCATION],
  [[":status", "200"], PRIVATE, DATE2, LOCATION, ["content-encoding", "gzip"], COOKIE],
];
const RESPONSES_TABLES: Array<[Fields, number]> = [
  [[LOCATION, DATE1, PRIVATE, [":status", "302"]], 222],
  [[[":status", "307"], LOCATION, DATE1, PRIVATE], 222],
  [[COOKIE, ["content-encoding", "gzip"], DATE2], 215],
];

function examples(blocks: string[], fields: Fields[], tables: Array<[Fields, number]>): Example[] {
  return blocks.map((block, i) => ({
    block,
    fields: fields[i] as Fields,
    table: (tables[i] as [Fields, number])[0],
    size: (tables[i] as [Fields, number])[1],
  }));
}

const C3 = examples(
  [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
  ],
  REQUESTS_FIELDS,
  REQUESTS_TABLES,
);
const C4 = examples(
  [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
  ],
  REQUESTS_FIELDS,
  REQUESTS_TABLES,
);
const C5 = examples(
  [
    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32" +
      "3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "4803 3330 37c1 c0bf",
    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970" +
      "7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61" +
      "6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
  ],
  RESPONSES_FIELDS,
  RESPONSES_TABLES,
);
const C6 = examples(
  [
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad" +
      "1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    "4883 640e ffc1 c0bf",
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2" +
      "e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
  ],
  RESPONSES_FIELDS,
  RESPONSES_TABLES,
);

/** The size update an encoder limited to 256 octets sends first: 001 + integer 256 on 5 bits. */
const UPDATE_256 = "3fe101";

function checkSequence(
  name: string,
  list: Example[],
  decoderOptions: HpackDecoderOptions,
  encoderOptions: HpackEncoderOptions,
  firstPrefix = "",
): void {
  it(`${name}: decodes each block, dynamic table after each as in the RFC`, () => {
    const decoder = new HpackDecoder(decoderOptions);
    for (const ex of list) {
      const { status, list: out } = decodeBlock(decoder, hex(ex.block));
      assert.equal(status, "ok");
      assert.deepEqual(out.toArray(), ex.fields);
      assert.deepEqual(decoder.dynamicTableEntries(), ex.table);
      assert.equal(decoder.dynamicTableSize, ex.size);
    }
  });
  it(`${name}: encodes each block to the RFC's octets`, () => {
    const encoder = new HpackEncoder(encoderOptions);
    list.forEach((ex, i) => {
      assert.equal(
        encodeBlock(encoder, ex.fields),
        (i === 0 ? firstPrefix : "") + hex(ex.block).toString("hex"),
      );
      assert.deepEqual(encoder.dynamicTableEntries(), ex.table);
      assert.equal(encoder.dynamicTableSize, ex.size);
    });
  });
}

describe("HPACK: RFC 7541 Appendix C", { timeout: 10_000 }, () => {
  it("C.1 integers: 10 on 5 bits, 1337 on 5 bits, 42 on 8 bits", () => {
    const out = Buffer.alloc(8);
    assert.equal(out.toString("hex", 0, encodeInteger(10, 5, 0, out, 0)), "0a");
    assert.equal(out.toString("hex", 0, encodeInteger(1337, 5, 0, out, 0)), "1f9a0a");
    assert.equal(out.toString("hex", 0, encodeInteger(42, 8, 0, out, 0)), "2a");
    assert.equal(decodeInteger(hex("1f9a0a"), { offset: 0 }, 3, 5), 1337);
  });

  const single: Array<[string, string, Fields, Fields, HpackEncoderOptions]> = [
    [
      "C.2.1 literal with indexing",
      "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
      [["custom-key", "custom-header"]],
      [["custom-key", "custom-header"]],
      { huffman: "never" },
    ],
    [
      "C.2.2 literal without indexing",
      "040c 2f73 616d 706c 652f 7061 7468",
      [[":path", "/sample/path"]],
      [],
      { huffman: "never", volatileNames: [":path"] },
    ],
    [
      "C.2.3 literal never indexed",
      "1008 7061 7373 776f 7264 0673 6563 7265 74",
      [["password", "secret"]],
      [],
      { huffman: "never", sensitiveNames: ["password"] },
    ],
    ["C.2.4 indexed", "82", [[":method", "GET"]], [], {}],
  ];
  for (const [name, block, fields, table, options] of single) {
    it(`${name}: decodes, and encodes back to the same octets`, () => {
      const decoder = new HpackDecoder();
      const { status, list } = decodeBlock(decoder, hex(block));
      assert.equal(status, "ok");
      assert.deepEqual(list.toArray(), fields);
      assert.deepEqual(decoder.dynamicTableEntries(), table);
      assert.equal(list.neverIndexed(0), name.startsWith("C.2.3"));
      assert.equal(encodeBlock(new HpackEncoder(options), fields), hex(block).toString("hex"));
    });
  }

  it("a literal that leaves the table alone is sent the same each time its value repeats, and decodes to it", () => {
    // content-length is volatile (not indexed once its name is known); authorization is sensitive.
    const encoder = new HpackEncoder();
    const decoder = new HpackDecoder();
    const blocks = [
      [
        ["content-length", "105"],
        ["authorization", "Bearer a"],
      ],
      [
        ["content-length", "105"],
        ["authorization", "Bearer a"],
      ],
      [
        ["content-length", "7"],
        ["authorization", "Bearer b"],
      ],
      [
        ["content-length", "105"],
        ["authorization", "Bearer a"],
      ],
    ] as Fields[];
    const encoded = blocks.map((fields) => {
      const hexBlock = encodeBlock(encoder, fields);
      const { status, list } = decodeBlock(decoder, hex(hexBlock));
      assert.equal(status, "ok");
      assert.deepEqual(list.toArray(), fields);
      assert.equal(list.neverIndexed(1), true);
      return hexBlock;
    });
    assert.equal(encoded[1], encoded[0]);
    assert.notEqual(encoded[2], encoded[0]);
    assert.equal(encoded[3], encoded[0]);
    assert.deepEqual(decoder.dynamicTableEntries(), encoder.dynamicTableEntries());
  });

  it("a block that repeats a recent one is copied while the table is unchanged, and decodes the same", () => {
    const encoder = new HpackEncoder();
    const decoder = new HpackDecoder();
    const request = (path: string): Fields => [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", path],
      [":authority", "127.0.0.1:8001"],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
    ];
    const headers: Fields = [
      [":status", "200"],
      ["content-type", "application/grpc"],
    ];
    const trailers: Fields = [["grpc-status", "0"]];
    const send = (fields: Fields): string => {
      const hexBlock = encodeBlock(encoder, fields);
      const { status, list } = decodeBlock(decoder, hex(hexBlock));
      assert.equal(status, "ok");
      assert.deepEqual(list.toArray(), fields);
      return hexBlock;
    };
    // The first request fills the table (not kept: it changed the table); the second is all indexed.
    const first = send(request("/a.S/M"));
    const second = send(request("/a.S/M"));
    assert.notEqual(second, first);
    assert.equal(encoder.blocksReused, 0);
    assert.equal(send(request("/a.S/M")), second);
    assert.equal(encoder.blocksReused, 1);
    // A response's headers and trailers, in turn: the first trailers insert grpc-status (so the kept
    // headers go stale); from the second round both are kept, and from the third both are copied.
    for (let i = 0; i < 4; i++) {
      send(headers);
      send(trailers);
    }
    assert.equal(encoder.blocksReused, 1 + 4);
    // Another path inserts an entry: the kept request is stale (its indices moved), encoded afresh.
    send(request("/a.S/N"));
    const again = send(request("/a.S/M"));
    assert.notEqual(again, second);
    assert.equal(encoder.blocksReused, 5);
    assert.equal(send(request("/a.S/M")), again);
    assert.equal(encoder.blocksReused, 6);
    // A block that is a prefix of a kept one, and one that goes on past it: encoded, not copied.
    send(request("/a.S/M").slice(0, 3));
    send([...request("/a.S/M"), ["grpc-timeout", "1S"]]);
    assert.equal(encoder.blocksReused, 6);
    // Fifty blocks that never repeat (a new grpc-timeout each) keep fewer blocks, yet a block that
    // repeats afterwards is kept again within a few sends and then copied.
    for (let i = 0; i < 50; i++) send([...request("/a.S/M"), ["grpc-timeout", `${i + 1}m`]]);
    assert.equal(encoder.blocksReused, 6);
    for (let i = 0; i < 20; i++) send(request("/a.S/M"));
    const reused: number = encoder.blocksReused;
    assert.ok(reused >= 6 + 3, `${reused}`);
    assert.deepEqual(decoder.dynamicTableEntries(), encoder.dynamicTableEntries());
    // The decoder, fed the same octets again while its table is unchanged, gave the kept fields.
    assert.ok(decoder.blocksReused >= encoder.blocksReused, `${decoder.blocksReused}`);
  });

  checkSequence("C.3 requests without Huffman", C3, {}, { huffman: "never" });
  checkSequence("C.4 requests with Huffman", C4, {}, { huffman: "always" });
  const small = { maxTableSize: 256, volatileNames: [] };
  checkSequence(
    "C.5 responses without Huffman",
    C5,
    { maxTableSize: 256 },
    { ...small, huffman: "never" },
    UPDATE_256,
  );
  checkSequence(
    "C.6 responses with Huffman",
    C6,
    { maxTableSize: 256 },
    { ...small, huffman: "always" },
    UPDATE_256,
  );

  it("decodes a block inside a larger buffer (offset, length)", () => {
    const block = hex(C4[0]?.block ?? "");
    const framed = Buffer.concat([hex("deadbeef"), block, hex("ff")]);
    const list = new HeaderList();
    assert.equal(new HpackDecoder().decode(framed, 4, block.length, list), "ok");
    assert.deepEqual(list.toArray(), C4[0]?.fields);
  });
});

describe("HPACK: Huffman code (Appendix B)", { timeout: 10_000 }, () => {
  it("rebuilt canonical codes equal the codes printed in the RFC", () => {
    const printed: Array<[number, number, number]> = [
      [0, 0x1ff8, 13],
      [10, 0x3ffffffc, 30],
      [32, 0x14, 6],
      [48, 0x0, 5],
      [97, 0x3, 5],
      [122, 0x7b, 7],
      [127, 0xffffffc, 28],
      [128, 0xfffe6, 20],
      [200, 0x3ffffe2, 26],
      [255, 0x3ffffee, 26],
      [256, 0x3fffffff, 30],
    ];
    for (const [sym, code, len] of printed) {
      assert.equal(HUFFMAN_CODES[sym], code, `code of ${sym}`);
      assert.equal(HUFFMAN_LENGTHS[sym], len, `length of ${sym}`);
    }
  });

  it("all 257 codes equal those of the hpack.js library", () => {
    const lib = createRequire(import.meta.url)("hpack.js") as {
      huffman: { encode: Array<[number, number]> };
    };
    for (let sym = 0; sym <= 256; sym++) {
      assert.deepEqual([HUFFMAN_LENGTHS[sym], HUFFMAN_CODES[sym]], lib.huffman.encode[sym], `symbol ${sym}`);
    }
  });

  it("round-trips every octet value, alone and in one string", () => {
    const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i));
    for (const s of [...all, all.join("")]) {
      const enc = Buffer.alloc(huffmanEncodedLength(s));
      assert.equal(huffmanEncode(s, enc, 0), enc.length);
      const dec = Buffer.alloc(s.length * 2);
      assert.equal(dec.toString("latin1", 0, huffmanDecode(enc, 0, enc.length, dec)), s);
    }
  });

  it("refuses EOS, padding over 7 bits and padding that is not all ones", () => {
    assert.equal(huffmanDecode(hex("ffffffff"), 0, 4, null), -1); // 30 ones = EOS
    assert.equal(huffmanDecode(hex("1fff"), 0, 2, null), -1); // 'a' then 11 bits of padding
    assert.equal(huffmanDecode(hex("00"), 0, 1, null), -1); // '0' then padding 000
    assert.equal(huffmanDecode(hex("1f"), 0, 1, null), 1); // 'a' then padding 111
    assert.equal(huffmanDecode(hex(""), 0, 0, null), 0);
  });
});

describe("HPACK: the static table (Appendix A)", { timeout: 10_000 }, () => {
  it("equals the hpack.js library's 61 entries", () => {
    const lib = createRequire(import.meta.url)("hpack.js") as {
      "static-table": { table: Array<{ name: string; value: string }> };
    };
    const theirs = lib["static-table"].table.map((e) => [e.name, e.value]);
    assert.deepEqual(
      STATIC_NAMES.slice(1).map((n, i) => [n, STATIC_VALUES[i + 1]]),
      theirs,
    );
  });
});

describe("HPACK: integers (§5.1)", { timeout: 10_000 }, () => {
  it("round-trips prefix edges and the largest accepted value on every prefix width", () => {
    const out = Buffer.alloc(16);
    for (let prefix = 1; prefix <= 8; prefix++) {
      const max = (1 << prefix) - 1;
      for (const v of [0, max - 1, max, max + 1, max + 127, max + 128, 0x7fffffff]) {
        if (v < 0) continue;
        const end = encodeInteger(v, prefix, 0, out, 0);
        const cursor = { offset: 0 };
        assert.equal(decodeInteger(out, cursor, end, prefix), v, `${v} on ${prefix} bits`);
        assert.equal(cursor.offset, end);
      }
    }
  });

  it("refuses a truncated integer, one above 2^31 - 1 and one with six continuation octets", () => {
    assert.equal(decodeInteger(hex("1f"), { offset: 0 }, 1, 5), -1);
    assert.equal(decodeInteger(hex("1f80"), { offset: 0 }, 2, 5), -1);
    assert.equal(decodeInteger(hex("7fe1ffffff07"), { offset: 0 }, 6, 7), -1);
    assert.equal(decodeInteger(hex("1f808080808000"), { offset: 0 }, 7, 5), -1);
    assert.equal(decodeInteger(hex("1f8000"), { offset: 0 }, 3, 5), 31, "redundant zero groups are fine");
  });
});
