/**
 * A `protocol: grpc` listener on the `http2` engine (node:http2): cleartext h2c, or TLS with ALPN h2
 * (and client certificates with `client_ca`). Every stream is balanced on its own by a
 * GrpcStreamProxy, so one long-lived client connection spreads its RPCs over all healthy workers.
 * Sessions: `max_connections` (beyond it GOAWAY and close), `handshake_timeout` (TLS + preface +
 * SETTINGS), `idle_timeout` (no active stream), drain with GOAWAY.
 */
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
import { normalizeClientAddress } from "../../balancer/picker.js";
import { AccessLog, type AccessLogSink } from "../../access-log/access-log.js";
import type { ListenerConfig } from "../../config/config-schema.js";
import { sizeBytes } from "../../config/config-units.js";
import type { UpstreamCluster } from "../../cluster/upstream-cluster.js";
import { GrpcListenerBase, listenerTlsOptions, type GrpcListenerBaseDeps } from "../grpc-listener-base.js";
import type { StreamOutcome, StreamOwner } from "../stream-outcome.js";
import type { ClusterPools } from "./cluster-pools.js";
import { affinityKeyOf, queueKeysOf } from "../stream-endpoint-choice.js";
import { GrpcStreamProxy, headerValue, type StreamRoute } from "./grpc-stream-proxy.js";
import { Http2StreamSplit } from "./http2-stream-split.js";
import { SPLIT_METHOD } from "../stream-split.js";
import { H2_TUNING } from "./h2-tuning.js";

const MAX_STREAM_ID = 2 ** 31 - 1;
/** How long the final GOAWAY waits for the PING round trip that follows the first one. */
const GOAWAY_PING_TIMEOUT_MS = 1000;
/** After an idle connection's GOAWAY, how long before the socket is closed whatever node:http2 waits for. */
const IDLE_CLOSE_GRACE_MS = 250;

export interface GrpcListenerDeps extends GrpcListenerBaseDeps {
  /** Resolved per stream, so a reload can swap the cluster under a running listener. */
  readonly cluster: () => UpstreamCluster;
  /** This thread's access-log output. */
  readonly accessLog: AccessLogSink;
  readonly pools: () => ClusterPools;
}

/** One client session: its streams report here (an object per session, not a closure per stream). */
class SessionState implements StreamOwner {
  active = 0;
  idleTimer: NodeJS.Timeout | undefined;
  handshakeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly listener: GrpcListener,
    readonly session: ServerHttp2Session,
  ) {}

  streamDone(cluster: string, outcome: StreamOutcome): void {
    this.active--;
    this.listener.streamDone(this, cluster, outcome);
  }
}

export class GrpcListener extends GrpcListenerBase {
  protected readonly server: Http2Server | Http2SecureServer;
  private readonly sessions = new Map<ServerHttp2Session, SessionState>();

  constructor(
    config: ListenerConfig,
    private readonly deps: GrpcListenerDeps,
  ) {
    super(config, deps, "http2", new AccessLog(config, deps.accessLog));
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
          ...listenerTlsOptions(tls),
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

  closeAll(): void {
    for (const session of this.sessions.keys()) session.destroy();
  }

  async idle(): Promise<void> {
    while (this.sessions.size > 0 || this.activeStreams > 0) await new Promise((r) => setTimeout(r, 50));
  }

  private onSession(session: ServerHttp2Session): void {
    session.on("error", noop);
    if (this.refusal(this.sessions.size) !== undefined) {
      session.close();
      setImmediate(() => session.destroy());
      return;
    }
    const state = new SessionState(this, session);
    this.sessions.set(session, state);
    this.connectionOpened();
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
      this.connectionClosed();
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
    const clientAddress = normalizeClientAddress(session.socket?.remoteAddress);
    const fields = { get: (name: string) => headerValue(headers[name]) };
    const affinityKey = affinityKeyOf(cluster, clientAddress, fields);
    const queueKeys = queueKeysOf(cluster, fields);
    const perRequest = this.config.stream_balancing === "per_request";
    const pools = this.deps.pools();
    const route: StreamRoute = { cluster, pools, clientAddress, affinityKey, queueKeys, perRequest };
    if (perRequest && headers[":path"] === SPLIT_METHOD) new Http2StreamSplit(stream, headers, route, state);
    else new GrpcStreamProxy(stream, headers, route, state);
  }

  /** A stream of `state`'s session ended. */
  streamDone(state: SessionState, cluster: string, outcome: StreamOutcome): void {
    this.activeStreams--;
    if (state.active === 0) this.armIdle(state.session, state);
    this.report(cluster, outcome);
  }
}

function noop(): void {}
