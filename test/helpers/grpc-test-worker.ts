/**
 * A small gRPC worker for the protocol-level tests of gRPC mode, on @grpc/grpc-js with identity
 * serializers (no protobuf on the test service): every call that does work answers with the worker's
 * name or echoes its bytes, so a test can count where calls landed and check bytes end to end. It also
 * serves grpc.health.v1 (protos/health.proto) with a settable status and counts the probes it gets.
 *
 * Counters are read by the tests: `calls`, `active`, `maxActive`, `cancelled`, `peers` (distinct
 * `host:port` of the callers of test.Echo: one per HTTP/2 session from Fulcrum, since each session is
 * one TCP connection from its own port) and the per-peer maximum of calls in the handler at once.
 */
import { createHash } from "node:crypto";
import type { EventEmitter } from "node:events";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { repoRoot } from "./repo-root.js";

/** The test service's method paths. */
export const ECHO = {
  /** Answers the worker's name; honours hold, delay (`x-delay-ms` or the worker's), `failWith`. */
  unary: "/test.Echo/Unary",
  /** Answers the request bytes unchanged (no delay, no hold). */
  echo: "/test.Echo/Echo",
  /** Request JSON `{count, size}`: `count` messages of `size` bytes, each starting with its index (u32 BE). */
  serverStream: "/test.Echo/ServerStream",
  /** Answers JSON `{count, inOrder, sha256}` over the messages received (index in the first 4 bytes). */
  clientStream: "/test.Echo/ClientStream",
  /** Echoes every message as it arrives; ends when the client ends. */
  bidi: "/test.Echo/Bidi",
  /**
   * Request JSON `{code?, message?}`. Sends as response headers every request metadata entry whose
   * key starts with `x-`, then ends with the trailers of `META_TRAILERS` and either OK ("ok") or the
   * status `code` with `message`.
   */
  meta: "/test.Echo/Meta",
} as const;

/** The custom trailers `ECHO.meta` always sends. */
export const META_TRAILERS: Readonly<Record<string, string | Buffer>> = {
  "x-trailer": "done",
  "x-trailer-bin": Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f]),
};

type AnyServerCall =
  | grpc.ServerUnaryCall<Buffer, Buffer>
  | grpc.ServerReadableStream<Buffer, Buffer>
  | grpc.ServerWritableStream<Buffer, Buffer>
  | grpc.ServerDuplexStream<Buffer, Buffer>;

const identity = (b: Buffer): Buffer => b;

function method(
  path: string,
  requestStream: boolean,
  responseStream: boolean,
): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/** The test service with identity serializers, usable by grpc-js servers and clients alike. */
export const ECHO_SERVICE = {
  Unary: method(ECHO.unary, false, false),
  Echo: method(ECHO.echo, false, false),
  ServerStream: method(ECHO.serverStream, false, true),
  ClientStream: method(ECHO.clientStream, true, false),
  Bidi: method(ECHO.bidi, true, true),
  Meta: method(ECHO.meta, false, false),
} satisfies grpc.ServiceDefinition;

export type HealthStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

let healthService: grpc.ServiceDefinition | undefined;

/** grpc.health.v1.Health from protos/health.proto (loaded once). */
export function healthServiceDefinition(): grpc.ServiceDefinition {
  if (healthService) return healthService;
  const pkg = protoLoader.loadSync(join(repoRoot(), "protos", "health.proto"), {
    keepCase: true,
    enums: String,
    defaults: true,
  });
  const loaded = grpc.loadPackageDefinition(pkg) as unknown as {
    grpc: { health: { v1: { Health: { service: grpc.ServiceDefinition } } } };
  };
  healthService = loaded.grpc.health.v1.Health.service;
  return healthService;
}

export interface GrpcTestWorkerOptions {
  readonly name: string;
  /** Delay before `ECHO.unary` answers (a call's `x-delay-ms` metadata overrides it). Default 0. */
  readonly delayMs?: number;
  /** The worker's SETTINGS_MAX_CONCURRENT_STREAMS (`grpc.max_concurrent_streams`). */
  readonly maxConcurrentStreams?: number;
  /** Raise both message limits (use -1 for unlimited); grpc-js's default receive limit is 4 MiB. */
  readonly maxMessageBytes?: number;
  /** Extra grpc-js server options, e.g. `grpc.max_connection_age_ms`. */
  readonly serverOptions?: grpc.ServerOptions;
  /** Default insecure (h2c). */
  readonly credentials?: grpc.ServerCredentials;
}

export class GrpcTestWorker {
  readonly name: string;
  delayMs: number;
  /** When set, `ECHO.unary` fails every call with this status. */
  failWith: { code: grpc.status; details: string } | undefined;
  /** The grpc.health.v1 status of the whole server (service ""). */
  healthStatus: HealthStatus = "SERVING";
  /** Statuses of named services; a service neither here nor "" answers NOT_FOUND. */
  readonly serviceHealth = new Map<string, HealthStatus>();
  /** Delay before a health Check answers. */
  healthDelayMs = 0;

  /** test.Echo calls that reached a handler. */
  calls = 0;
  /** test.Echo calls in a handler now, and the most at once. */
  active = 0;
  maxActive = 0;
  /** Calls the client side cancelled (RST_STREAM reached the handler) before they were answered. */
  cancelled = 0;
  /** Distinct callers (`host:port`) of test.Echo: one per HTTP/2 session. */
  readonly peers = new Set<string>();
  /** Calls in the handler at once per peer, and the most seen on any one peer. */
  readonly activeByPeer = new Map<string, number>();
  maxActivePerPeer = 0;
  /** Request metadata of the latest `ECHO.meta` call. */
  lastMetadata: grpc.Metadata | undefined;
  /** Health Check calls received, with the service each asked for. */
  probes = 0;
  readonly probeServices: string[] = [];

  private holding = false;
  private readonly held = new Set<() => void>();
  private readonly server: grpc.Server;
  private readonly credentials: grpc.ServerCredentials;
  private boundPort = 0;

  constructor(options: GrpcTestWorkerOptions) {
    this.name = options.name;
    this.delayMs = options.delayMs ?? 0;
    const serverOptions: grpc.ServerOptions = { ...options.serverOptions };
    if (options.maxConcurrentStreams !== undefined)
      serverOptions["grpc.max_concurrent_streams"] = options.maxConcurrentStreams;
    if (options.maxMessageBytes !== undefined) {
      serverOptions["grpc.max_receive_message_length"] = options.maxMessageBytes;
      serverOptions["grpc.max_send_message_length"] = options.maxMessageBytes;
    }
    this.credentials = options.credentials ?? grpc.ServerCredentials.createInsecure();
    this.server = new grpc.Server(serverOptions);
    this.server.addService(ECHO_SERVICE, {
      Unary: this.unary,
      Echo: this.echo,
      ServerStream: this.serverStream,
      ClientStream: this.clientStream,
      Bidi: this.bidi,
      Meta: this.meta,
    });
    this.server.addService(healthServiceDefinition(), { Check: this.check });
  }

  get port(): number {
    return this.boundPort;
  }

  get address(): string {
    return `127.0.0.1:${this.boundPort}`;
  }

  /** Binds and starts serving; resolves with the bound port. */
  listen(host = "127.0.0.1", port = 0): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(`${host}:${port}`, this.credentials, (err, bound) => {
        if (err) return reject(err);
        this.boundPort = bound;
        resolve(bound);
      });
    });
  }

  /** While set, `ECHO.unary` calls wait in the handler until `release()` (or their cancellation). */
  hold(): void {
    this.holding = true;
  }

  /** Lets every held call go on, and stops holding new ones. */
  release(): void {
    this.holding = false;
    for (const go of [...this.held]) go();
    this.held.clear();
  }

  /** Calls waiting in the handler because of `hold()`. */
  get heldCount(): number {
    return this.held.size;
  }

  /** Stops at once: every session is destroyed, every in-flight call fails on the client side. */
  close(): Promise<void> {
    this.release();
    this.server.forceShutdown();
    return Promise.resolve();
  }

  /** Counts a test.Echo call; `end` (or the call's cancellation) ends its accounting exactly once. */
  private begin(call: AnyServerCall): {
    ended: () => boolean;
    end: () => void;
    onCancel: (fn: () => void) => void;
  } {
    const peer = call.getPeer();
    this.calls++;
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    this.peers.add(peer);
    const onPeer = (this.activeByPeer.get(peer) ?? 0) + 1;
    this.activeByPeer.set(peer, onPeer);
    this.maxActivePerPeer = Math.max(this.maxActivePerPeer, onPeer);
    let done = false;
    const cancelHooks: (() => void)[] = [];
    const end = (): void => {
      if (done) return;
      done = true;
      this.active--;
      this.activeByPeer.set(peer, (this.activeByPeer.get(peer) ?? 1) - 1);
    };
    (call as EventEmitter).on("cancelled", () => {
      if (done) return;
      this.cancelled++;
      end();
      for (const fn of cancelHooks) fn();
    });
    return { ended: () => done, end, onCancel: (fn) => cancelHooks.push(fn) };
  }

  private readonly unary: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    const c = this.begin(call);
    const delayText = call.metadata.get("x-delay-ms")[0];
    const delay = delayText === undefined ? this.delayMs : Number(String(delayText));
    const finish = (): void => {
      if (c.ended()) return;
      c.end();
      if (this.failWith) callback({ code: this.failWith.code, details: this.failWith.details });
      else callback(null, Buffer.from(this.name));
    };
    const afterHold = (): void => {
      if (c.ended()) return;
      if (delay <= 0) return finish();
      const timer = setTimeout(finish, delay);
      c.onCancel(() => clearTimeout(timer));
    };
    if (!this.holding) return afterHold();
    const go = (): void => {
      this.held.delete(go);
      afterHold();
    };
    this.held.add(go);
    c.onCancel(() => this.held.delete(go));
  };

  private readonly echo: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    const c = this.begin(call);
    c.end();
    callback(null, call.request);
  };

  private readonly serverStream: grpc.handleServerStreamingCall<Buffer, Buffer> = (call) => {
    const c = this.begin(call);
    const { count, size } = JSON.parse(call.request.toString("utf8")) as { count: number; size: number };
    let i = 0;
    const pump = (): void => {
      while (i < count && !c.ended()) {
        const ok = call.write(streamMessage(i, size));
        i++;
        if (!ok) {
          call.once("drain", pump);
          return;
        }
      }
      if (c.ended()) return;
      c.end();
      call.end();
    };
    pump();
  };

  private readonly clientStream: grpc.handleClientStreamingCall<Buffer, Buffer> = (call, callback) => {
    const c = this.begin(call);
    const hash = createHash("sha256");
    let count = 0;
    let inOrder = true;
    call.on("data", (m: Buffer) => {
      if (m.length < 4 || m.readUInt32BE(0) !== count) inOrder = false;
      hash.update(m);
      count++;
    });
    call.on("end", () => {
      if (c.ended()) return;
      c.end();
      callback(null, Buffer.from(JSON.stringify({ count, inOrder, sha256: hash.digest("hex") })));
    });
  };

  private readonly bidi: grpc.handleBidiStreamingCall<Buffer, Buffer> = (call) => {
    const c = this.begin(call);
    call.on("data", (m: Buffer) => {
      if (!c.ended()) call.write(m);
    });
    call.on("end", () => {
      if (c.ended()) return;
      c.end();
      call.end();
    });
  };

  private readonly meta: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    const c = this.begin(call);
    this.lastMetadata = call.metadata.clone();
    const request = JSON.parse(call.request.toString("utf8") || "{}") as { code?: number; message?: string };
    const headers = new grpc.Metadata();
    for (const [key, values] of Object.entries(call.metadata.getMap())) {
      if (!key.startsWith("x-")) continue;
      headers.set(key, values);
    }
    call.sendMetadata(headers);
    const trailers = new grpc.Metadata();
    for (const [key, value] of Object.entries(META_TRAILERS)) trailers.set(key, value);
    c.end();
    if (request.code) callback({ code: request.code, details: request.message ?? "", metadata: trailers });
    else callback(null, Buffer.from("ok"), trailers);
  };

  private readonly check: grpc.handleUnaryCall<{ service?: string }, { status: HealthStatus }> = (
    call,
    callback,
  ) => {
    const service = call.request.service ?? "";
    this.probes++;
    this.probeServices.push(service);
    const answer = (): void => {
      const status = this.serviceHealth.get(service) ?? (service === "" ? this.healthStatus : undefined);
      if (status === undefined)
        callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${service}` });
      else callback(null, { status });
    };
    if (this.healthDelayMs > 0) setTimeout(answer, this.healthDelayMs);
    else answer();
  };
}

/** Message `i` of a stream: `size` bytes (at least 4), the index as u32 BE, then a pattern of it. */
export function streamMessage(i: number, size: number): Buffer {
  const m = Buffer.alloc(Math.max(4, size));
  m.writeUInt32BE(i, 0);
  for (let k = 4; k < m.length; k++) m[k] = (i + k) & 0xff;
  return m;
}

/** Starts one worker per name on 127.0.0.1 port 0. */
export async function startGrpcWorkers(
  names: readonly string[],
  options: Omit<GrpcTestWorkerOptions, "name"> = {},
): Promise<GrpcTestWorker[]> {
  const workers = names.map((name) => new GrpcTestWorker({ ...options, name }));
  await Promise.all(workers.map((w) => w.listen()));
  return workers;
}
