/**
 * A `protocol: grpc` listener on the `http2` engine (node:http2): cleartext h2c, or TLS with ALPN h2
 * (and client certificates with `client_ca`). Every stream is balanced on its own by a
 * GrpcStreamProxy, so one long-lived client connection spreads its RPCs over all healthy workers.
 * Sessions: `max_connections` (beyond it GOAWAY and close), `handshake_timeout` (TLS + preface +
 * SETTINGS), `idle_timeout` (no active stream), drain with GOAWAY.
 */
import { bindServer, serverAddress, type BindOptions } from "../../net/server-address.js";
import {
  constants,
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from "node:http2";
import { readFileSync } from "node:fs";
import { normalizeClientAddress } from "../../balancer/picker.js";
import type { ListenerConfig } from "../../config/config-schema.js";
import { durationMs, sizeBytes } from "../../config/config-units.js";
import { AccessLog, type AccessLogSink } from "../../access-log/access-log.js";
import type { Logger } from "../../log/logger.js";
import { RateLimitedWarning } from "../../log/rate-limited-warning.js";
import type { Metrics } from "../../metrics/metrics.js";
import type { ClusterRuntime } from "../../runtime/cluster-runtime.js";
import type { Listener } from "../../net/listener.js";
import type { ClusterPools } from "./cluster-pools.js";
import { GrpcStreamProxy, type StreamOutcome, type StreamRoute } from "./grpc-stream-proxy.js";
import { GrpcStreamMetrics } from "../grpc-stream-metrics.js";
import { H2_TUNING } from "./h2-tuning.js";

const MAX_STREAM_ID = 2 ** 31 - 1;
/** How long the final GOAWAY waits for the PING round trip that follows the first one. */
const GOAWAY_PING_TIMEOUT_MS = 1000;
/** After an idle connection's GOAWAY, how long before the socket is closed whatever node:http2 waits for. */
const IDLE_CLOSE_GRACE_MS = 250;

export interface GrpcListenerDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly thread: string;
  /** Resolved per stream, so a reload can swap the cluster under a running listener. */
  readonly cluster: () => ClusterRuntime;
  readonly pools: () => ClusterPools;
  /** This thread's access-log output. */
  readonly accessLog: AccessLogSink;
}

interface SessionState {
  active: number;
  idleTimer: NodeJS.Timeout | undefined;
  handshakeTimer: NodeJS.Timeout | undefined;
}

export class GrpcListener implements Listener {
  private readonly server: Http2Server | Http2SecureServer;
  private readonly sessions = new Map<ServerHttp2Session, SessionState>();
  private readonly log: Logger;
  private readonly refusedWarning: RateLimitedWarning;
  private readonly labels: { listener: string; thread: string };
  private idleMs: number;
  private readonly handshakeMs: number;
  private activeStreams = 0;
  private readonly streamMetrics: GrpcStreamMetrics;
  private readonly accessLog: AccessLog;
  private draining = false;

  constructor(
    public config: ListenerConfig,
    private readonly deps: GrpcListenerDeps,
  ) {
    this.log = deps.log.child({ component: "grpc", listener: config.name });
    this.refusedWarning = new RateLimitedWarning(this.log, 10_000);
    this.labels = { listener: config.name, thread: deps.thread };
    this.streamMetrics = new GrpcStreamMetrics(deps.metrics, config.name);
    this.accessLog = new AccessLog(config, deps.accessLog);
    this.idleMs = durationMs(config.idle_timeout);
    this.handshakeMs = durationMs(config.handshake_timeout);
    const maxHeaderListSize = sizeBytes(config.max_header_list_size);
    const options = {
      settings: {
        enablePush: false,
        initialWindowSize: H2_TUNING.streamWindow,
        maxConcurrentStreams: H2_TUNING.maxConcurrentStreams,
        maxHeaderListSize,
      },
      maxSessionMemory: H2_TUNING.maxSessionMemoryMiB,
      maxHeaderListPairs: H2_TUNING.maxHeaderListPairs,
      allowHTTP1: false,
      // A client that half-closes after its request still gets the response (RFC 9293 half-close).
      allowHalfOpen: true,
    };
    const tls = config.tls;
    this.server = tls
      ? createSecureServer({
          ...options,
          cert: readFileSync(tls.cert),
          key: readFileSync(tls.key),
          ...(tls.client_ca !== undefined
            ? { ca: readFileSync(tls.client_ca), requestCert: true, rejectUnauthorized: true }
            : {}),
          ALPNProtocols: ["h2"],
          handshakeTimeout: this.handshakeMs,
          unknownProtocolTimeout: this.handshakeMs,
        })
      : createServer(options);
    this.server.on("session", (session: ServerHttp2Session) => this.onSession(session));
    this.server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) =>
      this.onStream(stream, headers),
    );
    this.server.on("sessionError", (err) => this.log.debug({ err }, "downstream session error"));
    this.server.on("tlsClientError", (err: Error) =>
      this.log.debug({ err: err.message }, "TLS handshake failed"),
    );
    this.server.on("unknownProtocol", (socket: { destroy(): void }) => socket.destroy());
  }

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

  /**
   * Stops accepting and drains every client session with the double GOAWAY of RFC 9113 §6.8: first
   * a GOAWAY naming the highest possible stream id (streams the client is opening right now still
   * count), then, one PING round trip later, the final GOAWAY with the last stream really accepted.
   * Streams in flight finish.
   */
  stopAccepting(): void {
    this.draining = true;
    if (this.server.listening) this.server.close();
    for (const session of this.sessions.keys()) {
      if (session.closed || session.destroyed) continue;
      session.goaway(constants.NGHTTP2_NO_ERROR, MAX_STREAM_ID);
      const final = (): void => {
        if (!session.closed && !session.destroyed) session.close();
      };
      const fallback = setTimeout(final, GOAWAY_PING_TIMEOUT_MS);
      const pinged = session.ping(() => {
        clearTimeout(fallback);
        final();
      });
      if (!pinged) {
        clearTimeout(fallback);
        final();
      }
    }
  }

  reconfigure(config: ListenerConfig): void {
    this.config = config;
    this.idleMs = durationMs(config.idle_timeout);
    this.accessLog.configure(config);
  }

  /** Streams on removed endpoints end with their upstream pools; nothing is tracked per listener. */
  closeRemoved(): void {}

  closeAll(): void {
    for (const session of this.sessions.keys()) session.destroy();
  }

  async idle(): Promise<void> {
    while (this.sessions.size > 0 || this.activeStreams > 0) await new Promise((r) => setTimeout(r, 50));
  }

  private onSession(session: ServerHttp2Session): void {
    session.on("error", noop);
    if (this.draining || this.sessions.size >= this.config.max_connections) {
      const reason = this.draining ? "draining" : "max_connections";
      this.deps.metrics.downstreamConnectionsRefused.inc({ listener: this.config.name, reason });
      this.refusedWarning.warn(reason, { reason }, "connection refused");
      session.close();
      setImmediate(() => session.destroy());
      return;
    }
    const state: SessionState = { active: 0, idleTimer: undefined, handshakeTimer: undefined };
    this.sessions.set(session, state);
    this.deps.metrics.downstreamConnectionsTotal.inc(this.labels);
    this.deps.metrics.downstreamConnectionsActive.inc(this.labels);
    if (this.handshakeMs > 0) {
      state.handshakeTimer = setTimeout(() => session.destroy(), this.handshakeMs);
      session.once("remoteSettings", () => clearTimeout(state.handshakeTimer));
    }
    session.once("connect", () => session.setLocalWindowSize(H2_TUNING.connectionWindow));
    if ((session as { connecting?: boolean }).connecting === false) {
      session.setLocalWindowSize(H2_TUNING.connectionWindow);
    }
    this.armIdle(session, state);
    session.once("close", () => {
      clearTimeout(state.handshakeTimer);
      clearTimeout(state.idleTimer);
      this.sessions.delete(session);
      this.deps.metrics.downstreamConnectionsActive.dec(this.labels);
    });
  }

  private armIdle(session: ServerHttp2Session, state: SessionState): void {
    if (this.idleMs <= 0) return;
    clearTimeout(state.idleTimer);
    state.idleTimer = setTimeout(() => {
      if (state.active !== 0 || session.closed) return;
      session.close();
      // close() sends GOAWAY and waits for nghttp2 to finish what it is reading: a client trickling
      // a HEADERS frame a byte at a time (slowloris) would hold the connection until its frame ends.
      // No stream of ours is open, so once the GOAWAY had time to leave, the connection goes.
      setTimeout(() => {
        if (state.active === 0 && !session.destroyed) session.destroy();
      }, IDLE_CLOSE_GRACE_MS).unref();
    }, this.idleMs);
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const session = stream.session as ServerHttp2Session | undefined;
    const state = session ? this.sessions.get(session) : undefined;
    if (!session || !state) {
      stream.close();
      return;
    }
    state.active++;
    this.activeStreams++;
    clearTimeout(state.idleTimer);
    const cluster = this.deps.cluster();
    const pools = this.deps.pools();
    const key = cluster.config.affinity?.key;
    const route: StreamRoute = {
      cluster,
      pools,
      affinityHeader: key?.startsWith("header:") ? key.slice(7).toLowerCase() : undefined,
      sourceAffinity: key === "source_ip",
      upstreamScheme: pools.scheme,
    };
    const clientAddress = normalizeClientAddress(session.socket?.remoteAddress);
    new GrpcStreamProxy(stream, headers, clientAddress, route, (outcome) => {
      state.active--;
      this.activeStreams--;
      if (state.active === 0) this.armIdle(session, state);
      this.report(cluster.name, outcome);
    });
  }

  private report(cluster: string, outcome: StreamOutcome): void {
    this.streamMetrics.report(cluster, outcome);
    if (this.accessLog.take()) this.accessLog.stream(cluster, outcome);
  }
}

function noop(): void {}
