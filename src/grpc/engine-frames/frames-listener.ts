/**
 * A `protocol: grpc` listener on the `frames` engine: Fulcrum's own HTTP/2 on `net` (h2c) or `tls`
 * (ALPN h2, client certificates with `client_ca`) sockets, every stream balanced on its own. The
 * same contract as the `http2` engine's GrpcListener: `max_connections` (beyond it GOAWAY and close),
 * `handshake_timeout` (TLS + preface + SETTINGS), `idle_timeout` (no active stream), the double
 * GOAWAY on drain, and the same metrics.
 */
import { readFileSync } from "node:fs";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import type { ListenerConfig } from "../../config/config-schema.js";
import { durationMs, sizeBytes } from "../../config/config-units.js";
import type { StreamOutcome } from "../engine-http2/grpc-stream-proxy.js";
import { GrpcStreamMetrics } from "../grpc-stream-metrics.js";
import { AccessLog, type AccessLogSink } from "../../access-log/access-log.js";
import type { Logger } from "../../log/logger.js";
import { RateLimitedWarning } from "../../log/rate-limited-warning.js";
import type { Metrics } from "../../metrics/metrics.js";
import type { ClusterRuntime } from "../../runtime/cluster-runtime.js";
import type { Listener } from "../../net/listener.js";
import { bindServer, serverAddress, type BindOptions } from "../../net/server-address.js";
import { DownstreamConnection } from "./frames-downstream.js";
import type { FramesClusterPools } from "./frames-upstream-pool.js";
import type { FramesRoute } from "./frames-stream.js";
import type { HeaderList } from "../../h2/hpack-header-list.js";

export interface FramesListenerDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly thread: string;
  /** Resolved per stream, so a reload can swap the cluster under a running listener. */
  readonly cluster: () => ClusterRuntime;
  readonly pools: () => FramesClusterPools;
  /** This thread's access-log output. */
  readonly accessLog: AccessLogSink;
}

interface ConnectionState {
  idleTimer: NodeJS.Timeout | undefined;
  /** The idle_timeout `idleTimer` was started with. */
  idleMs: number;
  handshakeTimer: NodeJS.Timeout | undefined;
}

export class FramesListener implements Listener {
  private readonly server: Server;
  private readonly conns = new Map<DownstreamConnection, ConnectionState>();
  private readonly log: Logger;
  private readonly refusedWarning: RateLimitedWarning;
  private readonly labels: { listener: string; thread: string };
  private idleMs: number;
  private readonly handshakeMs: number;
  private readonly maxHeaderListSize: number;
  private activeStreams = 0;
  private readonly streamMetrics: GrpcStreamMetrics;
  private readonly accessLog: AccessLog;
  private draining = false;

  constructor(
    public config: ListenerConfig,
    private readonly deps: FramesListenerDeps,
  ) {
    this.log = deps.log.child({ component: "grpc", listener: config.name, engine: "frames" });
    this.refusedWarning = new RateLimitedWarning(this.log, 10_000);
    this.labels = { listener: config.name, thread: deps.thread };
    this.streamMetrics = new GrpcStreamMetrics(deps.metrics, config.name);
    this.accessLog = new AccessLog(config, deps.accessLog);
    this.idleMs = durationMs(config.idle_timeout);
    this.handshakeMs = durationMs(config.handshake_timeout);
    this.maxHeaderListSize = sizeBytes(config.max_header_list_size);
    const tls = config.tls;
    if (tls) {
      const server = createTlsServer({
        cert: readFileSync(tls.cert),
        key: readFileSync(tls.key),
        ...(tls.client_ca !== undefined
          ? { ca: readFileSync(tls.client_ca), requestCert: true, rejectUnauthorized: true }
          : {}),
        ALPNProtocols: ["h2"],
        handshakeTimeout: this.handshakeMs > 0 ? this.handshakeMs : undefined,
        allowHalfOpen: true,
      });
      server.on("secureConnection", (socket: TLSSocket) => {
        if (socket.alpnProtocol !== "h2") {
          socket.destroy();
          return;
        }
        this.onSocket(socket);
      });
      server.on("tlsClientError", (err: Error) =>
        this.log.debug({ err: err.message }, "TLS handshake failed"),
      );
      this.server = server;
    } else {
      this.server = createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) =>
        this.onSocket(socket),
      );
    }
  }

  listen(host: string, port: number, options?: BindOptions): Promise<string> {
    return bindServer(this.server, host, port, options, (err) => this.log.error({ err }, "listener error"));
  }

  address(): string {
    return serverAddress(this.server);
  }

  get active(): number {
    return this.activeStreams;
  }

  stopAccepting(): void {
    this.draining = true;
    if (this.server.listening) this.server.close();
    for (const conn of this.conns.keys()) conn.drain();
  }

  reconfigure(config: ListenerConfig): void {
    this.config = config;
    this.idleMs = durationMs(config.idle_timeout);
    this.accessLog.configure(config);
  }

  /** Streams on removed endpoints end with their upstream pools; nothing is tracked per listener. */
  closeRemoved(): void {}

  closeAll(): void {
    for (const conn of [...this.conns.keys()]) conn.destroy("closed by Fulcrum");
  }

  async idle(): Promise<void> {
    while (this.conns.size > 0 || this.activeStreams > 0) await new Promise((r) => setTimeout(r, 50));
  }

  private onSocket(socket: Socket): void {
    socket.on("error", noop);
    const conn = new DownstreamConnection(socket, this.maxHeaderListSize, {
      route: (request, clientAddress) => this.route(request, clientAddress),
      scheme: () => this.deps.pools().scheme,
      onStreamStart: (c) => this.onStreamStart(c),
      onStreamDone: (c, outcome, cluster) => this.onStreamDone(c, outcome, cluster),
      onHandshake: (c) => clearTimeout(this.conns.get(c)?.handshakeTimer),
      onClosed: (c) => this.onClosed(c),
    });
    if (this.draining || this.conns.size >= this.config.max_connections) {
      const reason = this.draining ? "draining" : "max_connections";
      this.deps.metrics.downstreamConnectionsRefused.inc({ listener: this.config.name, reason });
      this.refusedWarning.warn(reason, { reason }, "connection refused");
      conn.goAway();
      return;
    }
    const state: ConnectionState = { idleTimer: undefined, idleMs: 0, handshakeTimer: undefined };
    this.conns.set(conn, state);
    this.deps.metrics.downstreamConnectionsTotal.inc(this.labels);
    this.deps.metrics.downstreamConnectionsActive.inc(this.labels);
    if (this.handshakeMs > 0) {
      state.handshakeTimer = setTimeout(() => {
        if (!conn.isHandshaken) conn.destroy("handshake timeout");
      }, this.handshakeMs);
    }
    this.armIdle(conn, state);
  }

  private onClosed(conn: DownstreamConnection): void {
    const state = this.conns.get(conn);
    if (!state) return;
    clearTimeout(state.handshakeTimer);
    clearTimeout(state.idleTimer);
    this.conns.delete(conn);
    this.deps.metrics.downstreamConnectionsActive.dec(this.labels);
  }

  /**
   * (Re)starts the idle timer. A timer that exists is refreshed rather than replaced: at one stream
   * at a time this runs per stream, and a refresh allocates nothing.
   */
  private armIdle(conn: DownstreamConnection, state: ConnectionState): void {
    if (state.idleTimer && state.idleMs === this.idleMs) {
      state.idleTimer.refresh();
      return;
    }
    // First arming, or a reload changed idle_timeout.
    clearTimeout(state.idleTimer);
    state.idleTimer = undefined;
    state.idleMs = this.idleMs;
    if (this.idleMs <= 0) return;
    state.idleTimer = setTimeout(() => {
      if (conn.active === 0 && !conn.closed) conn.goAway();
    }, this.idleMs);
  }

  private route(request: HeaderList, clientAddress: string | undefined): FramesRoute {
    const cluster = this.deps.cluster();
    const key = cluster.config.affinity?.key;
    let affinityKey: string | undefined;
    if (key?.startsWith("header:")) affinityKey = request.get(key.slice(7).toLowerCase());
    else if (key === "source_ip") affinityKey = clientAddress;
    return { cluster, pools: this.deps.pools(), clientAddress, affinityKey };
  }

  private onStreamStart(_conn: DownstreamConnection): void {
    // The idle timer keeps running: when it fires with streams active it does nothing, and the
    // last stream to end starts it again.
    this.activeStreams++;
  }

  private onStreamDone(conn: DownstreamConnection, outcome: StreamOutcome, cluster: string): void {
    this.activeStreams--;
    const state = this.conns.get(conn);
    if (state && conn.active === 0) this.armIdle(conn, state);
    this.streamMetrics.report(cluster, outcome);
    if (this.accessLog.take()) this.accessLog.stream(cluster, outcome);
  }
}

function noop(): void {}
