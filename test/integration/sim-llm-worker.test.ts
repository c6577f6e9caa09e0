/**
 * The simulated LLM worker (src/sim/sim-llm-worker.ts) with grpc-js Triton clients, directly: a
 * decoupled ModelStreamInfer request gets one response per token, the last flagged
 * `triton_final_response`; the same prompt again is served from the worker's prefix cache (counted in
 * blocks) and a prompt sharing its first blocks hits those; ModelInfer returns the whole generation;
 * the KV capacity bounds requests generating at once and the metrics report waiting, scheduled and the
 * KV fraction; a cancelled stream frees its slot.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { tritonService } from "../../src/protos/inference-protos.js";
import { SimLlmWorker, bytesElement } from "../../src/sim/sim-llm-worker.js";
import { sumPromSeries } from "../../src/health/load-metrics-scraper.js";
import { Teardown } from "../helpers/grpc-client.js";
import { call, type UnaryClient } from "../helpers/inference-client.js";
import { waitFor } from "../helpers/harness.js";

function request(prompt: string, maxTokens: number): Record<string, unknown> {
  return {
    model_name: "llm",
    id: "r",
    inputs: [{ name: "text_input", datatype: "BYTES", shape: [1, 1] }],
    raw_input_contents: [bytesElement(prompt)],
    parameters: { max_tokens: { int64_param: String(maxTokens) } },
  };
}

interface StreamedResponse {
  infer_response?: { parameters?: Record<string, { bool_param?: boolean }> } | null;
  error_message?: string;
}

/** One ModelStreamInfer request; resolves with its responses once the stream ends. */
function streamOne(client: grpc.Client, req: Record<string, unknown>): Promise<StreamedResponse[]> {
  return new Promise((resolve, reject) => {
    const stream = (
      client as unknown as { ModelStreamInfer: () => grpc.ClientDuplexStream<unknown, StreamedResponse> }
    ).ModelStreamInfer();
    const got: StreamedResponse[] = [];
    stream.on("data", (r: StreamedResponse) => got.push(r));
    stream.on("error", reject);
    stream.on("end", () => resolve(got));
    stream.write(req);
    stream.end();
  });
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return res.text();
}

const SYSTEM = "You are a careful assistant. ".repeat(10); // 280 bytes: 4 blocks of 64

describe("sim LLM worker", { timeout: 30_000 }, () => {
  it("streams one response per token, the last final; the prefix cache counts hits in blocks", async () => {
    const own = new Teardown();
    try {
      const w = own.add(new SimLlmWorker({ name: "g0", decodeMsPerToken: 1, prefillMsPerBlock: 1 }), (x) =>
        x.close(),
      );
      const { port } = await w.listen("127.0.0.1", 0);
      const Ctor = tritonService();
      const client = own.add(new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()), (c) =>
        c.close(),
      );
      const first = await streamOne(client, request(SYSTEM + "User: hi", 5));
      assert.equal(first.length, 5);
      const finals = first.map((r) => r.infer_response?.parameters?.["triton_final_response"]?.bool_param);
      assert.deepEqual(finals, [false, false, false, false, true]);
      assert.deepEqual([w.cacheHitBlocks, w.cacheMissBlocks], [0, 4]);
      await streamOne(client, request(SYSTEM + "User: hi", 2));
      assert.deepEqual([w.cacheHitBlocks, w.cacheMissBlocks], [4, 4]);
      // Another question after the same system prompt: its first blocks hit, the rest miss.
      await streamOne(
        client,
        request(SYSTEM + "User: a rather different question, long enough to fill blocks", 2),
      );
      assert.equal(w.cacheHitBlocks, 4 + 4);
      assert.ok(w.cacheMissBlocks > 4);
      // Unary: the whole generation at once.
      const r = await call(client as unknown as UnaryClient, "ModelInfer", request("short", 3));
      assert.ok(r.ok);
      if (r.ok) {
        const raw = (r.res["raw_output_contents"] as Buffer[])[0] as Buffer;
        assert.equal(raw.subarray(4).toString(), "t0 t1 t2");
      }
      assert.equal(w.completed, 4);
      assert.equal(w.tokens, 5 + 2 + 2 + 3);
    } finally {
      await own.run();
    }
  });

  it("KV capacity: 2 generate at once, the rest wait; metrics say so; a cancelled stream frees its slot", async () => {
    const own = new Teardown();
    try {
      const w = own.add(new SimLlmWorker({ name: "g0", maxSequences: 2, decodeMsPerToken: 20 }), (x) =>
        x.close(),
      );
      const { port } = await w.listen("127.0.0.1", 0);
      const metricsPort = (await w.listenMetrics("127.0.0.1", 0)).port;
      const Ctor = tritonService();
      const client = own.add(new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()), (c) =>
        c.close(),
      );
      const stream = (
        client as unknown as { ModelStreamInfer: () => grpc.ClientDuplexStream<unknown, StreamedResponse> }
      ).ModelStreamInfer();
      stream.on("error", () => undefined);
      stream.write(request("a long generation that will be cancelled", 1000));
      await waitFor(() => w.active === 1, 5000, "the streamed request generating");
      const calls = Array.from({ length: 3 }, () =>
        call(client as unknown as UnaryClient, "ModelInfer", request("x", 10)),
      );
      await waitFor(() => w.active === 2 && w.queued === 2, 5000, "2 generating, 2 waiting");
      const text = await scrape(metricsPort);
      const gauge = (name: string, labels: Record<string, string>) =>
        sumPromSeries(text, [{ name, weight: 1, labels }]);
      assert.equal(gauge("nv_trt_llm_request_metrics", { request_type: "waiting" }), 2);
      assert.equal(gauge("nv_trt_llm_request_metrics", { request_type: "scheduled" }), 2);
      assert.equal(gauge("nv_trt_llm_kv_cache_block_metrics", { kv_cache_block_type: "fraction" }), 1);
      assert.equal(gauge("nv_inference_pending_request_count", { model: "llm" }), 2);
      stream.cancel();
      const outcomes = await Promise.all(calls);
      assert.ok(outcomes.every((o) => o.ok));
      assert.equal(w.maxRunning, 2);
      assert.equal(w.completed, 3);
      await waitFor(() => w.active === 0, 5000, "every slot free");
    } finally {
      await own.run();
    }
  });
});
