/**
 * A `protocol: grpc` listener on the `frames` engine: Fulcrum's own HTTP/2 on `net` (h2c) or `tls`
 * (ALPN h2, client certificates with `client_ca`) sockets, every stream balanced on its own. The
 * same contract as the `http2` engine's GrpcListener: `max_connections` (beyond it GOAWAY and close),
 * `handshake_timeout` (TLS + preface + SETTINGS), `idle_timeout` (no active stream), the double
 * GOAWAY on drain, and the same metrics.
 */
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { AccessLog, type AccessLogSink } from "../../access-log/access-log.js";
import type { ListenerConfig } from "../../config/config-schema.js";
import { sizeBytes } from "../../config/config-units.js";
import type { HeaderList } from "../../h2/hpack-header-list.js";
import type { UpstreamCluster } from "../../cluster/upstream-cluster.js";
import { GrpcListenerBase, listenerTlsOptions, type GrpcListenerBaseDeps } from "../grpc-listener-base.js";
import { affinityKeyOf, queueKeysOf } from "../stream-endpoint-choice.js";
import type { StreamOutcome } from "../stream-outcome.js";
import { DownstreamConnection } from "./frames-downstream.js";
import type { FramesRoute } from "./frames-stream.js";
import type { FramesClusterPools } from "./frames-upstream-pool.js";

export interface FramesListenerDeps extends GrpcListenerBaseDeps {
  /** Resolved per stream, so a reload can swap the cluster under a running listener. */
  readonly cluster: () => UpstreamCluster;
  /** This thread's access-log output. */
  readonly accessLog: AccessLogSink;
  readonly pools: () => FramesClusterPools;
}

interface ConnectionState {
  idleTimer: NodeJS.Timeout | undefined;
  /** The idle_timeout `idleTimer` was started with. */
  idleMs: number;
  handshakeTimer: NodeJS.Timeout | undefined;
}

export class FramesListener extends GrpcListenerBase {
  protected readonly server: Server;
  private readonly conns = new Map<DownstreamConnection, ConnectionState>();
  private readonly maxHeaderListSize: number;

  constructor(
    config: ListenerConfig,
    private readonly deps: FramesListenerDeps,
  ) {
    super(config, deps, "frames", new AccessLog(config, deps.accessLog));
    this.maxHeaderListSize = sizeBytes(config.max_header_list_size);
    const tls = config.tls;
    if (tls) {
      const server = createTlsServer({
        ...listenerTlsOptions(tls),
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

  stopAccepting(): void {
    this.draining = true;
    if (this.server.listening) this.server.close();
    for (const conn of this.conns.keys()) conn.drain();
  }

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
    if (this.refusal(this.conns.size) !== undefined) {
      conn.goAway();
      return;
    }
    const state: ConnectionState = { idleTimer: undefined, idleMs: 0, handshakeTimer: undefined };
    this.conns.set(conn, state);
    this.connectionOpened();
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
    this.connectionClosed();
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
    const affinityKey = affinityKeyOf(cluster, clientAddress, request);
    const queueKeys = queueKeysOf(cluster, request);
    const perRequest = this.config.stream_balancing === "per_request";
    return { cluster, pools: this.deps.pools(), clientAddress, affinityKey, queueKeys, perRequest };
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
    this.report(cluster, outcome);
  }
}

function noop(): void {}
