/**
 * HPACK codec micro-benchmark: Fulcrum's codec (src/h2/, RFC 7541) against the hpack.js library on
 * the header blocks of one gRPC unary call — request headers, response headers, trailers — so the
 * frame-level engine can use whichever is measurably faster (issue #7).
 *
 * Two scenarios per codec: "warm", one long-lived connection whose dynamic tables already hold every
 * field (the steady state of a proxy's upstream and downstream connections), and "cold", a fresh
 * encoder and decoder per block (construction included: the first call on a new connection, where
 * every field is a Huffman-coded literal). Codecs and repetitions are interleaved, so each figure has
 * its rival measured under the same machine load. Allocation per block is the heap growth over a short
 * window in which no garbage collection ran (needs --expose-gc; otherwise reported as "–").
 *
 *   npm exec -s -- node --expose-gc dist/bench/hpack-codec.js [--repeat 5] [--ms 400]
 */
import { createRequire } from "node:module";
import { PerformanceObserver, performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { HpackDecoder } from "../src/h2/hpack-decoder.js";
import { HpackEncoder } from "../src/h2/hpack-encoder.js";
import { HeaderList } from "../src/h2/hpack-header-list.js";

interface LibHeader {
  name: string;
  value: string;
}
interface LibCompressor {
  write(headers: LibHeader[]): void;
  read(): Buffer | null;
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

type Fields = Array<[string, string]>;

const REQUEST: Fields = [
  [":method", "POST"],
  [":scheme", "http"],
  [":path", "/inference.GRPCInferenceService/ModelInfer"],
  [":authority", "127.0.0.1:9001"],
  ["content-type", "application/grpc"],
  ["te", "trailers"],
  ["grpc-timeout", "1S"],
  ["user-agent", "grpc-node-js/1.14.3"],
  ["grpc-accept-encoding", "identity,deflate,gzip"],
];
const RESPONSE: Fields = [
  [":status", "200"],
  ["content-type", "application/grpc"],
  ["grpc-accept-encoding", "identity,deflate,gzip"],
];
const TRAILERS: Fields = [
  ["grpc-status", "0"],
  ["grpc-message", ""],
];
const BLOCKS: Fields[] = [REQUEST, RESPONSE, TRAILERS];

/** One codec behind the operations the benchmark times. */
interface Codec {
  readonly name: "fulcrum" | "hpack.js";
  /** A fresh encoder/decoder pair, as a new connection gets. */
  pair(): CodecPair;
}

interface CodecPair {
  /** Encodes block `i` and returns a copy of it, for decoding. */
  encode(i: number): Buffer;
  /** Encodes block `i` as a caller on the data path would: the octets are there to be framed. */
  encodeOnly(i: number): number;
  /** Decodes a block and returns its number of fields. */
  decode(block: Buffer): number;
}

const ours: Codec = {
  name: "fulcrum",
  pair() {
    const encoder = new HpackEncoder();
    const decoder = new HpackDecoder();
    const lists = BLOCKS.map((fields) => {
      const list = new HeaderList();
      for (const [n, v] of fields) list.add(n, v);
      return list;
    });
    const out = new HeaderList();
    return {
      encode(i) {
        const n = encoder.encode(lists[i] as HeaderList);
        return Buffer.from(encoder.output.subarray(0, n));
      },
      encodeOnly(i) {
        // The block stays in the encoder's buffer until the caller frames it (h2-frame-writers.ts).
        return encoder.encode(lists[i] as HeaderList);
      },
      decode(block) {
        decoder.decode(block, 0, block.length, out);
        return out.length;
      },
    };
  },
};

const theirs: Codec = {
  name: "hpack.js",
  pair() {
    const compressor = lib.compressor.create({ table: { maxSize: 4096 } });
    const decompressor = lib.decompressor.create({ table: { maxSize: 4096 } });
    const lists = BLOCKS.map((fields) => fields.map(([name, value]) => ({ name, value })));
    return {
      encode(i) {
        compressor.write(lists[i] as LibHeader[]);
        return compressor.read() ?? Buffer.alloc(0);
      },
      encodeOnly(i) {
        compressor.write(lists[i] as LibHeader[]);
        return compressor.read()?.length ?? 0;
      },
      decode(block) {
        decompressor.write(block);
        decompressor.execute();
        let n = 0;
        while (decompressor.read() !== null) n++;
        return n;
      },
    };
  },
};

/** Operations to time: each call handles one block; `i` picks it (request, response, trailers). */
interface Workload {
  readonly run: (i: number) => void;
}

function warmEncode(codec: Codec): Workload {
  const p = codec.pair();
  for (let i = 0; i < 3; i++) p.encode(i);
  // The steady state: the output is never needed, only the encoder's work.
  return { run: (i) => void p.encodeOnly(i % 3) };
}

function warmDecode(codec: Codec): Workload {
  const p = codec.pair();
  // Prime both tables with the first call, then keep the steady-state (all indexed) blocks.
  for (let i = 0; i < 3; i++) p.decode(p.encode(i));
  const blocks = [0, 1, 2].map((i) => p.encode(i));
  for (const b of blocks) p.decode(b);
  return { run: (i) => void p.decode(blocks[i % 3] as Buffer) };
}

function coldEncode(codec: Codec): Workload {
  return { run: (i) => void codec.pair().encodeOnly(i % 3) };
}

function coldDecode(codec: Codec): Workload {
  const blocks = [0, 1, 2].map((i) => codec.pair().encode(i));
  return { run: (i) => void codec.pair().decode(blocks[i % 3] as Buffer) };
}

/** Nanoseconds per block: batches until `ms` have passed, after a quarter of that unmeasured. */
function time(w: Workload, ms: number): number {
  const batch = 1000;
  const warmUntil = process.hrtime.bigint() + BigInt(ms) * 250_000n;
  while (process.hrtime.bigint() < warmUntil) for (let i = 0; i < batch; i++) w.run(i);
  let blocks = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < batch; i++) w.run(i);
    blocks += batch;
    now = process.hrtime.bigint();
  }
  return Number(now - start) / blocks;
}

/** Start times (performance.now()) of every garbage collection so far. */
const gcStarts: number[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcStarts.push(e.startTime);
}).observe({ entryTypes: ["gc"] });
const gc = (globalThis as { gc?: () => void }).gc;

/** Heap bytes per block over a window free of garbage collection, or NaN without --expose-gc. */
async function bytesPerBlock(w: Workload): Promise<number> {
  if (gc === undefined) return NaN;
  for (let attempt = 0; attempt < 20; attempt++) {
    const n = 200;
    gc();
    const heap = process.memoryUsage().heapUsed;
    const from = performance.now();
    for (let i = 0; i < n; i++) w.run(i);
    const grown = process.memoryUsage().heapUsed - heap;
    const to = performance.now();
    // GC entries arrive asynchronously; let them in before judging the window.
    await new Promise((r) => setTimeout(r, 5));
    if (!gcStarts.some((t) => t >= from && t <= to)) return Math.max(0, grown) / n;
  }
  return NaN;
}

interface Row {
  codec: Codec["name"];
  scenario: "warm" | "cold";
  encodeNs: number[];
  decodeNs: number[];
  encodeBytes: number[];
  decodeBytes: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function fmt(xs: number[], digits = 0): string {
  if (xs.some((x) => Number.isNaN(x))) return "–";
  const s = [...xs].sort((a, b) => a - b);
  const f = (x: number): string => x.toLocaleString("en-US", { maximumFractionDigits: digits });
  return `${f(median(xs))} (${f(s[0] as number)}–${f(s[s.length - 1] as number)})`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { repeat: { type: "string" }, ms: { type: "string" } } });
  const repeat = Number(values.repeat ?? 5);
  const ms = Number(values.ms ?? 400);
  for (const codec of [ours, theirs]) sanityCheck(codec);
  const rows: Row[] = [];
  for (const scenario of ["warm", "cold"] as const) {
    for (const codec of [ours, theirs]) {
      rows.push({
        codec: codec.name,
        scenario,
        encodeNs: [],
        decodeNs: [],
        encodeBytes: [],
        decodeBytes: [],
      });
    }
  }
  for (let r = 0; r < repeat; r++) {
    for (const row of rows) {
      const codec = row.codec === "fulcrum" ? ours : theirs;
      const enc = row.scenario === "warm" ? warmEncode(codec) : coldEncode(codec);
      const dec = row.scenario === "warm" ? warmDecode(codec) : coldDecode(codec);
      row.encodeNs.push(time(enc, ms));
      row.decodeNs.push(time(dec, ms));
      row.encodeBytes.push(await bytesPerBlock(enc));
      row.decodeBytes.push(await bytesPerBlock(dec));
    }
    process.stderr.write(`repetition ${r + 1}/${repeat} done\n`);
  }
  report(rows, repeat, ms);
}

/** Both codecs must round-trip the three blocks, twice (cold then warm), before anything is timed. */
function sanityCheck(codec: Codec): void {
  const p = codec.pair();
  for (let round = 0; round < 2; round++) {
    BLOCKS.forEach((fields, i) => {
      const n = p.decode(p.encode(i));
      if (n !== fields.length) throw new Error(`${codec.name}: block ${i} decoded to ${n} fields`);
    });
  }
}

function report(rows: Row[], repeat: number, ms: number): void {
  const lines = [
    `Node ${process.version}, ${repeat} interleaved repetitions of ${ms} ms per figure; median (min–max).`,
    "",
    "| scenario | codec | encode ns/block | decode ns/block | encode B/block | decode B/block |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.scenario} | ${r.codec} | ${fmt(r.encodeNs)} | ${fmt(r.decodeNs)} | ${fmt(r.encodeBytes)} | ${fmt(r.decodeBytes)} |`,
    );
  }
  lines.push(
    "",
    "| scenario | encode: hpack.js / fulcrum | decode: hpack.js / fulcrum |",
    "| --- | --- | --- |",
  );
  for (const scenario of ["warm", "cold"] as const) {
    const a = rows.find((r) => r.scenario === scenario && r.codec === "fulcrum") as Row;
    const b = rows.find((r) => r.scenario === scenario && r.codec === "hpack.js") as Row;
    const ratio = (x: number[], y: number[]): string => (median(y) / median(x)).toFixed(1);
    lines.push(`| ${scenario} | ${ratio(a.encodeNs, b.encodeNs)}× | ${ratio(a.decodeNs, b.decodeNs)}× |`);
  }
  process.stdout.write(lines.join("\n") + "\n");
}

await main();
