/**
 * A simulated Triton Inference Server on grpc-js, for the bench and the tests of inference awareness:
 * `inference.GRPCInferenceService` (protos/triton/grpc_service.proto, Triton's field numbers) with
 * `ServerLive`, `ServerReady`, `ModelReady`, `ModelInfer` and `ModelStreamInfer`, plus grpc.health.v1
 * `Check` answered as Triton does (service name ignored; SERVING iff ready). Inference uses the same
 * service-time model as SimGrpcWorker: `slots` requests in service at once (a GPU's batch capacity),
 * `baseLatencyMs × speed` each, the rest queue in arrival order. A response echoes the request's
 * `raw_input_contents` as `raw_output_contents` and names the worker in its `worker` parameter; the
 * `sequence_id` parameter of each request is counted so tests can check that sequences stick.
 */
import { bindSimServer, shutdownSimServer } from "./sim-grpc-server.js";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { healthService } from "../health/prober-grpc-health.js";

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

let tritonConstructor: grpc.ServiceClientConstructor | undefined;

/** The `inference.GRPCInferenceService` client constructor; `.service` is the server definition. */
export function tritonService(): grpc.ServiceClientConstructor {
  if (tritonConstructor) return tritonConstructor;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
  const definition = protoLoader.loadSync(join(dir, "protos", "triton", "grpc_service.proto"), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  };
  tritonConstructor = loaded.inference.GRPCInferenceService;
  return tritonConstructor;
}

/** The value of a request's `sequence_id` parameter (int64, uint64 or string), if any. */
export function sequenceIdOf(request: ModelInferRequest): string | undefined {
  const p = request.parameters["sequence_id"];
  if (!p) return undefined;
  const v = p.int64_param ?? p.uint64_param ?? p.string_param;
  return v === undefined || v === "" || v === "0" ? undefined : String(v);
}

type Reply = (err: grpc.ServiceError | null, response?: unknown) => void;

export class SimTritonWorker {
  readonly server: grpc.Server;
  /** ModelInfer requests received (unary and streamed, failed ones included). */
  calls = 0;
  /** Requests in service now (holding a slot), and the peak of it. */
  active = 0;
  maxActive = 0;
  /** Requests per `sequence_id` seen. */
  readonly sequences = new Map<string, number>();
  healthChecks = 0;
  private ready = true;
  private failure: { code: grpc.status; message: string } | undefined;
  private readonly queue: (() => void)[] = [];
  private readonly models: ReadonlySet<string>;
  private boundPort = 0;

  constructor(readonly options: SimTritonWorkerOptions) {
    this.models = new Set(options.models ?? ["simple"]);
    this.server = new grpc.Server(options.serverOptions);
    const unary =
      <Req>(answer: (request: Req) => unknown) =>
      (call: grpc.ServerUnaryCall<Req, unknown>, callback: grpc.sendUnaryData<unknown>): void =>
        callback(null, answer(call.request));
    this.server.addService(tritonService().service, {
      ServerLive: unary(() => ({ live: true })),
      ServerReady: unary(() => ({ ready: this.ready })),
      ModelReady: unary((r: { name: string }) => ({ ready: this.ready && this.models.has(r.name) })),
      ModelInfer: (call: grpc.ServerUnaryCall<ModelInferRequest, unknown>, callback: Reply) =>
        this.infer(call.request, callback),
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

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.queue.length;
  }

  async listen(host = "127.0.0.1", port = 0): Promise<{ port: number; address: string }> {
    const bound = await bindSimServer(this.server, host, port);
    this.boundPort = bound.port;
    return bound;
  }

  /** Graceful shutdown; after 1 s every remaining call is cut. */
  close(): Promise<void> {
    return shutdownSimServer(this.server);
  }

  /** ServerReady, ModelReady and health Check follow this (Triton: not ready while loading). */
  setReady(ready: boolean): void {
    this.ready = ready;
  }

  /** While set, every inference fails with `code`; `undefined` heals. */
  failWith(code: grpc.status | undefined, message = "injected failure"): void {
    this.failure = code === undefined ? undefined : { code, message };
  }

  private infer(request: ModelInferRequest, reply: Reply): void {
    this.calls++;
    const sequence = sequenceIdOf(request);
    if (sequence !== undefined) this.sequences.set(sequence, (this.sequences.get(sequence) ?? 0) + 1);
    const fail = (code: grpc.status, details: string): void =>
      reply(Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() }));
    if (this.failure) return fail(this.failure.code, this.failure.message);
    if (!this.models.has(request.model_name)) {
      return fail(grpc.status.NOT_FOUND, `Request for unknown model: '${request.model_name}' is not found`);
    }
    const start = (): void => {
      const answer = (): void => {
        const next = this.queue.shift();
        if (next) next();
        else this.active--;
        reply(null, {
          model_name: request.model_name,
          model_version: request.model_version || "1",
          id: request.id,
          parameters: { worker: { string_param: this.options.name } },
          outputs: request.raw_input_contents.map((_, i) => ({ name: `OUTPUT${i}`, datatype: "BYTES" })),
          raw_output_contents: request.raw_input_contents,
        });
      };
      const serviceMs = (this.options.baseLatencyMs ?? 0) * (this.options.speed ?? 1);
      if (serviceMs <= 0) answer();
      else setTimeout(answer, serviceMs);
    };
    if (this.active < (this.options.slots ?? Infinity)) {
      this.active++;
      this.maxActive = Math.max(this.maxActive, this.active);
      start();
    } else {
      this.queue.push(start);
    }
  }
}
