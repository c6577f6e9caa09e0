/**
 * A simulated LLM server behind Triton's gRPC API (TensorRT-LLM or vLLM backend), for the bench and
 * the tests of prefix affinity and load signals: `ModelInfer` (the whole generation in one response)
 * and decoupled `ModelStreamInfer` (one response per output token, the last flagged with the
 * `triton_final_response` parameter), plus grpc.health.v1 `Check` and a Prometheus endpoint.
 *
 * The costs that make routing matter on a real fleet:
 * - **Prefill**: `prefillMsPerBlock` for every block of the prompt (the first element of the BYTES
 *   input `input`, from raw_input_contents or contents.bytes_contents) that is not in the worker's own
 *   prefix cache: an LRU of `cacheBlocks` chained block hashes (the same hashing as Fulcrum's
 *   prefix-blocks.ts, with this worker's `blockBytes`). Hits and misses are counted in blocks. A
 *   request that generated all its tokens leaves its prompt followed by its output (the token texts
 *   as streamed, concatenated: `t0t1t2…`) in the cache, as vLLM's and SGLang's prefix caches keep a
 *   finished sequence's KV, so a next turn that appends the answer to its history hits it too.
 * - **Decode**: `decodeMsPerToken` per output token; a request's `max_tokens` parameter (int64) sets
 *   how many, else `outputTokens`.
 * - **KV capacity**: at most `maxSequences` requests generate at once; the rest wait in arrival order.
 *
 * Metrics, as Triton with TensorRT-LLM exports them: `nv_inference_pending_request_count{model}` and
 * `nv_trt_llm_request_metrics{request_type="waiting"}` (requests waiting for a KV slot),
 * `nv_trt_llm_request_metrics{request_type="scheduled"}` (generating), and
 * `nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction"}` (generating ÷ maxSequences).
 * A cancelled stream stops generating at its next token and frees its slot.
 */
import * as grpc from "@grpc/grpc-js";
import { PrefixBlockHasher } from "../balancer/prefix-blocks.js";
import { BlockLru } from "../balancer/prefix-index.js";
import { healthService } from "../protos/health-proto.js";
import { tritonService } from "../protos/inference-protos.js";
import { bindSimServer, shutdownSimServer } from "./sim-grpc-server.js";
import { SimMetricsEndpoint } from "./sim-metrics-endpoint.js";
import { PENDING_METRIC, type InferParameter } from "./sim-triton-worker.js";

export interface SimLlmWorkerOptions {
  readonly name: string;
  /** The model served (default "llm"); others answer NOT_FOUND. */
  readonly model?: string | undefined;
  /** The BYTES input holding the prompt (default "text_input"). */
  readonly input?: string | undefined;
  readonly blockBytes?: number | undefined;
  /** Prefix cache capacity, in blocks (default 4096). */
  readonly cacheBlocks?: number | undefined;
  /** Prefill time per prompt block not in the cache (default 1 ms). */
  readonly prefillMsPerBlock?: number | undefined;
  /** Time per output token (default 5 ms). */
  readonly decodeMsPerToken?: number | undefined;
  /** Output tokens of a request without `max_tokens` (default 16). */
  readonly outputTokens?: number | undefined;
  /** Requests generating at once (default 8). */
  readonly maxSequences?: number | undefined;
  readonly serverOptions?: grpc.ServerOptions | undefined;
}

/** What proto-loader decodes of a `ModelInferRequest` (keepCase, bytes as Buffers, longs as strings). */
export interface LlmInferRequest {
  model_name: string;
  id: string;
  parameters: Record<string, InferParameter>;
  inputs: Array<{ name: string; contents?: { bytes_contents?: Buffer[] } | null }>;
  raw_input_contents: Buffer[];
}

interface Job {
  /** The prompt's bytes (undefined when the request has none) and its block hashes. */
  readonly prompt: Buffer | undefined;
  readonly hashes: readonly number[];
  readonly tokens: number;
  /** Called per token; false stops the generation (the client went away). */
  readonly onToken: (index: number, final: boolean) => boolean;
}

/**
 * One BYTES tensor element as Triton's raw_input_contents / raw_output_contents carry it: a 4-byte
 * little-endian length, then the bytes (what clients of the simulated workers send, too).
 */
export function bytesElement(value: string | Buffer): Buffer {
  const bytes = typeof value === "string" ? Buffer.from(value) : value;
  const out = Buffer.allocUnsafe(4 + bytes.length);
  out.writeUInt32LE(bytes.length, 0);
  bytes.copy(out, 4);
  return out;
}

export class SimLlmWorker {
  readonly server: grpc.Server;
  /** Requests received, and requests that finished generating (all their tokens sent). */
  requests = 0;
  completed = 0;
  tokens = 0;
  /** Prompt blocks found in the prefix cache, and blocks that had to be prefilled. */
  cacheHitBlocks = 0;
  cacheMissBlocks = 0;
  /** Most requests generating at once. */
  maxRunning = 0;
  private running = 0;
  private readonly waiting: Job[] = [];
  private readonly cache: BlockLru;
  private metrics: SimMetricsEndpoint | undefined;
  private boundPort = 0;
  private readonly model: string;
  private readonly maxSequences: number;

  constructor(readonly options: SimLlmWorkerOptions) {
    this.model = options.model ?? "llm";
    this.maxSequences = Math.max(1, options.maxSequences ?? 8);
    this.cache = new BlockLru(options.cacheBlocks ?? 4096);
    this.server = new grpc.Server(options.serverOptions);
    this.server.addService(tritonService().service, {
      ServerLive: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { live: true }),
      ServerReady: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { ready: true }),
      ModelReady: (c: grpc.ServerUnaryCall<{ name: string }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        cb(null, { ready: c.request.name === this.model }),
      ModelInfer: (call: grpc.ServerUnaryCall<LlmInferRequest, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        this.unary(call, cb),
      ModelStreamInfer: (call: grpc.ServerDuplexStream<LlmInferRequest, unknown>) => this.stream(call),
    });
    this.server.addService(healthService().service, {
      Check: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: "SERVING" }),
    });
  }

  get name(): string {
    return this.options.name;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Requests generating now, and waiting for a KV slot. */
  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Hit blocks ÷ all prompt blocks seen (0 before any). */
  get cacheHitRate(): number {
    const all = this.cacheHitBlocks + this.cacheMissBlocks;
    return all === 0 ? 0 : this.cacheHitBlocks / all;
  }

  async listen(host = "127.0.0.1", port = 0): Promise<{ port: number; address: string }> {
    const bound = await bindSimServer(this.server, host, port);
    this.boundPort = bound.port;
    return bound;
  }

  /** Serves the metrics above at `http://host:port/metrics`. */
  listenMetrics(host = "127.0.0.1", port = 0): Promise<{ port: number; address: string }> {
    this.metrics ??= new SimMetricsEndpoint(() => this.metricsText());
    return this.metrics.listen(host, port);
  }

  async close(): Promise<void> {
    await Promise.all([shutdownSimServer(this.server), this.metrics?.close()]);
    this.waiting.length = 0;
  }

  metricsText(): string {
    const m = `model="${this.model}",version="1"`;
    return [
      `# TYPE ${PENDING_METRIC} gauge`,
      `${PENDING_METRIC}{${m}} ${this.waiting.length}`,
      "# TYPE nv_trt_llm_request_metrics gauge",
      `nv_trt_llm_request_metrics{${m},request_type="waiting"} ${this.waiting.length}`,
      `nv_trt_llm_request_metrics{${m},request_type="scheduled"} ${this.running}`,
      "# TYPE nv_trt_llm_kv_cache_block_metrics gauge",
      `nv_trt_llm_kv_cache_block_metrics{${m},kv_cache_block_type="fraction"} ${this.running / this.maxSequences}`,
      "",
    ].join("\n");
  }

  private unary(call: grpc.ServerUnaryCall<LlmInferRequest, unknown>, cb: grpc.sendUnaryData<unknown>): void {
    const request = call.request;
    const refusal = this.refusal(request);
    if (refusal) return cb(refusal);
    const words: string[] = [];
    this.submit(request, (i, final) => {
      if (call.cancelled) return false;
      words.push(`t${i}`);
      if (final) cb(null, this.response(request, words.join(" "), true));
      return true;
    });
  }

  private stream(call: grpc.ServerDuplexStream<LlmInferRequest, unknown>): void {
    let open = 0;
    let ended = false;
    const maybeEnd = (): void => {
      if (ended && open === 0 && !call.cancelled) call.end();
    };
    call.on("data", (request: LlmInferRequest) => {
      const refusal = this.refusal(request);
      if (refusal) {
        call.write({ error_message: refusal.details });
        return;
      }
      open++;
      this.submit(request, (i, final) => {
        if (call.cancelled) return false;
        call.write({ infer_response: this.response(request, `t${i}`, final) });
        if (final) {
          open--;
          maybeEnd();
        }
        return true;
      });
    });
    call.on("end", () => {
      ended = true;
      maybeEnd();
    });
    call.on("error", () => undefined);
  }

  private refusal(request: LlmInferRequest): grpc.ServiceError | undefined {
    this.requests++;
    if (request.model_name === this.model) return undefined;
    const details = `Request for unknown model: '${request.model_name}' is not found`;
    return Object.assign(new Error(details), {
      code: grpc.status.NOT_FOUND,
      details,
      metadata: new grpc.Metadata(),
    });
  }

  private response(request: LlmInferRequest, text: string, final: boolean): Record<string, unknown> {
    return {
      model_name: this.model,
      model_version: "1",
      id: request.id,
      parameters: {
        worker: { string_param: this.options.name },
        triton_final_response: { bool_param: final },
      },
      outputs: [{ name: "text_output", datatype: "BYTES", shape: [1, 1] }],
      raw_output_contents: [bytesElement(text)],
    };
  }

  /** Queues the request's generation; `onToken` is called per token (in order). */
  private submit(request: LlmInferRequest, onToken: Job["onToken"]): void {
    const maxTokens = Number(request.parameters["max_tokens"]?.int64_param ?? NaN);
    const tokens =
      Number.isInteger(maxTokens) && maxTokens > 0 ? maxTokens : (this.options.outputTokens ?? 16);
    const prompt = this.promptOf(request);
    const job: Job = {
      prompt,
      hashes: prompt === undefined ? [] : this.hashesOf(prompt, 0),
      tokens,
      onToken,
    };
    if (this.running < this.maxSequences) this.run(job);
    else this.waiting.push(job);
  }

  private promptOf(request: LlmInferRequest): Buffer | undefined {
    const name = this.options.input ?? "text_input";
    const at = request.inputs.findIndex((i) => i.name === name);
    if (at < 0) return undefined;
    const prompt = request.inputs[at]?.contents?.bytes_contents?.[0];
    const raw = request.raw_input_contents[at];
    if (prompt === undefined && raw !== undefined && raw.length >= 4)
      return raw.subarray(4, 4 + Math.min(raw.readUInt32LE(0), raw.length - 4));
    return prompt;
  }

  /** Block hashes of `prompt`, followed by the texts of its first `tokens` output tokens. */
  private hashesOf(prompt: Buffer, tokens: number): readonly number[] {
    const hasher = new PrefixBlockHasher(this.options.blockBytes ?? 64, Number.MAX_SAFE_INTEGER);
    hasher.push(prompt, 0, prompt.length);
    for (let i = 0; i < tokens; i++) {
      const text = Buffer.from(`t${i}`);
      hasher.push(text, 0, text.length);
    }
    return hasher.hashes;
  }

  private run(job: Job): void {
    this.running++;
    if (this.running > this.maxRunning) this.maxRunning = this.running;
    const hit = this.cache.matchLength(job.hashes);
    this.cacheHitBlocks += hit;
    this.cacheMissBlocks += job.hashes.length - hit;
    this.cache.record(job.hashes);
    const prefillMs = (job.hashes.length - hit) * (this.options.prefillMsPerBlock ?? 1);
    const decodeMs = this.options.decodeMsPerToken ?? 5;
    let index = 0;
    const step = (): void => {
      const final = index === job.tokens - 1;
      this.tokens++;
      const goOn = job.onToken(index++, final);
      if (!goOn || final) {
        if (final && goOn) {
          this.completed++;
          if (job.prompt !== undefined) this.cache.record(this.hashesOf(job.prompt, job.tokens));
        }
        return this.finish();
      }
      setTimeout(step, decodeMs);
    };
    setTimeout(step, prefillMs + decodeMs);
  }

  private finish(): void {
    this.running--;
    const next = this.waiting.shift();
    if (next) this.run(next);
  }
}
