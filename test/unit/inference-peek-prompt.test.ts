/**
 * The prompt of a Triton `ModelInferRequest` for prefix affinity (src/grpc/inference-peek.ts with a
 * PromptSpec), against messages protobufjs encodes from the repository's protos: found in
 * `raw_input_contents` (4-byte little-endian length, then the bytes) at the input's position and in
 * the input's `contents.bytes_contents`, giving the same block hashes either way and for every split
 * of the bytes; missing as not_found, short or too_large; routing fields still read.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import protobuf from "protobufjs";
import { PrefixBlockHasher } from "../../src/balancer/prefix-blocks.js";
import { RequestPeeker, type PeekOutcome, type PromptSpec } from "../../src/grpc/inference-peek.js";
import { repoRoot } from "../helpers/repo-root.js";
import { bytesElement } from "../../src/sim/sim-llm-worker.js";

const root = new protobuf.Root();
root.loadSync(join(repoRoot(), "protos", "triton", "grpc_service.proto"), { keepCase: true });
const ModelInferRequest = root.lookupType("inference.ModelInferRequest");

const SPEC: PromptSpec = { input: "text_input", blockBytes: 16, maxBlocks: 64 };

function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = 0;
  out.writeUInt32BE(body.length, 1);
  out.set(body, 5);
  return out;
}

const input = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name,
  datatype: "BYTES",
  shape: [1, 1],
  ...extra,
});

function rawRequest(prompt: Buffer, before: Buffer = Buffer.alloc(0)): Buffer {
  return frame(
    ModelInferRequest.encode({
      model_name: "llm",
      id: "r1",
      inputs: [input("image"), input("text_input"), input("max_tokens")],
      raw_input_contents: [before, bytesElement(prompt), bytesElement(Buffer.from("16"))],
    }).finish(),
  );
}

function contentsRequest(prompt: Buffer): Buffer {
  return frame(
    ModelInferRequest.encode({
      model_name: "llm",
      inputs: [input("text_input", { contents: { bytes_contents: [prompt] } })],
    }).finish(),
  );
}

function peek(bytes: Buffer, chunk = bytes.length, max = 64 * 1024): PeekOutcome {
  const peeker = new RequestPeeker("triton_infer", max, SPEC);
  let outcome: PeekOutcome = { kind: "need_more" };
  for (let at = 0; at < bytes.length && outcome.kind === "need_more"; at += chunk)
    outcome = peeker.push(bytes.subarray(at, at + chunk));
  return outcome.kind === "need_more" ? peeker.end() : outcome;
}

function expected(prompt: Buffer): number[] {
  const h = new PrefixBlockHasher(SPEC.blockBytes, SPEC.maxBlocks);
  h.push(prompt, 0, prompt.length);
  return h.hashes;
}

const PROMPT = Buffer.from("You are a helpful assistant. ".repeat(8) + "User: hello there");

describe("inference peek: the prompt for prefix affinity", { timeout: 10_000 }, () => {
  it("found in raw_input_contents at the input's position, in any split of the bytes", () => {
    const bytes = rawRequest(PROMPT, Buffer.from("image bytes that are not the prompt"));
    const want = expected(PROMPT);
    assert.ok(want.length >= 10);
    for (const chunk of [bytes.length, 1, 3, 7, 64, 100]) {
      const outcome = peek(bytes, chunk);
      assert.equal(outcome.kind, "done", `chunk ${chunk}`);
      if (outcome.kind !== "done") continue;
      assert.equal(outcome.result.model, "llm");
      assert.deepEqual(outcome.result.prompt, { kind: "found", hashes: want }, `chunk ${chunk}`);
    }
  });

  it("found in the input's contents.bytes_contents, with the same hashes as the raw encoding", () => {
    const outcome = peek(contentsRequest(PROMPT), 5);
    assert.equal(outcome.kind, "done");
    if (outcome.kind === "done")
      assert.deepEqual(outcome.result.prompt, { kind: "found", hashes: expected(PROMPT) });
  });

  it("past a 20 KiB input before it (more than one DATA frame's worth) within peek_max_bytes", () => {
    const outcome = peek(rawRequest(PROMPT, Buffer.alloc(20 * 1024, 7)), 16 * 1024);
    assert.equal(outcome.kind, "done");
    if (outcome.kind === "done")
      assert.deepEqual(outcome.result.prompt, { kind: "found", hashes: expected(PROMPT) });
  });

  it("missing: no such input (not_found), shorter than a block (short), past peek_max_bytes (too_large)", () => {
    const none = frame(
      ModelInferRequest.encode({
        model_name: "llm",
        inputs: [input("other")],
        raw_input_contents: [bytesElement(PROMPT)],
      }).finish(),
    );
    const cases: Array<[Buffer, number, string]> = [
      [none, 64 * 1024, "not_found"],
      [rawRequest(Buffer.from("hi")), 64 * 1024, "short"],
      [rawRequest(PROMPT, Buffer.alloc(4096, 1)), 1024, "too_large"],
    ];
    for (const [bytes, max, reason] of cases) {
      const outcome = peek(bytes, bytes.length, max);
      assert.equal(outcome.kind, "done", reason);
      if (outcome.kind === "done") {
        assert.equal(outcome.result.model, "llm", reason);
        assert.deepEqual(outcome.result.prompt, { kind: "missing", reason }, reason);
      }
    }
  });

  it("without a PromptSpec nothing changes: no prompt field in the result", () => {
    const peeker = new RequestPeeker("triton_infer", 64 * 1024);
    const outcome = peeker.push(rawRequest(PROMPT));
    assert.equal(outcome.kind, "done");
    if (outcome.kind === "done") assert.equal("prompt" in outcome.result, false);
  });
});
