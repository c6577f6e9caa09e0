/**
 * What every `protocol: grpc` listener is, whatever its engine: bound like any listener, counting its
 * active streams, refusing connections beyond `max_connections` or while draining (counted and
 * logged at most once per 10 s per reason), reporting each stream's outcome to the stream metrics
 * and the access log, and taking a reloaded config. An engine adds how it accepts connections,
 * drains them and closes them.
 */
import { readFileSync } from "node:fs";
import type { TlsOptions } from "node:tls";
import type { ListenerConfig } from "../config/config-schema.js";
import { durationMs } from "../config/config-units.js";
import type { Logger } from "../log/logger.js";
import { RateLimitedWarning } from "../log/rate-limited-warning.js";
import type { Metrics } from "../metrics/metrics.js";
import type { Listener } from "../net/listener.js";
import { bindServer, serverAddress, type BindOptions } from "../net/server-address.js";
import { GrpcStreamMetrics } from "./grpc-stream-metrics.js";
import type { StreamOutcome } from "./stream-outcome.js";

export interface GrpcListenerBaseDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly thread: string;
}

/**
 * The listener's access log (access-log/, which the engines hand in: it reads gRPC status names, so
 * this folder must not import it back).
 */
export interface StreamAccessLog {
  /** True when this stream's line is to be written (sampling). */
  take(): boolean;
  stream(cluster: string, outcome: StreamOutcome): void;
  configure(config: ListenerConfig): void;
}

/** Why a new connection was turned away. */
export type RefusalReason = "draining" | "max_connections";

export abstract class GrpcListenerBase implements Listener {
  protected abstract readonly server: Parameters<typeof bindServer>[0];
  protected readonly log: Logger;
  protected readonly labels: { listener: string; thread: string };
  protected idleMs: number;
  protected readonly handshakeMs: number;
  protected activeStreams = 0;
  protected draining = false;
  private readonly refusedWarning: RateLimitedWarning;
  private readonly streamMetrics: GrpcStreamMetrics;
  private readonly metrics: Metrics;

  protected constructor(
    public config: ListenerConfig,
    deps: GrpcListenerBaseDeps,
    engine: "frames" | "http2",
    private readonly accessLog: StreamAccessLog,
  ) {
    this.log = deps.log.child({ component: "grpc", listener: config.name, engine });
    this.metrics = deps.metrics;
    this.refusedWarning = new RateLimitedWarning(this.log, 10_000);
    this.labels = { listener: config.name, thread: deps.thread };
    this.streamMetrics = new GrpcStreamMetrics(deps.metrics, config.name);
    this.idleMs = durationMs(config.idle_timeout);
    this.handshakeMs = durationMs(config.handshake_timeout);
  }

  abstract stopAccepting(): void;
  abstract closeAll(): void;
  abstract idle(): Promise<void>;

  listen(host: string, port: number, options?: BindOptions): Promise<string> {
    return bindServer(this.server, host, port, options, (err) => this.log.error({ err }, "listener error"));
  }

  address(): string {
    return serverAddress(this.server);
  }

  /** Active streams. */
  get active(): number {
    return this.activeStreams;
  }

  reconfigure(config: ListenerConfig): void {
    this.config = config;
    this.idleMs = durationMs(config.idle_timeout);
    this.accessLog.configure(config);
  }

  /** Streams on removed endpoints end with their upstream pools; nothing is tracked per listener. */
  closeRemoved(): void {}

  /** Why a new connection must be turned away now (counted and logged), or undefined to accept it. */
  protected refusal(connections: number): RefusalReason | undefined {
    const reason = this.draining
      ? "draining"
      : connections >= this.config.max_connections
        ? "max_connections"
        : undefined;
    if (reason === undefined) return undefined;
    this.metrics.downstreamConnectionsRefused.inc({ listener: this.config.name, reason });
    this.refusedWarning.warn(reason, { reason }, "connection refused");
    return reason;
  }

  /** A connection was accepted / closed: the connection gauges and counter. */
  protected connectionOpened(): void {
    this.metrics.downstreamConnectionsTotal.inc(this.labels);
    this.metrics.downstreamConnectionsActive.inc(this.labels);
  }

  protected connectionClosed(): void {
    this.metrics.downstreamConnectionsActive.dec(this.labels);
  }

  /** A stream's outcome: the stream metrics, and the access log when sampled. */
  protected report(cluster: string, outcome: StreamOutcome): void {
    this.streamMetrics.report(cluster, outcome);
    if (this.accessLog.take()) this.accessLog.stream(cluster, outcome);
  }
}

/** The TLS side of a gRPC listener's server: its certificate, ALPN h2 only, client certificates with `client_ca`. */
export function listenerTlsOptions(tls: NonNullable<ListenerConfig["tls"]>): TlsOptions {
  return {
    cert: readFileSync(tls.cert),
    key: readFileSync(tls.key),
    ...(tls.client_ca !== undefined
      ? { ca: readFileSync(tls.client_ca), requestCert: true, rejectUnauthorized: true }
      : {}),
    ALPNProtocols: ["h2"],
  };
}
