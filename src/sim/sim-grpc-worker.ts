/**
 * A simulated GPU inference worker on grpc-js for the demo, the tests and the bench. `Infer` queues for
 * one of `slots` (a GPU's batch capacity) and takes `baseLatencyMs × speed`, so balancing policies can
 * be compared on queueing, not just on spread, then answers with the worker's name; `Echo` and three
 * streaming methods move raw bytes for proxy tests (protos/fulcrum/sim/worker.proto describes both);
 * grpc.health.v1 `Check`/`Watch` answer the health checker. Failures (a status, or a reset stream) are
 * injected on demand, and counters let tests assert what the worker saw.
 */
import { bindSimServer, shutdownSimServer } from "./sim-grpc-server.js";
import { constants as h2, type ServerHttp2Stream } from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { healthService } from "../protos/health-proto.js";
import { decodeInferReply, encodeInferReply } from "./sim-worker-proto.js";

export interface SimGrpcWorkerOptions {
  readonly name: string;
  /** Service time of one Infer before `speed` (default 0). */
  readonly baseLatencyMs?: number | undefined;
  /** Infer calls served at once; the rest queue (default Infinity). */
  readonly slots?: number | undefined;
  /** Multiplier on the service time: 2 is a worker half as fast (default 1). */
  readonly speed?: number | undefined;
  /**
   * true: an Infer whose client has gone (cancelled, or past its deadline) still waits for its slot
   * and is served, as Triton does with its default queue policy; it is counted in `wasted`. false
   * (default): it leaves the queue, or its service stops, at once.
   */
  readonly finishCancelled?: boolean | undefined;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS the worker advertises (`grpc.max_concurrent_streams`). */
  readonly maxConcurrentStreams?: number | undefined;
  readonly serverOptions?: grpc.ServerOptions | undefined;
}

export type ServingStatus = "SERVING" | "NOT_SERVING";

const raw = (b: Buffer): Buffer => b;
const rawMethod = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/fulcrum.sim.Worker/${name}`,
  requestStream,
  responseStream,
  requestSerialize: raw,
  requestDeserialize: raw,
  responseSerialize: raw,
  responseDeserialize: raw,
  originalName: name,
});

/**
 * `fulcrum.sim.Worker` (protos/fulcrum/sim/worker.proto) on raw bytes, no proto needed on either side:
 * every method but Infer moves the bytes it was given, which is what the proto's messages encode to.
 * Infer's answer is the worker's name: its serializer encodes it as the proto's `InferReply` and its
 * deserializer decodes that back, so a handler and a client of this definition see the bare name.
 */
export const simWorkerService = {
  Infer: {
    ...rawMethod("Infer", false, false),
    responseSerialize: (name: Buffer) => encodeInferReply(name.toString()),
    responseDeserialize: (reply: Buffer) => Buffer.from(decodeInferReply(reply)),
  },
  Echo: rawMethod("Echo", false, false),
  ServerStream: rawMethod("ServerStream", false, true),
  ClientStream: rawMethod("ClientStream", true, false),
  Bidi: rawMethod("Bidi", true, true),
} satisfies grpc.ServiceDefinition;

type Md = grpc.Metadata;
type Opts = grpc.CallOptions;
type Callback = grpc.requestCallback<Buffer>;
interface UnaryMethod {
  (request: Buffer, callback: Callback): grpc.ClientUnaryCall;
  (request: Buffer, metadata: Md, options: Opts, callback: Callback): grpc.ClientUnaryCall;
}

/** The generic client of `simWorkerService` (grpc-js's callback / stream API on Buffers). */
export interface SimWorkerClient extends grpc.Client {
  Infer: UnaryMethod;
  Echo: UnaryMethod;
  /** Sends the request back `x-repeat` times (request metadata, default 1). */
  ServerStream(request: Buffer, metadata?: Md, options?: Opts): grpc.ClientReadableStream<Buffer>;
  /** Answers with all request messages concatenated. */
  ClientStream(callback: Callback): grpc.ClientWritableStream<Buffer>;
  ClientStream(metadata: Md, options: Opts, callback: Callback): grpc.ClientWritableStream<Buffer>;
  /** Echoes each message. */
  Bidi(metadata?: Md, options?: Opts): grpc.ClientDuplexStream<Buffer, Buffer>;
}

let WorkerClient: grpc.ServiceClientConstructor | undefined;

/** A plaintext client of `simWorkerService` at `host:port`; close it with `client.close()`. */
export function simWorkerClient(address: string, options?: grpc.ClientOptions): SimWorkerClient {
  WorkerClient ??= grpc.makeGenericClientConstructor(simWorkerService, "Worker");
  const client = new WorkerClient(address, grpc.credentials.createInsecure(), options);
  return client as unknown as SimWorkerClient;
}

type UnaryState = { done: boolean; abort: (() => void) | undefined };
type HealthRequest = { service: string };
type HealthWatcher = { call: grpc.ServerWritableStream<HealthRequest, unknown>; last?: string };

export class SimGrpcWorker {
  readonly server: grpc.Server;
  /** Infer/Echo calls received (failed and reset ones included). */
  calls = 0;
  /** Infer calls in service now (holding a slot); queued ones are counted in `queued`. */
  active = 0;
  /** Peak of `active`. */
  maxActive = 0;
  /** Infer/Echo calls whose client cancelled (or whose deadline passed) before the answer. */
  cancelled = 0;
  /** Infer calls served for a client that had already gone (`finishCancelled`): GPU time wasted. */
  wasted = 0;
  /** Calls answered with a reset stream by `resetEvery`. */
  resets = 0;
  /** grpc.health.v1 Check calls received. */
  healthChecks = 0;
  private readonly queue: (() => void)[] = [];
  private readonly statuses = new Map<string, ServingStatus>([["", "SERVING"]]);
  private readonly watchers = new Set<HealthWatcher>();
  private failure: { code: grpc.status; message: string } | undefined;
  private reset: { every: number; code: number } | undefined;
  private boundPort = 0;

  constructor(readonly options: SimGrpcWorkerOptions) {
    const streams = options.maxConcurrentStreams;
    this.server = new grpc.Server({
      ...options.serverOptions,
      ...(streams === undefined ? {} : { "grpc.max_concurrent_streams": streams }),
    });
    this.server.addService(simWorkerService, {
      Infer: this.unary("Infer"),
      Echo: this.unary("Echo"),
      ServerStream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => void this.serverStream(call),
      ClientStream: (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: Callback) => {
        const chunks: Buffer[] = [];
        call.on("data", (m: Buffer) => chunks.push(m));
        call.on("end", () => callback(null, Buffer.concat(chunks)));
      },
      Bidi: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.sendMetadata(this.workerMetadata());
        call.on("data", (m: Buffer) => call.write(m));
        call.on("end", () => call.end());
      },
    });
    this.server.addService(healthService().service, {
      Check: (call: grpc.ServerUnaryCall<HealthRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        this.healthChecks++;
        const status = this.statuses.get(call.request.service);
        if (status) callback(null, { status });
        else callback({ code: grpc.status.NOT_FOUND, details: `unknown service "${call.request.service}"` });
      },
      Watch: (call: HealthWatcher["call"]) => {
        const watcher: HealthWatcher = { call };
        this.watchers.add(watcher);
        call.on("cancelled", () => this.watchers.delete(watcher));
        this.notify(watcher);
      },
    });
  }

  get name(): string {
    return this.options.name;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Infer calls waiting for a slot. */
  get queued(): number {
    return this.queue.length;
  }

  async listen(host = "127.0.0.1", port = 0): Promise<{ port: number; address: string }> {
    const bound = await bindSimServer(this.server, host, port);
    this.boundPort = bound.port;
    return bound;
  }

  /** Graceful shutdown (open calls finish); after 1 s every remaining call and connection is cut. */
  close(): Promise<void> {
    for (const w of this.watchers) w.call.end();
    this.watchers.clear();
    return shutdownSimServer(this.server);
  }

  /** Sets the status Check and Watch report for `service` (`""` = the whole server). */
  setServing(status: ServingStatus, service = ""): void {
    this.statuses.set(service, status);
    for (const w of this.watchers) if (w.call.request.service === service) this.notify(w);
  }

  /** While set, every Infer/Echo fails with `code`; `undefined` heals. */
  failWith(code: grpc.status | undefined, message = "injected failure"): void {
    this.failure = code === undefined ? undefined : { code, message };
  }

  /**
   * Every n-th Infer/Echo call (by `calls`) is answered with RST_STREAM `rstCode` (default
   * INTERNAL_ERROR; REFUSED_STREAM tells a client nothing was processed) and no headers. grpc-js has no
   * public server-side reset, so this reaches the call's HTTP/2 stream through grpc-js internals; if a
   * grpc-js version hides it, the call fails with UNAVAILABLE "simulated reset" instead.
   */
  resetEvery(n: number | undefined, rstCode: number = h2.NGHTTP2_INTERNAL_ERROR): void {
    this.reset = n === undefined || n < 1 ? undefined : { every: Math.floor(n), code: rstCode };
  }

  private unary(kind: "Infer" | "Echo"): grpc.handleUnaryCall<Buffer, Buffer> {
    return (call, callback) => {
      this.calls++;
      const state: UnaryState = { done: false, abort: undefined };
      call.on("cancelled", () => {
        // grpc-js also emits 'cancelled' when the stream closes after a normal answer.
        if (state.done) return;
        state.done = true;
        this.cancelled++;
        state.abort?.();
      });
      if (this.failure) {
        state.done = true;
        return callback({ code: this.failure.code, details: this.failure.message });
      }
      if (this.reset && this.calls % this.reset.every === 0) {
        state.done = true;
        this.resets++;
        const stream = http2StreamOf(call);
        if (stream) stream.close(this.reset.code);
        else callback({ code: grpc.status.UNAVAILABLE, details: "simulated reset" });
        return;
      }
      if (kind === "Infer") return this.infer(call, callback, state);
      state.done = true;
      call.sendMetadata(this.workerMetadata());
      callback(null, call.request);
    };
  }

  private infer(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: Callback, state: UnaryState): void {
    const keepsWorking = this.options.finishCancelled === true;
    const start = (): void => {
      const answer = (): void => {
        this.releaseSlot();
        if (state.done) {
          this.wasted++; // the client left while the call waited or ran
          return;
        }
        state.done = true;
        call.sendMetadata(this.workerMetadata());
        callback(null, Buffer.from(this.options.name));
      };
      const serviceMs = (this.options.baseLatencyMs ?? 0) * (this.options.speed ?? 1);
      if (serviceMs <= 0) return answer();
      const timer = setTimeout(answer, serviceMs);
      state.abort = keepsWorking
        ? undefined
        : () => {
            clearTimeout(timer);
            this.releaseSlot();
          };
    };
    if (this.active < (this.options.slots ?? Infinity)) {
      this.active++;
      this.maxActive = Math.max(this.maxActive, this.active);
      return start();
    }
    this.queue.push(start);
    if (keepsWorking) return;
    state.abort = () => {
      const i = this.queue.indexOf(start);
      if (i >= 0) this.queue.splice(i, 1);
    };
  }

  /** Hands the slot to the next queued call, so `active` never dips between two calls. */
  private releaseSlot(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.active--;
  }

  private async serverStream(call: grpc.ServerWritableStream<Buffer, Buffer>): Promise<void> {
    const asked = Number(call.metadata.get("x-repeat")[0] ?? 1);
    const repeat = Number.isFinite(asked) ? Math.min(100_000, Math.max(0, Math.floor(asked))) : 1;
    call.sendMetadata(this.workerMetadata());
    for (let i = 0; i < repeat && !call.cancelled; i++) {
      if (call.write(call.request)) continue;
      // A cancelled call never drains: wait for whichever comes first.
      await new Promise<void>((resolve) => {
        const go = (): void => {
          call.off("drain", go).off("cancelled", go);
          resolve();
        };
        call.on("drain", go).on("cancelled", go);
      });
    }
    if (!call.cancelled) call.end();
  }

  private notify(w: HealthWatcher): void {
    const status = this.statuses.get(w.call.request.service) ?? "SERVICE_UNKNOWN";
    if (status === w.last) return;
    w.last = status;
    w.call.write({ status });
  }

  private workerMetadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set("x-worker", this.options.name);
    return md;
  }
}

/** grpc-js internals: ServerUnaryCallImpl.call → (interceptors' nextCall …) → BaseServerInterceptingCall.stream. */
function http2StreamOf(call: object): ServerHttp2Stream | undefined {
  let node: unknown = (call as { call?: unknown }).call;
  for (let depth = 0; depth < 16 && typeof node === "object" && node !== null; depth++) {
    const stream = (node as { stream?: unknown }).stream;
    if (typeof stream === "object" && stream !== null && "rstCode" in stream && "close" in stream) {
      return stream as ServerHttp2Stream;
    }
    node = (node as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}
