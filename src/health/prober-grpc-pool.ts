/**
 * What the inference-server probers (Triton, TorchServe) share with the grpc.health.v1 prober: one
 * grpc-js client per endpoint, reused across probes so probing every interval rides one HTTP/2
 * connection; the same channel options and TLS settings; clients of removed endpoints closed after
 * they sat idle; and a unary call bounded by the probe's deadline that settles with a result, never
 * throws.
 */
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import {
  CHANNEL_OPTIONS,
  errorReason,
  statusReason,
  type GrpcHealthProberOptions,
} from "./prober-grpc-health.js";
import type { ProbeTarget } from "./prober.js";

export type GrpcProbeTls = GrpcHealthProberOptions["tls"];

/** Grace after the deadline before a call gives up on grpc-js and answers "DEADLINE_EXCEEDED" itself. */
const DEADLINE_GRACE_MS = 100;
/** A client unused this long belongs to a removed endpoint (or a very long interval) and is closed. */
const IDLE_CLIENT_MS = 10 * 60_000;

interface Pooled<C> {
  readonly client: C;
  lastUsed: number;
}

/** One client of `Service` per endpoint address. Throws (control plane) when the CA file cannot be read. */
export class GrpcProbeClients<C extends grpc.Client> {
  private readonly clients = new Map<string, Pooled<C>>();
  private readonly credentials: grpc.ChannelCredentials;
  private readonly channelOptions: grpc.ChannelOptions = { ...CHANNEL_OPTIONS };
  private lastSweep = Date.now();

  constructor(
    private readonly Service: grpc.ServiceClientConstructor,
    tls: GrpcProbeTls,
  ) {
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

  clientFor(target: ProbeTarget): C {
    const now = Date.now();
    if (now - this.lastSweep > IDLE_CLIENT_MS) this.sweep(now);
    const address = target.host.includes(":")
      ? `[${target.host}]:${target.port}`
      : `${target.host}:${target.port}`;
    let pooled = this.clients.get(address);
    if (!pooled) {
      const client = new this.Service(address, this.credentials, this.channelOptions) as unknown as C;
      pooled = { client, lastUsed: now };
      this.clients.set(address, pooled);
    }
    pooled.lastUsed = now;
    return pooled.client;
  }

  close(): void {
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [address, pooled] of this.clients) {
      if (now - pooled.lastUsed > IDLE_CLIENT_MS) {
        pooled.client.close();
        this.clients.delete(address);
      }
    }
  }
}

export type CallResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

type UnaryStarter<T> = (
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: T) => void,
) => grpc.ClientUnaryCall;

/**
 * Runs one unary call with `deadline` (epoch ms). grpc-js enforces the deadline; a guard timer only
 * bounds the promise if it ever did not. Failures settle as `{ ok: false, reason }` (status name, with
 * the errno for UNAVAILABLE).
 */
export function unaryProbeCall<T>(deadline: number, start: UnaryStarter<T>): Promise<CallResult<T>> {
  return new Promise((resolve) => {
    let done = false;
    let call: grpc.ClientUnaryCall | undefined;
    const finish = (result: CallResult<T>): void => {
      if (done) return;
      done = true;
      clearTimeout(guard);
      resolve(result);
    };
    const guard = setTimeout(
      () => {
        finish({ ok: false, reason: "DEADLINE_EXCEEDED" });
        call?.cancel();
      },
      Math.max(0, deadline - Date.now()) + DEADLINE_GRACE_MS,
    );
    try {
      call = start({ deadline }, (err, response) => {
        if (err) finish({ ok: false, reason: statusReason(err) });
        else if (response === undefined) finish({ ok: false, reason: "empty response" });
        else finish({ ok: true, value: response });
      });
    } catch (err) {
      finish({ ok: false, reason: errorReason(err) });
    }
  });
}
