/**
 * A simulated Triton Inference Server on grpc-js, for the bench and the tests of inference awareness:
 * `inference.GRPCInferenceService` (protos/triton/grpc_service.proto, Triton's field numbers) with
 * `ServerLive`, `ServerReady`, `ModelReady`, `ModelInfer` and `ModelStreamInfer`, plus grpc.health.v1
 * `Check` answered as Triton does (service name ignored; SERVING iff ready), and, on request, a
 * Prometheus `/metrics` endpoint with Triton's queue gauge `nv_inference_pending_request_count`.
 *
 * - Readiness: the server (`setReady`) and each model (`setModelReady`) separately, as when Triton is up
 *   with one model still loading. A model that is not ready answers `ModelReady` false and fails
 *   inference with UNAVAILABLE, as Triton does for a model without an available version.
 * - Service time (sim-service-queue.ts): `slots` inferences at once, `baseLatencyMs × speed` each, the
 *   rest queue in arrival order; the queue, per model, is what the gauge reports.
 * - Sequences (Triton's sequence batcher): a request carrying `sequence_id` must belong to a sequence
 *   this worker started (`sequence_start`), or it fails with INVALID_ARGUMENT and Triton's message, so a
 *   test sees a sequence that reached the wrong instance; `sequence_end` ends it.
 *
 * A response echoes the request's `raw_input_contents` as `raw_output_contents` and names the worker
 * in its `worker` parameter (and, like every unary answer here, in an `x-worker` header); requests per `sequence_id` are counted so tests can check that sequences
 * stick.
 */
import * as grpc from "@grpc/grpc-js";
import { healthService } from "../protos/health-proto.js";
import { tritonService } from "../protos/inference-protos.js";
import { bindSimServer, shutdownSimServer } from "./sim-grpc-server.js";
import { SimMetricsEndpoint } from "./sim-metrics-endpoint.js";
import { SimServiceQueue } from "./sim-service-queue.js";

export { tritonService };

export interface SimTritonWorkerOptions {
  readonly name: string;
  /** Models this worker serves (default `["simple"]`); others answer NOT_FOUND. */
  readonly models?: readonly string[] | undefined;
  /** Service time of one inference before `speed` (default 0). */
  readonly baseLatencyMs?: number | undefined;
  /** Inferences served at once; the rest queue (default Infinity). */
  readonly slots?: number | undefined;
  /** Multiplier on the service time: 3 is a worker three times as slow (default 1). */
  readonly speed?: number | undefined;
  readonly serverOptions?: grpc.ServerOptions | undefined;
}

/** The decoded fields of `InferParameter` (proto-loader with `oneofs: true`, longs as strings). */
export interface InferParameter {
  parameter_choice?: string;
  bool_param?: boolean;
  int64_param?: string;
  string_param?: string;
  double_param?: number;
  uint64_param?: string;
}

export interface ModelInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, InferParameter>;
  raw_input_contents: Buffer[];
}

export const TRITON_SERVICE = "inference.GRPCInferenceService";

/** Triton's queue gauge: requests waiting for execution, per model and version. */
export const PENDING_METRIC = "nv_inference_pending_request_count";

/** The value of a request's `sequence_id` parameter (int64, uint64 or string), if any. */
export function sequenceIdOf(request: ModelInferRequest): string | undefined {
  const p = request.parameters["sequence_id"];
  if (!p) return undefined;
  const v = p.int64_param ?? p.uint64_param ?? p.string_param;
  return v === undefined || v === "" || v === "0" ? undefined : String(v);
}

function flagOf(request: ModelInferRequest, name: string): boolean {
  return request.parameters[name]?.bool_param === true;
}

type Reply = (err: grpc.ServiceError | null, response?: unknown) => void;

export class SimTritonWorker {
  readonly server: grpc.Server;
  /** ModelInfer requests received (unary and streamed, failed ones included). */
  calls = 0;
  /** Requests per `sequence_id` seen. */
  readonly sequences = new Map<string, number>();
  /** Requests refused because their sequence was not started here (the wrong instance). */
  sequenceErrors = 0;
  healthChecks = 0;
  /** `ServerReady` and `ModelReady` calls answered (what Fulcrum's triton prober sends). */
  readyProbes = 0;
  modelReadyProbes = 0;
  private ready = true;
  private readonly notReadyModels = new Set<string>();
  private failure: { code: grpc.status; message: string } | undefined;
  private readonly service: SimServiceQueue;
  private readonly models: ReadonlySet<string>;
  /** Live sequences, by model and id. */
  private readonly liveSequences = new Set<string>();
  /** Extra pending requests reported per model, as if other clients had queued them. */
  private readonly externalPending = new Map<string, number>();
  /** Samples exported besides the pending gauge (`setExportedMetric`). */
  private readonly exported = new Map<string, number>();
  private metrics: SimMetricsEndpoint | undefined;
  private boundPort = 0;

  constructor(readonly options: SimTritonWorkerOptions) {
    this.models = new Set(options.models ?? ["simple"]);
    this.service = new SimServiceQueue(
      options.slots ?? Infinity,
      () => (options.baseLatencyMs ?? 0) * (options.speed ?? 1),
    );
    this.server = new grpc.Server(options.serverOptions);
    const unary =
      <Req>(answer: (request: Req) => unknown) =>
      (call: grpc.ServerUnaryCall<Req, unknown>, callback: grpc.sendUnaryData<unknown>): void => {
        call.sendMetadata(this.workerMetadata());
        callback(null, answer(call.request));
      };
    this.server.addService(tritonService().service, {
      ServerLive: unary(() => ({ live: true })),
      ServerReady: unary(() => {
        this.readyProbes++;
        return { ready: this.ready };
      }),
      ModelReady: unary((r: { name: string }) => {
        this.modelReadyProbes++;
        return { ready: this.ready && this.modelReady(r.name) };
      }),
      ModelInfer: (call: grpc.ServerUnaryCall<ModelInferRequest, unknown>, callback: Reply) =>
        this.infer(call.request, (err, response) => {
          if (!err) call.sendMetadata(this.workerMetadata());
          callback(err, response);
        }),
      ModelStreamInfer: (call: grpc.ServerDuplexStream<ModelInferRequest, unknown>) => {
        let pending = 0;
        let ended = false;
        call.on("data", (request: ModelInferRequest) => {
          pending++;
          this.infer(request, (err, response) => {
            pending--;
            if (!call.cancelled) {
              call.write(err ? { error_message: err.details } : { infer_response: response });
            }
            if (ended && pending === 0) call.end();
          });
        });
        call.on("end", () => {
          ended = true;
          if (pending === 0) call.end();
        });
      },
    });
    this.server.addService(healthService().service, {
      Check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
        this.healthChecks++;
        callback(null, { status: this.ready ? "SERVING" : "NOT_SERVING" });
      },
    });
  }

  get name(): string {
    return this.options.name;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Requests in service now (holding a slot), and the peak of it. */
  get active(): number {
    return this.service.active;
  }

  get maxActive(): number {
    return this.service.maxActive;
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.service.queued;
  }

  /** `GET /metrics` requests answered by the metrics endpoint. */
  get metricsScrapes(): number {
    return this.metrics?.scrapes ?? 0;
  }

  async listen(host = "127.0.0.1", port = 0): Promise<{ port: number; address: string }> {
    const bound = await bindSimServer(this.server, host, port);
    this.boundPort = bound.port;
    return bound;
  }

  /** Serves Prometheus text at `http://host:port/metrics` (Triton: port 8002). */
  listenMetrics(host = "127.0.0.1", port = 0): Promise<{ port: number; address: string }> {
    this.metrics ??= new SimMetricsEndpoint(() => this.metricsText());
    return this.metrics.listen(host, port);
  }

  /** Graceful shutdown; after 1 s every remaining call is cut. */
  async close(): Promise<void> {
    await Promise.all([shutdownSimServer(this.server), this.metrics?.close()]);
    this.service.clear();
  }

  /** ServerReady, ModelReady and health Check follow this (Triton: not ready while loading). */
  setReady(ready: boolean): void {
    this.ready = ready;
  }

  /** One model's readiness (ModelReady, and whether inference on it is served). */
  setModelReady(model: string, ready: boolean): void {
    if (ready) this.notReadyModels.delete(model);
    else this.notReadyModels.add(model);
  }

  /** Stops answering on the metrics endpoint (a worker whose metrics went away; scrapes fail). */
  async closeMetrics(): Promise<void> {
    await this.metrics?.close();
    this.metrics = undefined;
  }

  /**
   * Exports one more sample, e.g. `nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction"}`
   * (TensorRT-LLM's KV-cache fill) at `value`; undefined removes it.
   */
  setExportedMetric(series: string, value: number | undefined): void {
    if (value === undefined) this.exported.delete(series);
    else this.exported.set(series, value);
  }

  /** Adds `count` to the pending gauge of `model`, as if other clients had queued requests here. */
  setExternalPending(model: string, count: number): void {
    this.externalPending.set(model, count);
  }

  /** While set, every inference fails with `code`; `undefined` heals. */
  failWith(code: grpc.status | undefined, message = "injected failure"): void {
    this.failure = code === undefined ? undefined : { code, message };
  }

  /** The metrics endpoint's text: the pending gauge of every model this worker serves. */
  metricsText(): string {
    const lines = [
      `# HELP ${PENDING_METRIC} Instantaneous number of pending requests awaiting execution per-model.`,
      `# TYPE ${PENDING_METRIC} gauge`,
    ];
    for (const model of this.models) {
      const pending = this.service.queuedOf(model) + (this.externalPending.get(model) ?? 0);
      lines.push(`${PENDING_METRIC}{model="${model}",version="1"} ${pending}`);
    }
    for (const [series, value] of this.exported) lines.push(`${series} ${value}`);
    return lines.join("\n") + "\n";
  }

  /** The simulated workers' `x-worker` response header (real Triton sends none). */
  private workerMetadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set("x-worker", this.options.name);
    return md;
  }

  private modelReady(model: string): boolean {
    return this.models.has(model) && !this.notReadyModels.has(model);
  }

  private infer(request: ModelInferRequest, reply: Reply): void {
    this.calls++;
    const sequence = sequenceIdOf(request);
    if (sequence !== undefined) this.sequences.set(sequence, (this.sequences.get(sequence) ?? 0) + 1);
    const fail = (code: grpc.status, details: string): void =>
      reply(Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() }));
    if (this.failure) return fail(this.failure.code, this.failure.message);
    const model = request.model_name;
    if (!this.models.has(model)) {
      return fail(grpc.status.NOT_FOUND, `Request for unknown model: '${model}' is not found`);
    }
    if (!this.modelReady(model)) {
      return fail(grpc.status.UNAVAILABLE, `Request for unknown model: '${model}' has no available versions`);
    }
    if (sequence !== undefined) {
      const key = `${model}\n${sequence}`;
      if (flagOf(request, "sequence_start")) {
        this.liveSequences.add(key);
      } else if (!this.liveSequences.has(key)) {
        this.sequenceErrors++;
        return fail(
          grpc.status.INVALID_ARGUMENT,
          `inference request for sequence ${sequence} to model '${model}' must specify the START flag on the first request of the sequence`,
        );
      }
      if (flagOf(request, "sequence_end")) this.liveSequences.delete(key);
    }
    this.service.run(model, () =>
      reply(null, {
        model_name: model,
        model_version: request.model_version || "1",
        id: request.id,
        parameters: { worker: { string_param: this.options.name } },
        outputs: request.raw_input_contents.map((_, i) => ({ name: `OUTPUT${i}`, datatype: "BYTES" })),
        raw_output_contents: request.raw_input_contents,
      }),
    );
  }
}
