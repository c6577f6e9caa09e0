/**
 * grpc-js client side of the gRPC-mode tests, and the Fulcrum config they share. One `grpc.Client`
 * is one channel and, on one target, one HTTP/2 connection; each client gets its own subchannel pool
 * so two clients in a test never share a connection by accident.
 */
import * as grpc from "@grpc/grpc-js";
import { ECHO } from "./grpc-test-worker.js";

const identity = (b: Buffer): Buffer => b;

export function targetOf(t: { host: string; port: number } | string): string {
  if (typeof t === "string") return t;
  return t.host.includes(":") ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

export interface EchoClientOptions {
  /** Default insecure (h2c). */
  readonly credentials?: grpc.ChannelCredentials;
  readonly channelOptions?: grpc.ChannelOptions;
}

/** A grpc-js client (one channel, one HTTP/2 connection) for the test.Echo service. */
export function echoClient(
  target: { host: string; port: number } | string,
  options: EchoClientOptions = {},
): grpc.Client {
  return new grpc.Client(targetOf(target), options.credentials ?? grpc.credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
    ...options.channelOptions,
  });
}

/** Unlimited message sizes both ways, for a client or server that moves 64 MiB messages. */
export const UNLIMITED_MESSAGES: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": -1,
  "grpc.max_send_message_length": -1,
};

export interface CallOptions {
  /** Request metadata; `-bin` keys take Buffers. */
  readonly metadata?: Readonly<Record<string, string | Buffer>>;
  /** Deadline from now; default 10 s so that a hang shows as DEADLINE_EXCEEDED, never as a stuck test. */
  readonly deadlineMs?: number;
}

export type Outcome =
  | { readonly ok: true; readonly value: Buffer; readonly ms: number }
  | {
      readonly ok: false;
      readonly code: grpc.status;
      readonly details: string;
      readonly metadata: grpc.Metadata;
      readonly ms: number;
    };

export function metadataOf(entries: Readonly<Record<string, string | Buffer>> | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(entries ?? {})) md.add(k, v);
  return md;
}

function callOptions(options: CallOptions): grpc.CallOptions {
  return { deadline: Date.now() + (options.deadlineMs ?? 10_000) };
}

/** Starts a unary call; `outcome` settles (never rejects) with its result and how long it took. */
export function startUnary(
  client: grpc.Client,
  path: string,
  body: Buffer = Buffer.alloc(0),
  options: CallOptions = {},
): { call: grpc.ClientUnaryCall; outcome: Promise<Outcome> } {
  const started = performance.now();
  let call: grpc.ClientUnaryCall | undefined;
  const outcome = new Promise<Outcome>((resolve) => {
    call = client.makeUnaryRequest(
      path,
      identity,
      identity,
      body,
      metadataOf(options.metadata),
      callOptions(options),
      (err, value) => {
        const ms = performance.now() - started;
        if (err) resolve({ ok: false, code: err.code, details: err.details, metadata: err.metadata, ms });
        else resolve({ ok: true, value: value ?? Buffer.alloc(0), ms });
      },
    );
  });
  return { call: call as unknown as grpc.ClientUnaryCall, outcome };
}

export function unary(
  client: grpc.Client,
  path: string,
  body?: Buffer,
  options?: CallOptions,
): Promise<Outcome> {
  return startUnary(client, path, body, options).outcome;
}

/** `ECHO.unary`: the name of the worker that answered, or the failure. */
export function who(client: grpc.Client, options?: CallOptions): Promise<Outcome> {
  return unary(client, ECHO.unary, undefined, options);
}

/** The name in an OK outcome; throws with the status otherwise. */
export function nameOf(o: Outcome): string {
  if (!o.ok) throw new Error(`call failed: ${grpc.status[o.code]} (${o.code}) ${o.details}`);
  return o.value.toString("utf8");
}

/**
 * Makes `count` `ECHO.unary` calls, `parallel` at a time, through one client; `metadata(i)` gives the
 * metadata of call `i`. Returns every outcome in call order.
 */
export async function callMany(
  client: grpc.Client,
  count: number,
  parallel: number,
  metadata: (i: number) => Readonly<Record<string, string | Buffer>> | undefined = () => undefined,
): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (let done = 0; done < count; done += parallel) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(parallel, count - done) }, (_, k) =>
        who(client, { metadata: metadata(done + k) }),
      ),
    );
    out.push(...batch);
  }
  return out;
}

/** Names counted over OK outcomes; failures counted under `!<code name>`. */
export function countNames(outcomes: readonly Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const key = o.ok ? o.value.toString("utf8") : `!${grpc.status[o.code]}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** Resolves once the client's channel is connected (so later timings exclude the client's connect). */
export function waitForReady(client: grpc.Client, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve()));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface GrpcClusterYaml {
  readonly name?: string;
  readonly policy?: string;
  readonly endpoints: readonly string[];
  /** A YAML flow mapping; default `{ type: none }`. */
  readonly healthCheck?: string;
  /** A YAML flow mapping for `outlier_detection`. */
  readonly outlier?: string;
  /** A YAML flow mapping for `affinity`. */
  readonly affinity?: string;
  /** A YAML flow mapping for the cluster's upstream `tls`. */
  readonly tls?: string;
  /** More `key: value` lines of the cluster, e.g. `connect_timeout: 1s`. */
  readonly extra?: readonly string[];
}

export interface GrpcListenerYaml {
  readonly name?: string;
  /** A YAML flow mapping for the listener's `tls`. */
  readonly tls?: string;
  readonly engine?: string;
  /** More `key: value` entries of the listener's flow mapping, e.g. `access_log: { enabled: true }`. */
  readonly fields?: readonly string[];
}

/**
 * The gRPC engine under test: `FULCRUM_TEST_GRPC_ENGINE` (the test matrix runs every gRPC test file
 * once per engine), `http2` by default. Every test config with a grpc listener takes its engine here.
 */
export function grpcEngine(): "http2" | "frames" {
  const engine = process.env.FULCRUM_TEST_GRPC_ENGINE ?? "http2";
  if (engine !== "http2" && engine !== "frames") throw new Error(`FULCRUM_TEST_GRPC_ENGINE=${engine}`);
  return engine;
}

/** One grpc listener on 127.0.0.1 port 0 in front of one cluster, on the engine under test. */
export function grpcConfig(cluster: GrpcClusterYaml, listener: GrpcListenerYaml = {}): string {
  const clusterName = cluster.name ?? "w";
  const engine = listener.engine ?? grpcEngine();
  const listenerFields = [
    `name: ${listener.name ?? "g"}`,
    "protocol: grpc",
    `engine: ${engine}`,
    'listen: "127.0.0.1:0"',
    `cluster: ${clusterName}`,
  ];
  if (listener.tls) listenerFields.push(`tls: ${listener.tls}`);
  for (const field of listener.fields ?? []) listenerFields.push(field);
  const lines = [
    "listeners:",
    `  - { ${listenerFields.join(", ")} }`,
    "clusters:",
    `  - name: ${clusterName}`,
    `    policy: ${cluster.policy ?? "round_robin"}`,
    `    health_check: ${cluster.healthCheck ?? "{ type: none }"}`,
  ];
  if (cluster.outlier) lines.push(`    outlier_detection: ${cluster.outlier}`);
  if (cluster.affinity) lines.push(`    affinity: ${cluster.affinity}`);
  if (cluster.tls) lines.push(`    tls: ${cluster.tls}`);
  for (const line of cluster.extra ?? []) lines.push(`    ${line}`);
  lines.push("    endpoints:");
  for (const address of cluster.endpoints) lines.push(`      - address: "${address}"`);
  return lines.join("\n") + "\n";
}

/**
 * What a test started, closed in reverse order by `run()` (clients before Fulcrum before workers);
 * every closer runs even when one fails, and the first failure is thrown.
 */
export class Teardown {
  private readonly closers: (() => unknown)[] = [];

  add<T>(thing: T, close: (thing: T) => unknown): T {
    this.closers.push(() => close(thing));
    return thing;
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const close of this.closers.splice(0).reverse()) {
      try {
        await close();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0] instanceof Error ? errors[0] : new Error(String(errors[0]));
  }
}
