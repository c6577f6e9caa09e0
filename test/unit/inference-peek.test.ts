/**
 * The inference request peeker against real messages: Triton `ModelInferRequest` and TorchServe
 * `PredictionsRequest` encoded by protobufjs from the repository's own protos, plus hand-written wire
 * bytes for what serializers never emit (fields out of order, repeated scalars, unknown fields, wrong
 * wire types, garbage). fast-check, with fixed seeds and bounded runs, checks that fields in any order
 * give what protobuf's "last one wins" semantics give, and that every split of the same bytes into
 * chunks gives the same outcome.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import protobuf from "protobufjs";
import {
  RequestPeeker,
  inferenceMethodOf,
  type InferenceMethod,
  type PeekOutcome,
  type PeekResult,
} from "../../src/grpc/inference-peek.js";
import { repoRoot } from "../helpers/repo-root.js";

const root = new protobuf.Root();
root.loadSync(join(repoRoot(), "protos", "triton", "grpc_service.proto"), { keepCase: true });
root.loadSync(join(repoRoot(), "protos", "torchserve", "inference.proto"), { keepCase: true });
const ModelInferRequest = root.lookupType("inference.ModelInferRequest");
const PredictionsRequest = root.lookupType("org.pytorch.serve.grpc.inference.PredictionsRequest");

const KIB = 1024;
const MAX = 64 * KIB;

/** A gRPC length-prefixed message. */
function frame(body: Uint8Array, flag = 0): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = flag;
  out.writeUInt32BE(body.length, 1);
  out.set(body, 5);
  return out;
}

const triton = (props: Record<string, unknown>): Buffer => frame(ModelInferRequest.encode(props).finish());
const torchserve = (props: Record<string, unknown>): Buffer =>
  frame(PredictionsRequest.encode(props).finish());

/** A 64-bit value as protobufjs takes it, exact past 2^53. */
function long(v: bigint, unsigned = false): protobuf.Long {
  const u = BigInt.asUintN(64, v);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned };
}

/** Pushes `bytes` in chunks of the given sizes (cycled), then ends the request if still undecided. */
function peek(method: InferenceMethod, bytes: Buffer, sizes: readonly number[] = [bytes.length], max = MAX) {
  const peeker = new RequestPeeker(method, max);
  let outcome: PeekOutcome = { kind: "need_more" };
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length]!);
    outcome = peeker.push(bytes.subarray(at, at + size));
    at += size;
  }
  return outcome.kind === "need_more" ? peeker.end() : outcome;
}

function result(outcome: PeekOutcome): PeekResult {
  assert.equal(outcome.kind, "done", JSON.stringify(outcome));
  return outcome.result;
}

type Reason = Extract<PeekOutcome, { kind: "fallback" }>["reason"];
const fallback = (reason: Reason): PeekOutcome => ({ kind: "fallback", reason });
const seq = (key: string, start = false, end = false) => ({ key, start, end });

/** One top-level field of a hand-built ModelInferRequest / PredictionsRequest. */
type Value =
  | { bool: boolean }
  | { int64: bigint }
  | { uint64: bigint }
  | { string: string }
  | { double: number }
  | undefined;
type Part =
  | { kind: "model" | "version" | "id"; text: string }
  | { kind: "param"; key: string; value: Value; valueFirst: boolean }
  | { kind: "input"; name: string }
  | { kind: "raw"; size: number }
  | { kind: "unknown"; field: number; wire: 0 | 1 | 2 | 5 };

function writeValue(w: protobuf.Writer, v: Value): void {
  if (v === undefined) return;
  w.uint32(18).fork();
  if ("bool" in v) w.uint32(8).bool(v.bool);
  else if ("int64" in v) w.uint32(16).int64(long(v.int64));
  else if ("string" in v) w.uint32(26).string(v.string);
  else if ("double" in v) w.uint32(33).double(v.double);
  else w.uint32(40).uint64(long(v.uint64, true));
  w.ldelim();
}

function writePart(w: protobuf.Writer, p: Part, tritonMessage: boolean): void {
  switch (p.kind) {
    case "model":
      return void w.uint32(10).string(p.text);
    case "version":
      return void w.uint32(18).string(p.text);
    case "id":
      return void w.uint32(26).string(p.text);
    case "param":
      w.uint32(34).fork();
      if (p.valueFirst) writeValue(w, p.value);
      w.uint32(10).string(p.key);
      if (!p.valueFirst) writeValue(w, p.value);
      return void w.ldelim();
    case "input":
      // Triton: an InferInputTensor (inputs=5); TorchServe: an `input` map entry (input=3).
      if (tritonMessage)
        return void w.uint32(42).fork().uint32(10).string(p.name).uint32(18).string("FP32").ldelim();
      return void w.uint32(26).fork().uint32(10).string(p.name).uint32(18).bytes(Buffer.from("xyz")).ldelim();
    case "raw":
      return void w.uint32(58).bytes(Buffer.alloc(p.size, 7));
    case "unknown": {
      w.uint32(p.field * 8 + p.wire);
      if (p.wire === 0) w.uint64(long(-3n));
      else if (p.wire === 1) w.fixed64(long(5n));
      else if (p.wire === 2) w.bytes(Buffer.from([1, 2, 3]));
      else w.fixed32(9);
      return;
    }
  }
}

function encodeParts(parts: readonly Part[], tritonMessage = true): Buffer {
  const w = protobuf.Writer.create();
  for (const p of parts) writePart(w, p, tritonMessage);
  return frame(w.finish());
}

/** What protobuf semantics give: the last scalar wins, the last map entry of a key wins. */
function expected(parts: readonly Part[], tritonMessage = true): PeekResult {
  let model = "";
  let version = "";
  const params = new Map<string, Value>();
  for (const p of parts) {
    if (p.kind === "model") model = p.text;
    else if (p.kind === "version") version = p.text;
    else if (p.kind === "param") params.set(p.key, p.value);
  }
  if (!tritonMessage) return { model, version, sequence: undefined };
  const id = params.get("sequence_id");
  let key: string | undefined;
  if (id !== undefined && "int64" in id && id.int64 !== 0n) key = `i:${id.int64}`;
  else if (id !== undefined && "uint64" in id && id.uint64 !== 0n) key = `i:${id.uint64}`;
  else if (id !== undefined && "string" in id && id.string !== "") key = `s:${id.string}`;
  const flag = (name: string) => {
    const v = params.get(name);
    return v !== undefined && "bool" in v && v.bool;
  };
  const sequence = key === undefined ? undefined : seq(key, flag("sequence_start"), flag("sequence_end"));
  return { model, version, sequence };
}

const textArb = fc.string({ unit: "grapheme", maxLength: 12 });
const valueArb: fc.Arbitrary<Value> = fc.oneof(
  fc.record({ bool: fc.boolean() }),
  fc.record({ int64: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) }),
  fc.record({ int64: fc.bigInt({ min: -3n, max: 3n }) }),
  fc.record({ uint64: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
  fc.record({ string: fc.string({ maxLength: 6 }) }),
  fc.record({ double: fc.double({ noNaN: true }) }),
  fc.constant(undefined),
);
const keyArb = fc.constantFrom("sequence_id", "sequence_start", "sequence_end", "priority", "timeout", "");
const partArb: fc.Arbitrary<Part> = fc.oneof(
  fc.record({ kind: fc.constantFrom("model" as const, "version" as const, "id" as const), text: textArb }),
  fc.record({ kind: fc.constant("param" as const), key: keyArb, value: valueArb, valueFirst: fc.boolean() }),
  fc.record({ kind: fc.constant("input" as const), name: textArb }),
  fc.record({ kind: fc.constant("raw" as const), size: fc.integer({ min: 0, max: 3000 }) }),
  fc.record({
    kind: fc.constant("unknown" as const),
    field: fc.integer({ min: 8, max: 5000 }),
    wire: fc.constantFrom(0 as const, 1 as const, 2 as const, 5 as const),
  }),
);
const sizesArb = fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 16 });
const RUNS = { seed: 9, numRuns: 300 };

describe("inference request peek", { timeout: 30_000 }, () => {
  it("names the four inference methods and nothing else", () => {
    const cases: [string, InferenceMethod | undefined][] = [
      ["/inference.GRPCInferenceService/ModelInfer", "triton_infer"],
      ["/inference.GRPCInferenceService/ModelStreamInfer", "triton_stream_infer"],
      ["/org.pytorch.serve.grpc.inference.InferenceAPIsService/Predictions", "torchserve_predict"],
      [
        "/org.pytorch.serve.grpc.inference.InferenceAPIsService/StreamPredictions",
        "torchserve_stream_predict",
      ],
      ["/inference.GRPCInferenceService/ModelReady", undefined],
      ["/org.pytorch.serve.grpc.inference.InferenceAPIsService/Ping", undefined],
      ["/grpc.health.v1.Health/Check", undefined],
      ["/inference.GRPCInferenceService/modelinfer", undefined],
      ["/inference.GRPCInferenceService/ModelInfer/", undefined],
      ["", undefined],
    ];
    for (const [path, method] of cases) assert.equal(inferenceMethodOf(path), method, path);
  });

  it("reads model and version of Triton and TorchServe requests", () => {
    const t = triton({
      model_name: "resnet50",
      model_version: "3",
      id: "req-1",
      inputs: [{ name: "INPUT0", datatype: "FP32", shape: [1, 3] }],
      outputs: [{ name: "OUTPUT0" }],
      raw_input_contents: [Buffer.alloc(12, 1)],
    });
    for (const m of ["triton_infer", "triton_stream_infer"] as const) {
      assert.deepEqual(result(peek(m, t)), { model: "resnet50", version: "3", sequence: undefined });
    }
    const ts = torchserve({ model_name: "bert", model_version: "1.0", input: { data: Buffer.from("hi") } });
    for (const m of ["torchserve_predict", "torchserve_stream_predict"] as const) {
      assert.deepEqual(result(peek(m, ts)), { model: "bert", version: "1.0", sequence: undefined });
    }
    assert.deepEqual(result(peek("triton_infer", triton({ id: "x" }))), {
      model: "",
      version: "",
      sequence: undefined,
    });
    assert.deepEqual(result(peek("triton_infer", frame(new Uint8Array(0)))), {
      model: "",
      version: "",
      sequence: undefined,
    });
    // TorchServe has no parameters field: field 4 there is an unknown field.
    const params = { sequence_id: { int64_param: long(5n) } };
    const asTorchServe = frame(ModelInferRequest.encode({ model_name: "m", parameters: params }).finish());
    assert.equal(result(peek("torchserve_predict", asTorchServe)).sequence, undefined);
  });

  it("keys sequences by id type and value, exact past 2^53 and for negative int64", () => {
    const cases: [Record<string, unknown>, string | undefined][] = [
      [{ int64_param: long(42n) }, "i:42"],
      [{ int64_param: long(2n ** 53n + 1n) }, "i:9007199254740993"],
      [{ int64_param: long(2n ** 63n - 1n) }, "i:9223372036854775807"],
      [{ int64_param: long(-1n) }, "i:-1"],
      [{ int64_param: long(-(2n ** 63n)) }, "i:-9223372036854775808"],
      [{ int64_param: long(-(2n ** 53n) - 3n) }, "i:-9007199254740995"],
      [{ uint64_param: long(42n, true) }, "i:42"],
      [{ uint64_param: long(2n ** 64n - 1n, true) }, "i:18446744073709551615"],
      [{ string_param: "42" }, "s:42"],
      [{ string_param: "séq-ü" }, "s:séq-ü"],
      // 0 and "" are Triton's "no sequence"; other types are refused by Triton.
      [{ int64_param: long(0n) }, undefined],
      [{ string_param: "" }, undefined],
      [{ bool_param: true }, undefined],
      [{ double_param: 3 }, undefined],
      [{}, undefined],
    ];
    for (const [value, key] of cases) {
      const got = result(
        peek("triton_infer", triton({ model_name: "lstm", parameters: { sequence_id: value } })),
      );
      assert.deepEqual(got.sequence, key === undefined ? undefined : seq(key), JSON.stringify(value));
    }
  });

  it("reads sequence_start and sequence_end among other parameters, in any order", () => {
    const flags: [boolean | undefined, boolean | undefined][] = [
      [true, false],
      [false, true],
      [true, true],
      [undefined, undefined],
    ];
    for (const [start, end] of flags) {
      const parameters: Record<string, unknown> = { priority: { uint64_param: long(2n, true) } };
      if (end !== undefined) parameters.sequence_end = { bool_param: end };
      parameters.timeout = { int64_param: long(100n) };
      parameters.sequence_id = { string_param: "abc" };
      if (start !== undefined) parameters.sequence_start = { bool_param: start };
      parameters.headers = { string_param: "x" };
      const got = result(peek("triton_infer", triton({ model_name: "m", parameters })));
      assert.deepEqual(got.sequence, seq("s:abc", start ?? false, end ?? false));
    }
    // A flag of the wrong type is not a flag; flags without an id make no sequence.
    const wrong = { sequence_id: { int64_param: long(7n) }, sequence_start: { int64_param: long(1n) } };
    assert.deepEqual(result(peek("triton_infer", triton({ parameters: wrong }))).sequence, seq("i:7"));
    const noId = { sequence_start: { bool_param: true } };
    assert.equal(result(peek("triton_infer", triton({ parameters: noId }))).sequence, undefined);
  });

  it("follows protobuf semantics for fields in any order, repeated and unknown", () => {
    const parts: Part[] = [
      { kind: "raw", size: 10 },
      { kind: "param", key: "sequence_id", value: { int64: 9n }, valueFirst: true },
      { kind: "model", text: "first" },
      { kind: "unknown", field: 99, wire: 0 },
      { kind: "input", name: "in" },
      { kind: "model", text: "second" },
      { kind: "param", key: "sequence_id", value: { string: "late" }, valueFirst: false },
      { kind: "unknown", field: 98, wire: 1 },
      { kind: "unknown", field: 97, wire: 5 },
      { kind: "version", text: "v" },
    ];
    assert.deepEqual(result(peek("triton_infer", encodeParts(parts))), {
      model: "second",
      version: "v",
      sequence: seq("s:late"),
    });
    // A known field with another wire type is an unknown field to protobuf runtimes.
    const wrongWire = frame(protobuf.Writer.create().uint32(8).uint32(5).uint32(18).string("v").finish());
    assert.deepEqual(result(peek("triton_infer", wrongWire)), {
      model: "",
      version: "v",
      sequence: undefined,
    });
  });

  it("matches protobuf semantics for random fields in random order and chunks", () => {
    fc.assert(
      fc.property(fc.array(partArb, { maxLength: 14 }), sizesArb, (parts, sizes) => {
        const bytes = encodeParts(parts);
        assert.deepEqual(result(peek("triton_stream_infer", bytes)), expected(parts));
        assert.deepEqual(result(peek("triton_infer", bytes, sizes)), expected(parts));
        const torch = parts.filter((p) => p.kind !== "param" && p.kind !== "raw");
        const torchBytes = encodeParts(torch, false);
        assert.deepEqual(result(peek("torchserve_predict", torchBytes, sizes)), expected(torch, false));
      }),
      RUNS,
    );
  });

  it("peeks a 10 MiB request as done from its head alone, in any chunking", () => {
    const head = {
      model_name: "llama",
      model_version: "2",
      id: "r",
      parameters: { sequence_id: { uint64_param: long(77n, true) } },
    };
    const tensor = { inputs: [{ name: "IN", datatype: "UINT8", shape: [10 * KIB * KIB] }] };
    const big = triton({ ...head, ...tensor, raw_input_contents: [Buffer.alloc(10 * KIB * KIB, 3)] });
    // The head: everything before raw_input_contents, then its tag and 4-byte length.
    const headLength = 5 + ModelInferRequest.encode({ ...head, ...tensor }).finish().length + 1 + 4;
    const want = { model: "llama", version: "2", sequence: seq("i:77") };
    const peeker = new RequestPeeker("triton_infer", MAX);
    assert.deepEqual(peeker.push(big.subarray(0, headLength - 1)), { kind: "need_more" });
    assert.deepEqual(result(peeker.push(big.subarray(headLength - 1, headLength))), want);
    assert.deepEqual(result(peek("triton_infer", big)), want);
    assert.deepEqual(result(peek("triton_infer", big.subarray(0, headLength), [1])), want);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 20 }), (sizes) => {
        const p = new RequestPeeker("triton_infer", MAX);
        let pushed = 0;
        for (let i = 0; pushed < headLength; i++) {
          const size = sizes[i % sizes.length]!;
          const outcome = p.push(big.subarray(pushed, pushed + size));
          pushed += size;
          if (outcome.kind !== "need_more") {
            assert.deepEqual(result(outcome), want);
            return pushed >= headLength;
          }
        }
        return false;
      }),
      { seed: 10, numRuns: 200 },
    );
    const ts = torchserve({ model_name: "big", input: { data: Buffer.alloc(10 * KIB * KIB) } });
    assert.deepEqual(result(peek("torchserve_predict", ts.subarray(0, 64), [7])), {
      model: "big",
      version: "",
      sequence: undefined,
    });
  });

  it("honours routing fields after a tensor within maxBytes, and assumes none past it", () => {
    const late = (rawSize: number): Part[] => [
      { kind: "model", text: "early" },
      { kind: "input", name: "IN" },
      { kind: "model", text: "late" },
      { kind: "raw", size: rawSize },
      { kind: "model", text: "past-the-limit" },
    ];
    assert.equal(result(peek("triton_infer", encodeParts(late(1000)))).model, "past-the-limit");
    assert.equal(result(peek("triton_infer", encodeParts(late(200 * KIB)))).model, "late");
  });

  it("falls back on a compressed message", () => {
    const body = ModelInferRequest.encode({ model_name: "m" }).finish();
    const peeker = new RequestPeeker("triton_infer", MAX);
    assert.deepEqual(peeker.push(frame(body, 1).subarray(0, 1)), fallback("compressed"));
    assert.deepEqual(peeker.push(frame(body)), fallback("compressed"));
    assert.deepEqual(peeker.end(), fallback("compressed"));
    assert.deepEqual(peek("torchserve_predict", frame(body, 1), [2]), fallback("compressed"));
  });

  it("falls back when the head needs more than maxBytes", () => {
    const longName = triton({ model_name: "m".repeat(MAX + 1) });
    assert.deepEqual(peek("triton_infer", longName), fallback("too_large"));
    // Decided as soon as the length is read, before the name's bytes arrive.
    assert.deepEqual(peek("triton_infer", longName.subarray(0, 10)), fallback("too_large"));
    const idFirst = {
      model_name: "m",
      id: "x".repeat(100 * KIB),
      parameters: { sequence_id: { string_param: "s" } },
    };
    assert.deepEqual(peek("triton_infer", triton(idFirst)), fallback("too_large"));
    assert.deepEqual(result(peek("triton_infer", triton(idFirst), [4096], 256 * KIB)).sequence, seq("s:s"));
    // The limit counts message bytes: a message of exactly maxBytes is read whole, one more is too large.
    for (const [extra, want] of [
      [0, "done"],
      [1, "fallback"],
    ] as const) {
      const bytes = triton({ model_name: "m", id: "x".repeat(1000 + extra) });
      assert.equal(peek("triton_infer", bytes, [1], bytes.length - 5 - extra).kind, want);
    }
    // Varint fields have no length to check: the limit is met byte by byte.
    const varints = protobuf.Writer.create().uint32(10).string("m");
    for (let i = 0; i < 100; i++) varints.uint32(24).uint32(300);
    assert.deepEqual(peek("triton_infer", frame(varints.finish()), [7], 100), fallback("too_large"));
    // A routing field the limit cuts is known to be there, so even after a tensor it is not ignored.
    const cut: Part[] = [
      { kind: "model", text: "a" },
      { kind: "input", name: "IN" },
      { kind: "model", text: "b".repeat(MAX) },
    ];
    assert.deepEqual(peek("triton_infer", encodeParts(cut)), fallback("too_large"));
    assert.deepEqual(peek("triton_infer", triton({ model_name: "m" }), [1], 0), fallback("too_large"));
    assert.equal(result(peek("triton_infer", frame(new Uint8Array(0)), [1], 0)).model, "");
  });

  it("reports malformed bytes, and a request that ends early", () => {
    const malformed: [string, number[], number][] = [
      ["flag 2", [], 2],
      ["field number 0", [0x02, 0x00], 0],
      ["a length past the message", [0x0a, 0x05, 0x61], 0],
      ["a varint past the message", [0x08, 0x80], 0],
      ["an 11-byte varint", [0x08, ...Array<number>(10).fill(0xff), 0x01], 0],
      ["a group", [0x1b, 0x1c], 0],
      ["wire type 7", [0x0f], 0],
      ["invalid UTF-8 in the model name", [0x0a, 0x01, 0xff], 0],
      [
        "invalid UTF-8 in a string sequence id",
        [
          ...encodeParts([
            { kind: "param", key: "sequence_id", value: { string: "a" }, valueFirst: false },
          ]).subarray(5, -1),
          0xff,
        ],
        0,
      ],
      ["a truncated parameter entry", [0x22, 0x03, 0x0a, 0x05, 0x61], 0],
      ["a group inside a parameter", [0x22, 0x04, 0x12, 0x02, 0x0b, 0x0c], 0],
    ];
    for (const [name, body, flag] of malformed) {
      for (const sizes of [[1], [1000]]) {
        assert.deepEqual(
          peek("triton_infer", frame(Uint8Array.from(body), flag), sizes),
          fallback("malformed"),
          name,
        );
      }
    }
    const whole = triton({ model_name: "resnet", parameters: { sequence_id: { int64_param: long(1n) } } });
    for (let cut = 0; cut < whole.length; cut++) {
      const peeker = new RequestPeeker("triton_infer", MAX);
      assert.deepEqual(peeker.push(whole.subarray(0, cut)), { kind: "need_more" }, `cut at ${cut}`);
      assert.deepEqual(peeker.end(), fallback("ended"));
      assert.deepEqual(peeker.push(whole.subarray(cut)), fallback("ended"));
    }
  });

  it("keeps its outcome once decided", () => {
    const bytes = triton({ model_name: "m" });
    const peeker = new RequestPeeker("triton_infer", MAX);
    const done = peeker.push(bytes);
    assert.equal(peeker.push(Buffer.from([0xff, 0xff])), done);
    assert.equal(peeker.end(), done);
  });

  it("gives every chunking the same outcome and never throws, on valid, mutated and random bytes", () => {
    const messages = fc.oneof(
      fc.array(partArb, { maxLength: 10 }).map((parts) => encodeParts(parts)),
      fc
        .tuple(
          fc.array(partArb, { minLength: 1, maxLength: 10 }),
          fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
        )
        .map(([parts, edits]) => {
          const bytes = encodeParts(parts);
          for (const [at, value] of edits) bytes[5 + (at % Math.max(1, bytes.length - 5))] = value;
          return bytes;
        }),
      fc.uint8Array({ maxLength: 80 }).map((body) => frame(body)),
      fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
    );
    const methods = fc.constantFrom<InferenceMethod>("triton_infer", "torchserve_predict");
    fc.assert(
      fc.property(
        messages,
        sizesArb,
        fc.integer({ min: 0, max: 4000 }),
        methods,
        (bytes, sizes, max, method) => {
          const whole = peek(method, bytes, [bytes.length || 1], max);
          assert.deepEqual(peek(method, bytes, sizes, max), whole);
          assert.deepEqual(peek(method, bytes, [1], max), whole);
        },
      ),
      RUNS,
    );
  });
});
