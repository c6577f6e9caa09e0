/**
 * A `protocol: tcp` listener: accept → pick → connect (with retry on another endpoint) → relay both
 * ways (tcp-relay.ts) → close both and release the endpoint exactly once. The accepted socket stays
 * paused until the upstream is connected, so client bytes that arrive meanwhile wait in the kernel
 * and are forwarded.
 */
import { bindServer, serverAddress, type BindOptions } from "../net/server-address.js";
import { createServer, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { ListenerConfig } from "../config/config-schema.js";
import { durationMs } from "../config/config-units.js";
import { AccessLog, type AccessLogSink, type ConnectionAccess } from "../access-log/access-log.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import type { CounterTally, HistogramTally } from "../metrics/metrics-tally.js";
import { normalizeClientAddress } from "../balancer/picker.js";
import type { UpstreamCluster } from "../cluster/upstream-cluster.js";
import type { Listener } from "../net/listener.js";
import type { Endpoint } from "../balancer/endpoint-set.js";
import { connectUpstream, type ConnectFailure } from "./tcp-connect.js";
import { TcpRelay } from "./tcp-relay.js";
import { encodeProxyHeader } from "./proxy-protocol.js";
import { RateLimitedWarning } from "../log/rate-limited-warning.js";
import { LiveSet, type LiveSetMember } from "../net/live-set.js";

/** Why a downstream connection was closed without being served; also the metric's `reason` label. */
export type RefusalReason =
  "max_connections" | "no_healthy_endpoint" | "drained" | "connect_failed" | "draining" | "at_capacity";

/**
 * How a connection ended, the access log's `close_reason`: both sides finished (`done`), a side reset
 * or failed, the idle timeout, Fulcrum closed it (`closed`: drain timeout, endpoint removed by a
 * reload), the client left before an endpoint was connected (`client_closed`), or a refusal.
 */
export type CloseReason =
  | "done"
  | "client_reset"
  | "client_error"
  | "upstream_reset"
  | "upstream_error"
  | "idle_timeout"
  | "closed"
  | "client_closed"
  | RefusalReason;

export interface TcpListenerDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly thread: string;
  /** Resolves the listener's cluster at accept time, so a reload can swap clusters under it. */
  readonly cluster: () => UpstreamCluster;
  /** This thread's access-log output. */
  readonly accessLog: AccessLogSink;
}

export class TcpListener implements Listener {
  private readonly server: Server;
  /**
   * Every open connection, with the endpoint it was relayed to once it was (so a reload can end
   * those on removed endpoints).
   */
  private readonly connections = new LiveSet<OpenConnection>();
  private readonly log: Logger;
  private readonly refusedWarning: RateLimitedWarning;
  private readonly labels: { listener: string; thread: string };
  /** Label sets of the per-connection metrics, built once per config rather than per connection. */
  private tallies: ConnectionTallies;
  private draining = false;
  private idleMs: number;
  private readonly accessLog: AccessLog;

  constructor(
    public config: ListenerConfig,
    private readonly deps: TcpListenerDeps,
  ) {
    this.log = deps.log.child({ component: "tcp", listener: config.name });
    this.refusedWarning = new RateLimitedWarning(this.log, 10_000);
    this.labels = { listener: config.name, thread: deps.thread };
    this.idleMs = durationMs(config.idle_timeout);
    this.tallies = new ConnectionTallies(deps.metrics, config.name);
    this.accessLog = new AccessLog(config, deps.accessLog);
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) =>
      this.accept(socket),
    );
  }

  /** Binds `listen`; resolves with the bound address (`host:port`), rejects when it cannot bind. */
  listen(host: string, port: number, options?: BindOptions): Promise<string> {
    return bindServer(this.server, host, port, options, (err) => this.log.error({ err }, "listener error"));
  }

  address(): string {
    return serverAddress(this.server);
  }

  /** Active downstream connections of this listener. */
  get active(): number {
    return this.connections.size;
  }

  /**
   * Stops accepting; open connections continue until they end or `closeAll()`. (The server's own
   * close callback waits for every connection, so it is not what a drain waits on: see `idle()`.)
   */
  stopAccepting(): void {
    this.draining = true;
    if (this.server.listening) this.server.close();
  }

  /** Takes a reloaded config with the same `listen` and `protocol`; new connections use it. */
  reconfigure(config: ListenerConfig): void {
    this.config = config;
    this.idleMs = durationMs(config.idle_timeout);
    this.tallies = new ConnectionTallies(this.deps.metrics, config.name);
    this.accessLog.configure(config);
  }

  /** Ends connections whose endpoint a reload removed (after their drain_timeout). */
  closeRemoved(): void {
    for (const c of this.connections.values()) {
      if (!c.endpoint?.removed) continue;
      c.closeReason ??= "closed";
      c.socket.destroy();
    }
  }

  /** Destroys every open connection (end of drain, or immediate stop). */
  closeAll(): void {
    for (const c of this.connections.values()) {
      c.closeReason ??= "closed";
      c.socket.destroy();
    }
  }

  /** Resolves when no connection is open. */
  async idle(): Promise<void> {
    while (this.connections.size > 0) await new Promise((r) => setTimeout(r, 50));
  }

  private accept(client: Socket): void {
    client.on("error", noop); // until relayed, a reset must not become an uncaught error
    const max = this.config.max_connections;
    if (this.draining) return this.refuse(client, "draining");
    if (this.connections.size >= max) return this.refuse(client, "max_connections");
    const open: OpenConnection = {
      socket: client,
      endpoint: undefined,
      liveIndex: -1,
      closeReason: undefined,
    };
    this.connections.add(open);
    const metrics = this.deps.metrics;
    metrics.downstreamConnectionsTotal.inc(this.labels);
    metrics.downstreamConnectionsActive.inc(this.labels);
    const started = performance.now();
    const cluster = this.deps.cluster();
    // Sampled at accept: the client's address must be read while the socket is open.
    const logged = this.accessLog.take() ? new ConnectionLog(client, cluster.name, started) : undefined;
    let closed = false;
    let relayed = false;
    client.on("close", () => {
      closed = true;
      this.connections.delete(open);
      metrics.downstreamConnectionsActive.dec(this.labels);
      if (logged && !relayed) this.accessLog.connection(logged.ended(open.closeReason ?? "client_closed"));
    });
    if (this.idleMs > 0) {
      client.setTimeout(this.idleMs, () => {
        open.closeReason ??= "idle_timeout";
        client.destroy();
      });
    }
    // Only ip_hash and source_ip affinity read the client's address: each read is a getpeername().
    const bySource = cluster.config.affinity?.key === "source_ip";
    const clientAddress =
      bySource || cluster.config.policy === "ip_hash"
        ? normalizeClientAddress(client.remoteAddress)
        : undefined;
    const affinityKey = bySource ? clientAddress : undefined;
    const relay = new TcpRelay(client);
    let onAbort: (() => void) | undefined;
    client.once("close", () => onAbort?.());
    const request = {
      pick: { clientAddress, affinityKey },
      aborted: () => closed,
      onread: relay.onread,
      onAbort: (leave: () => void) => (onAbort = leave),
    };
    connectUpstream(cluster, request, (outcome) => {
      if (logged) logged.picked(outcome.endpoint, outcome.attempts, affinityKey !== undefined);
      if (outcome.kind === "failure") {
        this.refused(outcome.failure, cluster.name);
        open.closeReason ??= outcome.failure.reason;
        client.destroy();
        return;
      }
      const { endpoint, socket: upstream } = outcome;
      if (closed) {
        upstream.destroy();
        cluster.release(endpoint);
        return;
      }
      if (this.config.proxy_protocol !== "none") {
        upstream.write(
          encodeProxyHeader(this.config.proxy_protocol, {
            sourceAddress: client.remoteAddress ?? "",
            sourcePort: client.remotePort ?? 0,
            destinationAddress: client.localAddress ?? "",
            destinationPort: client.localPort ?? 0,
          }),
        );
      }
      client.off("error", noop);
      open.endpoint = endpoint;
      relayed = true;
      const tallies = this.tallies;
      const accessLog = this.accessLog;
      relay.start(upstream, {
        released: () => {
          cluster.release(endpoint);
          cluster.connectionFinished(endpoint, performance.now() - started);
          tallies.bytesIn.add(client.bytesRead);
          tallies.bytesOut.add(client.bytesWritten);
          tallies.duration(cluster.name).observe((performance.now() - started) / 1000);
          if (logged) accessLog.connection(logged.ended(open.closeReason ?? "done"));
        },
        failed: (upstreamFault, reset) => {
          if (upstreamFault) cluster.upstreamReset(endpoint);
          open.closeReason ??= upstreamFault
            ? reset
              ? "upstream_reset"
              : "upstream_error"
            : reset
              ? "client_reset"
              : "client_error";
        },
      });
    });
  }

  private refused(failure: ConnectFailure, cluster: string): void {
    const reason: RefusalReason = failure.reason;
    this.deps.metrics.downstreamConnectionsRefused.inc({ listener: this.config.name, reason });
    this.refusedWarning.warn(reason, { cluster, reason, detail: failure.detail }, "connection refused");
  }

  private refuse(client: Socket, reason: RefusalReason): void {
    this.deps.metrics.downstreamConnectionsRefused.inc({ listener: this.config.name, reason });
    this.refusedWarning.warn(reason, { reason }, "connection refused");
    if (this.accessLog.take()) {
      this.accessLog.connection(
        new ConnectionLog(client, this.config.cluster, performance.now()).ended(reason),
      );
    }
    client.destroy();
  }
}

/** What the access line of one sampled connection needs, gathered as the connection goes. */
class ConnectionLog {
  private readonly client: string | undefined;
  private endpoint: string | undefined;
  private attempts = 0;
  private route: "affinity" | "policy" | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly cluster: string,
    private readonly started: number,
  ) {
    this.client = normalizeClientAddress(socket.remoteAddress);
  }

  /** The connect outcome: the endpoint connected (or last tried), after how many attempts. */
  picked(endpoint: Endpoint | undefined, attempts: number, byAffinity: boolean): void {
    this.endpoint = endpoint?.address;
    this.attempts = attempts;
    if (endpoint) this.route = byAffinity ? "affinity" : "policy";
  }

  ended(closeReason: CloseReason): ConnectionAccess {
    return {
      client: this.client,
      cluster: this.cluster,
      endpoint: this.endpoint,
      closeReason,
      seconds: (performance.now() - this.started) / 1000,
      bytesIn: this.socket.bytesRead,
      bytesOut: this.socket.bytesWritten,
      retries: this.attempts > 1 ? this.attempts - 1 : 0,
      route: this.route,
    };
  }
}

/** An open downstream connection, with the endpoint it was relayed to once it was. */
interface OpenConnection extends LiveSetMember {
  readonly socket: Socket;
  endpoint: Endpoint | undefined;
  /** Why it is ending, once something decided (the first reason wins). */
  closeReason: CloseReason | undefined;
}

/** The metric handles a finished connection counts into (metrics-tally.ts), resolved once per listener. */
class ConnectionTallies {
  readonly bytesIn: CounterTally<"listener" | "direction">;
  readonly bytesOut: CounterTally<"listener" | "direction">;
  private readonly durations = new Map<string, HistogramTally<"listener" | "cluster">>();

  constructor(
    private readonly metrics: Metrics,
    private readonly listener: string,
  ) {
    this.bytesIn = metrics.bytesTally({ listener, direction: "in" });
    this.bytesOut = metrics.bytesTally({ listener, direction: "out" });
  }

  /** Connection durations of `cluster` (a reload may change the listener's cluster). */
  duration(cluster: string): HistogramTally<"listener" | "cluster"> {
    let t = this.durations.get(cluster);
    if (!t) {
      t = this.metrics.streamDuration.tally({ listener: this.listener, cluster });
      this.durations.set(cluster, t);
    }
    return t;
  }
}

function noop(): void {}
