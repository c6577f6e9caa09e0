/**
 * A simulated TorchServe inference endpoint (gRPC port 7070) on grpc-js, for the tests and the demo of
 * inference awareness: `org.pytorch.serve.grpc.inference.InferenceAPIsService` (protos/torchserve/)
 * with `Ping`, answering TorchServe's JSON health document (`{"status": "Healthy"}`, or whatever
 * `setHealth` / `setPingBody` say, so a prober's parsing can be tested), `Predictions` with the same
 * service-time model as the Triton-shaped worker (sim-service-queue.ts), and `StreamPredictions`
 * answering in `streamChunks` parts. A prediction echoes the request's inputs in input-name order,
 * prefixed with the worker's name and a colon, so a test can tell who answered; unary answers also
 * carry an `x-worker` header naming it.
 */
import * as grpc from "@grpc/grpc-js";
import { torchserveService } from "../protos/inference-protos.js";
import { bindSimServer, shutdownSimServer } from "./sim-grpc-server.js";
import { SimServiceQueue } from "./sim-service-queue.js";

export interface SimTorchServeWorkerOptions {
  readonly name: string;
  /** Models this worker serves (default `["simple"]`); others answer NOT_FOUND. */
  readonly models?: readonly string[] | undefined;
  /** Service time of one prediction before `speed` (default 0). */
  readonly baseLatencyMs?: number | undefined;
  /** Predictions served at once; the rest queue (default Infinity). */
  readonly slots?: number | undefined;
  /** Multiplier on the service time (default 1). */
  readonly speed?: number | undefined;
  /** Parts of a `StreamPredictions` answer (default 3). */
  readonly streamChunks?: number | undefined;
}

export interface PredictionsRequest {
  model_name: string;
  model_version: string;
  input: Record<string, Buffer>;
}

/** TorchServe's health states, as its Ping reports them. */
export type TorchServeHealth = "Healthy" | "Partial Healthy" | "Unhealthy";

export class SimTorchServeWorker {
  readonly server: grpc.Server;
  /** Predictions and StreamPredictions requests received (failed ones included). */
  calls = 0;
  /** Ping requests answered. */
  pings = 0;
  private pingBody: string = healthBody("Healthy");
  private readonly service: SimServiceQueue;
  private readonly models: ReadonlySet<string>;
  private boundPort = 0;

  constructor(readonly options: SimTorchServeWorkerOptions) {
    this.models = new Set(options.models ?? ["simple"]);
    this.service = new SimServiceQueue(
      options.slots ?? Infinity,
      () => (options.baseLatencyMs ?? 0) * (options.speed ?? 1),
    );
    this.server = new grpc.Server();
    this.server.addService(torchserveService().service, {
      Ping: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        this.pings++;
        call.sendMetadata(this.workerMetadata());
        callback(null, { health: this.pingBody });
      },
      Predictions: (
        call: grpc.ServerUnaryCall<PredictionsRequest, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => {
        this.predict(call.request, (err, prediction) => {
          if (err) return callback(err);
          call.sendMetadata(this.workerMetadata());
          callback(null, { prediction });
        });
      },
      StreamPredictions: (call: grpc.ServerWritableStream<PredictionsRequest, unknown>) => {
        this.predict(call.request, (err, prediction) => {
          if (err) {
            call.destroy(err);
            return;
          }
          if (call.cancelled) return;
          const parts = Math.max(1, this.options.streamChunks ?? 3);
          const size = Math.ceil(prediction.length / parts);
          for (let i = 0; i < parts; i++) {
            call.write({ prediction: prediction.subarray(i * size, (i + 1) * size) });
          }
          call.end();
        });
      },
    });
  }

  get name(): string {
    return this.options.name;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Predictions in service now, and the peak of it. */
  get active(): number {
    return this.service.active;
  }

  get maxActive(): number {
    return this.service.maxActive;
  }

  async listen(host = "127.0.0.1", port = 0): Promise<{ port: number; address: string }> {
    const bound = await bindSimServer(this.server, host, port);
    this.boundPort = bound.port;
    return bound;
  }

  /** Graceful shutdown; after 1 s every remaining call is cut. */
  async close(): Promise<void> {
    await shutdownSimServer(this.server);
    this.service.clear();
  }

  /** What Ping reports, as TorchServe's JSON document. */
  setHealth(health: TorchServeHealth): void {
    this.pingBody = healthBody(health);
  }

  /** Ping answers exactly `body` (e.g. text that is not JSON). */
  setPingBody(body: string): void {
    this.pingBody = body;
  }

  /** The simulated workers' `x-worker` response header (real TorchServe sends none). */
  private workerMetadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set("x-worker", this.options.name);
    return md;
  }

  private predict(
    request: PredictionsRequest,
    done: (err: grpc.ServiceError | null, prediction: Buffer) => void,
  ): void {
    this.calls++;
    if (!this.models.has(request.model_name)) {
      const details = `Model not found: ${request.model_name}`;
      done(
        Object.assign(new Error(details), {
          code: grpc.status.NOT_FOUND,
          details,
          metadata: new grpc.Metadata(),
        }),
        Buffer.alloc(0),
      );
      return;
    }
    const names = Object.keys(request.input).sort();
    const prediction = Buffer.concat([
      Buffer.from(`${this.options.name}:`),
      ...names.map((n) => request.input[n] as Buffer),
    ]);
    this.service.run(request.model_name, () => done(null, prediction));
  }
}

/** TorchServe's Ping document for `status` (it pretty-prints; parsers must not care). */
function healthBody(status: TorchServeHealth): string {
  return JSON.stringify({ status }, null, 2);
}
