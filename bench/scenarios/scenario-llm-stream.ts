/**
 * The `llm` scenario's single-stream part: one client keeps one `ModelStreamInfer` stream open and
 * 32 requests outstanding on it (closed loop: a request's final token sends the next), for the same
 * four simulated LLM servers. Through Fulcrum with `stream_balancing: per_stream` the whole stream
 * sits on one server (4 requests generating at once); with `per_request` each request is picked on
 * its own (least_connections) and the stream uses the fleet. Reported: completed requests and
 * output tokens per second, and requests per worker.
 */
import * as grpc from "@grpc/grpc-js";
import { tritonService } from "../../src/protos/inference-protos.js";
import { bytesElement } from "../../src/sim/sim-llm-worker.js";
import type { WorkerPool } from "../worker/worker-pool.js";
import type { WorkerCounters } from "../worker/worker-main.js";

/** Requests outstanding on the one stream: twice the fleet's generating slots. */
export const STREAM_WINDOW = 32;
/** Output tokens per request of the single stream. */
export const STREAM_TOKENS = 16;

export interface StreamVariant {
  readonly name: string;
  readonly perRequest: boolean;
}

export const STREAM_VARIANTS: readonly StreamVariant[] = [
  { name: "one stream, per_stream", perRequest: false },
  { name: "one stream, per_request", perRequest: true },
];

export interface LlmStreamPoint {
  readonly variant: string;
  readonly rep: number;
  readonly completed: number;
  readonly failed: number;
  readonly requestsPerSecond: number;
  readonly tokensPerSecond: number;
  readonly perWorker: readonly number[];
}

interface Answer {
  infer_response?: { id?: string; parameters?: Record<string, { bool_param?: boolean }> } | null;
  error_message?: string;
}

export async function measureOneStream(
  v: StreamVariant,
  rep: number,
  pool: WorkerPool,
  address: string,
  seconds: number,
): Promise<LlmStreamPoint> {
  const Client = tritonService();
  const client = new Client(address, grpc.credentials.createInsecure());
  const before = await pool.counters();
  const stream = (
    client as unknown as { ModelStreamInfer: () => grpc.ClientDuplexStream<unknown, Answer> }
  ).ModelStreamInfer();
  let sent = 0;
  let completed = 0;
  let failed = 0;
  let tokens = 0;
  const started = performance.now();
  const stopAt = started + seconds * 1000;
  let stopped = false;
  const send = (): void => {
    const id = `q${sent++}`;
    stream.write({
      model_name: "llm",
      id,
      inputs: [{ name: "text_input", datatype: "BYTES", shape: [1, 1] }],
      raw_input_contents: [bytesElement(`request ${id} of run ${rep}: `.repeat(8))],
      parameters: { max_tokens: { int64_param: String(STREAM_TOKENS) } },
    });
  };
  const ended = new Promise<void>((resolve) => {
    stream.on("data", (a: Answer) => {
      if (a.error_message) failed++;
      else tokens++;
      const final = a.error_message !== undefined && a.error_message !== "";
      if (!final && !a.infer_response?.parameters?.["triton_final_response"]?.bool_param) return;
      if (!a.error_message) completed++;
      if (performance.now() < stopAt) send();
      else if (!stopped) {
        stopped = true;
        stream.end();
      }
    });
    stream.on("error", () => resolve());
    stream.on("end", () => resolve());
  });
  for (let i = 0; i < STREAM_WINDOW; i++) send();
  await ended;
  const elapsed = (performance.now() - started) / 1000;
  client.close();
  const after = await pool.counters();
  const delta = (k: keyof WorkerCounters, i: number): number =>
    Number(after[i]?.[k] ?? 0) - Number(before[i]?.[k] ?? 0);
  return {
    variant: v.name,
    rep,
    completed,
    failed,
    requestsPerSecond: completed / elapsed,
    tokensPerSecond: tokens / elapsed,
    perWorker: after.map((_, i) => delta("requests", i)),
  };
}
