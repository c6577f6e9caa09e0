/**
 * The head of an inference request's first gRPC message, read without decoding its tensors (issue #9):
 * Triton's `ModelInferRequest` (model_name=1, model_version=2, parameters=4 carrying `sequence_id`,
 * `sequence_start`, `sequence_end`) and TorchServe's `PredictionsRequest` (model_name=1,
 * model_version=2). A streaming scanner of the protobuf wire format (varint, fixed64, length-delimited
 * and fixed32 wire types; groups are refused as malformed): only the fields routing needs are copied,
 * every other field is counted past without being buffered, so a 10 MiB tensor costs arithmetic, not
 * memory. Pure: no I/O, no clock; it decides as early as the bytes allow, so any split of the same bytes
 * into chunks gives the same outcome.
 *
 * Field order. Serializers write fields in number order, but the wire format allows any order and a
 * repeated scalar's last occurrence wins, so the scan keeps going past tensor fields (Triton ≥ 5,
 * TorchServe ≥ 3) and honours a model name or parameter that comes after them, within the first
 * `maxBytes` of the message: a message that ends within them is read to its end ("done" only then).
 * When those bytes end inside a longer message, the rest is taken to hold no routing field once a tensor
 * field has begun — that is where every serializer puts the tensors — and the outcome is "done"; before
 * any tensor field (say a huge `id`), routing fields may still follow, so it is "too_large".
 *
 * Like protobuf runtimes, a known field with an unexpected wire type is skipped as unknown. Strings the
 * routing reads must be valid UTF-8 (proto3 parsers reject the request otherwise): else "malformed".
 */
import { isUtf8 } from "node:buffer";
import { PrefixBlockHasher } from "../balancer/prefix-blocks.js";

export type InferenceMethod =
  "triton_infer" | "triton_stream_infer" | "torchserve_predict" | "torchserve_stream_predict";

const METHODS: ReadonlyMap<string, InferenceMethod> = new Map([
  ["/inference.GRPCInferenceService/ModelInfer", "triton_infer"],
  ["/inference.GRPCInferenceService/ModelStreamInfer", "triton_stream_infer"],
  ["/org.pytorch.serve.grpc.inference.InferenceAPIsService/Predictions", "torchserve_predict"],
  ["/org.pytorch.serve.grpc.inference.InferenceAPIsService/StreamPredictions", "torchserve_stream_predict"],
]);

/** The inference method of a gRPC :path, or undefined. */
export function inferenceMethodOf(path: string): InferenceMethod | undefined {
  return METHODS.get(path);
}

export interface PeekResult {
  /** `model_name`; "" when absent. */
  readonly model: string;
  /** `model_version`; "" when absent. */
  readonly version: string;
  /**
   * Triton only, when the parameters carry a usable `sequence_id`: int64/uint64 ids become
   * "i:<decimal>" (int64 signed), string ids "s:<text>", so the two kinds never collide. An id of 0 or
   * "" is Triton's "no sequence" and gives undefined, as does an id of another type (Triton refuses it).
   * `start` / `end` are the bool parameters `sequence_start` / `sequence_end` (false when absent).
   */
  readonly sequence: { readonly key: string; readonly start: boolean; readonly end: boolean } | undefined;
  /**
   * Triton only, when the peeker was asked for a prompt (`PromptSpec`): its chained block hashes, or
   * why there are none: the input is not in the message (or its bytes come before its declaration),
   * the prompt is shorter than one block, or it lies past `maxBytes`.
   */
  readonly prompt?: PromptPeek;
}

export type PromptPeek =
  | { readonly kind: "found"; readonly hashes: readonly number[] }
  | { readonly kind: "missing"; readonly reason: "not_found" | "short" | "too_large" };

/**
 * The prompt to read for prefix affinity: the first element of the BYTES input named `input`, from
 * `raw_input_contents` (a 4-byte little-endian length, then the bytes) or from the input's own
 * `contents.bytes_contents`, hashed in blocks (prefix-blocks.ts).
 */
export interface PromptSpec {
  readonly input: string;
  readonly blockBytes: number;
  readonly maxBlocks: number;
}

export type PeekOutcome =
  | { readonly kind: "done"; readonly result: PeekResult }
  | { readonly kind: "need_more" }
  | { readonly kind: "fallback"; readonly reason: "compressed" | "too_large" | "malformed" | "ended" };

type Fallback = Extract<PeekOutcome, { kind: "fallback" }>;
const NEED_MORE: PeekOutcome = Object.freeze({ kind: "need_more" });
const COMPRESSED: Fallback = Object.freeze({ kind: "fallback", reason: "compressed" });
const TOO_LARGE: Fallback = Object.freeze({ kind: "fallback", reason: "too_large" });
const MALFORMED: Fallback = Object.freeze({ kind: "fallback", reason: "malformed" });
const ENDED: Fallback = Object.freeze({ kind: "fallback", reason: "ended" });

const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const FIXED32 = 5;

/** Map keys compared byte by byte, so parameters the routing ignores never become strings. */
const SEQUENCE_ID = Buffer.from("sequence_id");
const SEQUENCE_START = Buffer.from("sequence_start");
const SEQUENCE_END = Buffer.from("sequence_end");
const EMPTY = Buffer.alloc(0);

/** Where the scanner is: the 5-byte message prefix, a varint of the top-level field, or its bytes. */
type ScanState = "prefix" | "tag" | "length" | "skip_varint" | "skip" | "collect";

export class RequestPeeker {
  private readonly triton: boolean;
  /** The lowest field number holding tensors: routing fields after it are only honoured within maxBytes. */
  private readonly firstTensorField: number;
  private readonly maxBytes: number;
  private outcome: PeekOutcome | undefined;
  private state: ScanState = "prefix";
  private prefixRead = 0;
  private messageLength = 0;
  /** Message bytes scanned so far (excluding the prefix): the offset of the next one. */
  private pos = 0;
  private varint = 0;
  private varintScale = 1;
  private varintBytes = 0;
  private field = 0;
  /** The current top-level field is one the routing reads (so it is collected, not skipped). */
  private routing = false;
  private tensorSeen = false;
  /** Bytes of the current field's payload still to skip; for a collected one, its whole length. */
  private remaining = 0;
  private collected = 0;
  private scratch: Buffer | undefined;
  private model = "";
  private version = "";
  /** The last `sequence_id` entry's key, undefined when absent or unusable. */
  private sequenceKey: string | undefined;
  private sequenceStart = false;
  private sequenceEnd = false;
  /** The last varint read from a collected field, as unsigned 32-bit halves. */
  private lo = 0;
  private hi = 0;
  /** The InferParameter of the map entry being read: which oneof member (0 = none) and its value. */
  private paramChoice = 0;
  private paramLo = 0;
  private paramHi = 0;
  private paramTextStart = 0;
  private paramTextEnd = 0;
  /** The prompt asked for (Triton only), its input's position among `inputs`, and what was found. */
  private readonly promptSpec: PromptSpec | undefined;
  private readonly promptName: Buffer | undefined;
  private inputsSeen = 0;
  private rawSeen = 0;
  private promptIndex = -1;
  private prompt: PromptPeek | undefined;

  /**
   * `maxBytes`: most bytes of the message (after its prefix) read to route it; NaN or negative = 0.
   * `prompt`: also read that input's prompt (Triton methods only).
   */
  constructor(method: InferenceMethod, maxBytes: number, prompt?: PromptSpec) {
    this.triton = method === "triton_infer" || method === "triton_stream_infer";
    this.firstTensorField = this.triton ? 5 : 3;
    this.maxBytes = maxBytes >= 0 ? Math.floor(maxBytes) : 0;
    this.promptSpec = this.triton ? prompt : undefined;
    this.promptName = this.promptSpec ? Buffer.from(this.promptSpec.input) : undefined;
  }

  /**
   * Feeds the next request DATA bytes (in order). Returns "done" as soon as the routing fields are
   * known, "fallback" when they cannot be (compressed flag set, more than maxBytes needed, malformed),
   * else "need_more". After done/fallback, further pushes return the same outcome. Never throws.
   */
  push(chunk: Buffer): PeekOutcome {
    const n = chunk.length;
    let i = 0;
    while (this.outcome === undefined && i < n) {
      switch (this.state) {
        case "prefix":
          this.prefixByte(chunk[i++]!);
          break;
        case "tag":
        case "length":
        case "skip_varint":
          this.varintByte(chunk[i++]!);
          break;
        case "skip": {
          const k = Math.min(this.remaining, n - i);
          i += k;
          this.pos += k;
          this.remaining -= k;
          if (this.remaining === 0) this.fieldEnd();
          break;
        }
        case "collect":
          i = this.collect(chunk, i);
          break;
      }
    }
    return this.outcome ?? NEED_MORE;
  }

  /**
   * The request ended (END_STREAM) before an outcome: parse what was received; "done" if the message
   * head was complete, else fallback "ended". (Push decides as soon as the bytes allow, so a head that
   * was complete has already given "done": here that leaves "ended".)
   */
  end(): PeekOutcome {
    this.outcome ??= ENDED;
    return this.outcome;
  }

  private prefixByte(b: number): void {
    if (this.prefixRead === 0) {
      if (b === 1) return this.finish(COMPRESSED);
      if (b !== 0) return this.finish(MALFORMED);
    } else {
      this.messageLength = this.messageLength * 256 + b;
    }
    if (++this.prefixRead === 5) this.fieldBoundary();
  }

  private varintByte(b: number): void {
    this.pos++;
    this.varintBytes++;
    this.varint += (b & 0x7f) * this.varintScale;
    this.varintScale *= 128;
    if (b & 0x80) {
      if (this.varintBytes === 10) return this.finish(MALFORMED);
      return this.expectByte();
    }
    const value = this.varint;
    this.varint = 0;
    this.varintScale = 1;
    this.varintBytes = 0;
    if (this.state === "tag") this.onTag(value);
    else if (this.state === "length") this.startPayload(value);
    else this.fieldEnd();
  }

  private onTag(tag: number): void {
    // Field numbers stop at 2^29 - 1, so a tag never needs more than 32 bits.
    if (tag > 0xffffffff) return this.finish(MALFORMED);
    const field = Math.floor(tag / 8);
    if (field === 0) return this.finish(MALFORMED);
    this.field = field;
    if (field >= this.firstTensorField) this.tensorSeen = true;
    switch (tag % 8) {
      case VARINT:
        this.state = "skip_varint";
        return this.expectByte();
      case FIXED64:
        return this.startPayload(8);
      case LEN:
        this.routing = field === 1 || field === 2 || (this.triton && field === 4) || this.promptField(field);
        this.state = "length";
        return this.expectByte();
      case FIXED32:
        return this.startPayload(4);
      default:
        return this.finish(MALFORMED);
    }
  }

  /** The current field's payload is `length` bytes: check it against the message and the limit. */
  private startPayload(length: number): void {
    if (length > this.messageLength - this.pos) return this.finish(MALFORMED);
    if (this.pos + length > this.maxBytes) return this.limitReached();
    this.remaining = length;
    this.collected = 0;
    this.state = this.routing ? "collect" : "skip";
    if (length === 0) {
      if (this.routing) this.readField(EMPTY, 0, 0);
      else this.fieldEnd();
    }
  }

  private collect(chunk: Buffer, i: number): number {
    const length = this.remaining;
    const k = Math.min(length - this.collected, chunk.length - i);
    this.pos += k;
    if (this.collected === 0 && k === length) {
      // The whole payload is in this chunk, the usual case: read it in place.
      this.readField(chunk, i, i + k);
      return i + k;
    }
    const scratch = this.reserve(this.collected + k, length);
    chunk.copy(scratch, this.collected, i, i + k);
    this.collected += k;
    if (this.collected === length) this.readField(scratch, 0, length);
    return i + k;
  }

  /** Grows the scratch buffer with the bytes that actually arrived, not with a declared length. */
  private reserve(needed: number, length: number): Buffer {
    const had = this.scratch;
    if (had !== undefined && had.length >= needed) return had;
    const grown = Buffer.allocUnsafe(Math.min(length, Math.max(needed, 2 * (had?.length ?? 0), 256)));
    if (had !== undefined) had.copy(grown, 0, 0, this.collected);
    this.scratch = grown;
    return grown;
  }

  private readField(b: Buffer, start: number, end: number): void {
    if (this.field === 4) {
      if (!this.readEntry(b, start, end)) return this.finish(MALFORMED);
    } else if (this.field === 5) {
      if (!this.readInput(b, start, end)) return this.finish(MALFORMED);
    } else if (this.field === 7) {
      this.readRawPrompt(b, start, end);
    } else {
      if (!isUtf8(b.subarray(start, end))) return this.finish(MALFORMED);
      const text = b.toString("utf8", start, end);
      if (this.field === 1) this.model = text;
      else this.version = text;
    }
    this.fieldEnd();
  }

  private fieldEnd(): void {
    this.routing = false;
    this.fieldBoundary();
  }

  private fieldBoundary(): void {
    if (this.pos === this.messageLength) return this.finish(this.done());
    this.state = "tag";
    this.expectByte();
  }

  /** A varint continues: decide now if its next byte lies past the message or past maxBytes. */
  private expectByte(): void {
    if (this.pos >= this.messageLength) this.finish(MALFORMED);
    else if (this.pos >= this.maxBytes) this.limitReached();
  }

  private limitReached(): void {
    // The limit inside the prompt's tensor fields: the routing fields before them still count. A
    // prompt not met so far may lie in the bytes past the limit.
    const inTensor = this.routing && this.field >= this.firstTensorField;
    if (this.promptSpec !== undefined) this.prompt ??= { kind: "missing", reason: "too_large" };
    this.finish(this.tensorSeen && (!this.routing || inTensor) ? this.done() : TOO_LARGE);
  }

  private finish(outcome: PeekOutcome): void {
    this.outcome = outcome;
    this.scratch = undefined;
  }

  private done(): PeekOutcome {
    const result: PeekResult = { model: this.model, version: this.version, sequence: this.sequence() };
    if (this.promptSpec === undefined) return { kind: "done", result };
    return {
      kind: "done",
      result: { ...result, prompt: this.prompt ?? { kind: "missing", reason: "not_found" } },
    };
  }

  /**
   * Whether a top-level LEN field is collected for the prompt: every `inputs` entry (5) until the
   * prompt is found (they are small unless they carry the prompt in `contents`), and the one
   * `raw_input_contents` entry (7) at the prompt input's position. Counts the field's occurrence.
   */
  private promptField(field: number): boolean {
    if (this.promptSpec === undefined || this.prompt !== undefined) return false;
    if (field === 5) return true;
    if (field !== 7) return false;
    return this.rawSeen++ === this.promptIndex;
  }

  /** One `inputs` entry (InferInputTensor: name=1, contents=5); false when malformed. */
  private readInput(b: Buffer, start: number, end: number): boolean {
    const position = this.inputsSeen++;
    let isPrompt = false;
    let contentsStart = -1;
    let contentsEnd = -1;
    let p = start;
    while (p < end) {
      p = this.readTag(b, p, end);
      if (p < 0) return false;
      const field = this.lo >>> 3;
      if ((field === 1 || field === 5) && (this.lo & 7) === LEN) {
        p = this.readLength(b, p, end);
        if (p < 0) return false;
        if (field === 1) isPrompt = sameBytes(b, p, p + this.lo, this.promptName as Buffer);
        else {
          contentsStart = p;
          contentsEnd = p + this.lo;
        }
        p += this.lo;
      } else {
        p = this.skip(b, p, end, this.lo & 7);
        if (p < 0) return false;
      }
    }
    if (!isPrompt || this.promptIndex >= 0) return true;
    this.promptIndex = position;
    return contentsStart < 0 || this.readContentsPrompt(b, contentsStart, contentsEnd);
  }

  /** InferTensorContents: the first `bytes_contents` (8) element is the prompt; false when malformed. */
  private readContentsPrompt(b: Buffer, start: number, end: number): boolean {
    let p = start;
    while (p < end) {
      p = this.readTag(b, p, end);
      if (p < 0) return false;
      if (this.lo >>> 3 === 8 && (this.lo & 7) === LEN) {
        p = this.readLength(b, p, end);
        if (p < 0) return false;
        this.hashPrompt(b, p, p + this.lo);
        return true;
      }
      p = this.skip(b, p, end, this.lo & 7);
      if (p < 0) return false;
    }
    return true;
  }

  /** The prompt input's `raw_input_contents`: its first element, after a 4-byte little-endian length. */
  private readRawPrompt(b: Buffer, start: number, end: number): void {
    if (end - start < 4) return;
    const length = b.readUInt32LE(start);
    this.hashPrompt(b, start + 4, Math.min(end, start + 4 + length));
  }

  private hashPrompt(b: Buffer, start: number, end: number): void {
    const spec = this.promptSpec as PromptSpec;
    const hasher = new PrefixBlockHasher(spec.blockBytes, spec.maxBlocks);
    hasher.push(b, start, end);
    this.prompt =
      hasher.hashes.length > 0
        ? { kind: "found", hashes: hasher.hashes }
        : { kind: "missing", reason: "short" };
  }

  private sequence(): PeekResult["sequence"] {
    const key = this.sequenceKey;
    return key === undefined ? undefined : { key, start: this.sequenceStart, end: this.sequenceEnd };
  }

  /** One `parameters` map entry (key=1, value=2); false when malformed. A later entry's key wins. */
  private readEntry(b: Buffer, start: number, end: number): boolean {
    let keyStart = start;
    let keyEnd = start;
    this.paramChoice = 0;
    let p = start;
    while (p < end) {
      p = this.readTag(b, p, end);
      if (p < 0) return false;
      const field = this.lo >>> 3;
      if (field === 2 && (this.lo & 7) === LEN) {
        p = this.readLength(b, p, end);
        if (p < 0) return false;
        const valueEnd = p + this.lo;
        // A repeated value field merges into the one before, as protobuf merges embedded messages.
        if (!this.readParameter(b, p, valueEnd)) return false;
        p = valueEnd;
      } else if (field === 1 && (this.lo & 7) === LEN) {
        p = this.readLength(b, p, end);
        if (p < 0) return false;
        keyStart = p;
        keyEnd = p += this.lo;
      } else {
        p = this.skip(b, p, end, this.lo & 7);
        if (p < 0) return false;
      }
    }
    if (sameBytes(b, keyStart, keyEnd, SEQUENCE_ID)) return this.recordSequenceId(b);
    const isBool = this.paramChoice === 1 && (this.paramLo | this.paramHi) !== 0;
    if (sameBytes(b, keyStart, keyEnd, SEQUENCE_START)) this.sequenceStart = isBool;
    else if (sameBytes(b, keyStart, keyEnd, SEQUENCE_END)) this.sequenceEnd = isBool;
    return true;
  }

  /** InferParameter's oneof: bool=1, int64=2, string=3, double=4, uint64=5; the last member set wins. */
  private readParameter(b: Buffer, start: number, end: number): boolean {
    let p = start;
    while (p < end) {
      p = this.readTag(b, p, end);
      if (p < 0) return false;
      const field = this.lo >>> 3;
      const wire = this.lo & 7;
      if ((field === 1 || field === 2 || field === 5) && wire === VARINT) {
        p = this.readVarint(b, p, end);
        if (p < 0) return false;
        this.paramChoice = field;
        this.paramLo = this.lo;
        this.paramHi = this.hi;
      } else if (field === 3 && wire === LEN) {
        p = this.readLength(b, p, end);
        if (p < 0) return false;
        this.paramChoice = 3;
        this.paramTextStart = p;
        this.paramTextEnd = p += this.lo;
      } else {
        p = this.skip(b, p, end, wire);
        if (p < 0) return false;
        if (field === 4 && wire === FIXED64) this.paramChoice = 4;
      }
    }
    return true;
  }

  /** Only ints and strings are sequence ids to Triton; 0 and "" mean "not part of a sequence". */
  private recordSequenceId(b: Buffer): boolean {
    const choice = this.paramChoice;
    this.sequenceKey = undefined;
    if ((choice === 2 || choice === 5) && (this.paramLo | this.paramHi) !== 0) {
      this.sequenceKey = "i:" + decimal(this.paramLo, this.paramHi, choice === 2);
    } else if (choice === 3 && this.paramTextEnd > this.paramTextStart) {
      const text = b.subarray(this.paramTextStart, this.paramTextEnd);
      if (!isUtf8(text)) return false;
      this.sequenceKey = "s:" + text.toString("utf8");
    }
    return true;
  }

  /** Reads a tag into `lo`; -1 when truncated or not a valid tag. */
  private readTag(b: Buffer, p: number, end: number): number {
    p = this.readVarint(b, p, end);
    return p < 0 || this.hi !== 0 || this.lo < 8 ? -1 : p;
  }

  /** Reads a length into `lo`; -1 unless its payload fits before `end`. */
  private readLength(b: Buffer, p: number, end: number): number {
    p = this.readVarint(b, p, end);
    return p < 0 || this.hi !== 0 || this.lo > end - p ? -1 : p;
  }

  /** Skips a field's payload by wire type; -1 when truncated or a group (or an invalid wire type). */
  private skip(b: Buffer, p: number, end: number, wire: number): number {
    switch (wire) {
      case VARINT:
        return this.readVarint(b, p, end);
      case FIXED64:
        return p + 8 <= end ? p + 8 : -1;
      case LEN:
        p = this.readLength(b, p, end);
        return p < 0 ? -1 : p + this.lo;
      case FIXED32:
        return p + 4 <= end ? p + 4 : -1;
      default:
        return -1;
    }
  }

  /**
   * Reads a varint of up to 64 bits into `lo` / `hi` (unsigned halves), so int64 values stay exact.
   * Bits past the 64th are dropped, as protobuf runtimes do; -1 when truncated or longer than 10 bytes.
   */
  private readVarint(b: Buffer, p: number, end: number): number {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (p >= end) return -1;
      const byte = b[p++]!;
      const bits = byte & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= bits << 28;
        hi = bits >>> 4;
      } else hi |= bits << (7 * i - 32);
      if ((byte & 0x80) === 0) {
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return p;
      }
    }
    return -1;
  }
}

function sameBytes(b: Buffer, start: number, end: number, expected: Buffer): boolean {
  if (end - start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (b[start + i] !== expected[i]) return false;
  return true;
}

/** The decimal of a 64-bit value given as unsigned 32-bit halves; BigInt only past 2^53. */
function decimal(lo: number, hi: number, signed: boolean): string {
  if (signed && hi >= 0x80000000) {
    // Two's complement: the magnitude is the negation of the 64-bit value.
    const negLo = (~lo + 1) >>> 0;
    const negHi = (~hi + (negLo === 0 ? 1 : 0)) >>> 0;
    return "-" + unsignedDecimal(negLo, negHi);
  }
  return unsignedDecimal(lo, hi);
}

function unsignedDecimal(lo: number, hi: number): string {
  if (hi < 0x200000) return String(hi * 0x100000000 + lo);
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}
