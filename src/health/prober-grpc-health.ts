/**
 * gRPC health checking protocol v1 prober (grpc/grpc doc/health-checking.md): calls
 * `grpc.health.v1.Health/Check` with the configured service and a deadline of the probe timeout;
 * only SERVING passes. With `health_check.watch` the health checker uses `watch` instead: one
 * `Health/Watch` stream per endpoint, whose every update is one result. It is the standard readiness signal of gRPC workers (and Triton's `Check`),
 * so one prober covers most fleets. One grpc-js client is kept per endpoint and reused, so probing
 * every interval rides one HTTP/2 connection instead of opening a TCP connection per probe.
 */
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { healthService } from "../protos/health-proto.js";
import type { ProbeOutcome, ProbeTarget, Prober, WatchListener, WatchStream } from "./prober.js";

export interface GrpcHealthProberOptions {
  /** Service name sent in `HealthCheckRequest.service`; `""` asks about the whole server. */
  readonly service: string;
  /** Absent: plaintext (h2c). */
  readonly tls?:
    | {
        /** PEM file of the roots to trust; absent: Node's default roots. */
        readonly ca?: string | undefined;
        /** Name checked against the certificate and sent as SNI and `:authority`. */
        readonly serverName?: string | undefined;
        /** Accept any certificate (self-signed workers on a trusted network). */
        readonly insecureSkipVerify: boolean;
      }
    | undefined;
}

interface HealthClient extends grpc.Client {
  Check(
    request: { service: string },
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, response?: { status?: string }) => void,
  ): grpc.ClientUnaryCall;
  Watch(
    request: { service: string },
    options: grpc.CallOptions,
  ): grpc.ClientReadableStream<{ status?: string }>;
}

interface PooledClient {
  readonly client: HealthClient;
  lastUsed: number;
  /** Open Watch streams on this client: it is in use however long they stay quiet. */
  watching: number;
}

/** Grace after the deadline before the prober gives up on grpc-js and answers "timeout" itself. */
const DEADLINE_GRACE_MS = 100;
/** A client unused this long belongs to a removed endpoint (or a very long interval) and is closed. */
const IDLE_CLIENT_MS = 10 * 60_000;

/** Channel options of every prober's grpc-js clients (exported for the Triton and TorchServe probers). */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // Keepalive stays off (grpc-js's default): the probes themselves are the liveness traffic.
  // A revived worker must be seen within about a second, not after grpc-js's 120 s max backoff.
  "grpc.initial_reconnect_backoff_ms": 200,
  "grpc.max_reconnect_backoff_ms": 1000,
  // A probe must report what happened on this attempt, not a retried one.
  "grpc.enable_retries": 0,
  "grpc.service_config_disable_resolution": 1,
  // Never share a connection with other grpc-js clients of this process (e.g. the data path).
  "grpc.use_local_subchannel_pool": 1,
};

export class GrpcHealthProber implements Prober {
  private readonly clients = new Map<string, PooledClient>();
  private readonly credentials: grpc.ChannelCredentials;
  private readonly channelOptions: grpc.ChannelOptions;
  private lastSweep = Date.now();
  private closed = false;

  /** Throws (control plane) when the proto or the CA file cannot be read. */
  constructor(private readonly options: GrpcHealthProberOptions) {
    healthService();
    const tls = options.tls;
    this.channelOptions = { ...CHANNEL_OPTIONS };
    if (!tls) {
      this.credentials = grpc.credentials.createInsecure();
      return;
    }
    const ca = tls.ca === undefined ? null : readFileSync(tls.ca);
    const verify: grpc.VerifyOptions = tls.insecureSkipVerify
      ? { rejectUnauthorized: false, checkServerIdentity: () => undefined }
      : {};
    this.credentials = grpc.credentials.createSsl(ca, null, null, verify);
    if (tls.serverName !== undefined) {
      this.channelOptions["grpc.ssl_target_name_override"] = tls.serverName;
      this.channelOptions["grpc.default_authority"] = tls.serverName;
    }
  }

  probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
    if (this.closed) return Promise.resolve({ result: "failure", reason: "prober closed" });
    let client: HealthClient;
    try {
      client = this.clientFor(target);
    } catch (err) {
      return Promise.resolve({ result: "failure", reason: errorReason(err) });
    }
    return new Promise((resolve) => {
      let done = false;
      const finish = (outcome: ProbeOutcome): void => {
        if (done) return;
        done = true;
        clearTimeout(guard);
        resolve(outcome);
      };
      let call: grpc.ClientUnaryCall | undefined;
      // grpc-js enforces the deadline; the guard only bounds the promise if it ever did not.
      const guard = setTimeout(() => {
        finish({ result: "failure", reason: "DEADLINE_EXCEEDED" });
        call?.cancel();
      }, timeoutMs + DEADLINE_GRACE_MS);
      try {
        call = client.Check(
          { service: this.options.service },
          { deadline: Date.now() + timeoutMs },
          (err, response) => {
            if (err) return finish({ result: "failure", reason: statusReason(err) });
            const status = response?.status ?? "UNKNOWN";
            finish(status === "SERVING" ? { result: "success" } : { result: "failure", reason: status });
          },
        );
      } catch (err) {
        finish({ result: "failure", reason: errorReason(err) });
      }
    });
  }

  watch(target: ProbeTarget, listener: WatchListener): WatchStream {
    let over = false;
    const end = (reason: string, unimplemented: boolean): void => {
      if (over) return;
      over = true;
      if (pooled) pooled.watching--;
      listener.ended({ reason, unimplemented });
    };
    let pooled: PooledClient | undefined;
    let call: grpc.ClientReadableStream<{ status?: string }> | undefined;
    try {
      if (this.closed) throw new Error("prober closed");
      pooled = this.pooledFor(target);
      pooled.watching++;
      call = pooled.client.Watch({ service: this.options.service }, {});
    } catch (err) {
      // Reported on the next turn, as a stream's end would be: the caller has its handle by then.
      const reason = errorReason(err);
      setImmediate(() => end(reason, false));
      return { close: () => (over = true) };
    }
    call.on("data", (response: { status?: string }) => {
      if (over) return;
      const status = response.status ?? "UNKNOWN";
      listener.result(status === "SERVING" ? { result: "success" } : { result: "failure", reason: status });
    });
    call.on("error", () => {}); // the status below says what happened
    call.on("status", (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) return end("Watch ended", false);
      end(statusReason(status), status.code === grpc.status.UNIMPLEMENTED);
    });
    return {
      close: () => {
        if (over) return;
        over = true;
        if (pooled) pooled.watching--;
        call?.cancel();
      },
    };
  }

  close(): void {
    this.closed = true;
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }

  private clientFor(target: ProbeTarget): HealthClient {
    return this.pooledFor(target).client;
  }

  private pooledFor(target: ProbeTarget): PooledClient {
    const now = Date.now();
    if (now - this.lastSweep > IDLE_CLIENT_MS) this.sweep(now);
    const address = target.host.includes(":")
      ? `[${target.host}]:${target.port}`
      : `${target.host}:${target.port}`;
    let pooled = this.clients.get(address);
    if (!pooled) {
      const Health = healthService();
      const client = new Health(address, this.credentials, this.channelOptions) as unknown as HealthClient;
      pooled = { client, lastUsed: now, watching: 0 };
      this.clients.set(address, pooled);
    }
    pooled.lastUsed = now;
    return pooled;
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [address, pooled] of this.clients) {
      if (pooled.watching === 0 && now - pooled.lastUsed > IDLE_CLIENT_MS) {
        pooled.client.close();
        this.clients.delete(address);
      }
    }
  }
}

/** `NOT_FOUND` (status 5: the server does not know the service), `UNAVAILABLE: ECONNREFUSED`, … */
export function statusReason(err: Pick<grpc.StatusObject, "code" | "details">): string {
  const name =
    (grpc.status as unknown as Record<number, string | undefined>)[err.code] ?? `status ${err.code}`;
  if (err.code !== grpc.status.UNAVAILABLE) return name;
  const errno = /\bE[A-Z]{3,}\b/.exec(err.details ?? "")?.[0];
  return errno ? `${name}: ${errno}` : name;
}

export function errorReason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
