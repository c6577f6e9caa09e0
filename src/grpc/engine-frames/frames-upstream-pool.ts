/**
 * The `frames` engine's connections to one endpoint, and to every endpoint of a cluster. A stream goes
 * on an open connection with a free slot under the worker's MAX_CONCURRENT_STREAMS; when none has
 * one, another connection is opened (`connect_timeout` covers TCP, TLS and the worker's SETTINGS).
 * Connect failures back off exponentially (100 ms doubling to 5 s) so a dead endpoint costs nothing
 * per stream. The same contract as the `http2` engine's UpstreamPool.
 */
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import type { Endpoint } from "../../balancer/endpoint-set.js";
import type { ClusterConfig } from "../../config/config-schema.js";
import { durationMs } from "../../config/config-units.js";
import type { Logger } from "../../log/logger.js";
import { ConnectBackoff } from "../connect-backoff.js";
import { ClusterPoolSet, type EndpointPool } from "../cluster-pool-set.js";
import { tlsOptionsOf, type UpstreamTls } from "../upstream-tls.js";
import { SocketLink } from "./frames-socket-link.js";
import { UpstreamConnection, type UpstreamEvents, type UpstreamState } from "./frames-upstream.js";

export type ConnectionResult =
  | { readonly kind: "ok"; readonly conn: UpstreamConnection }
  | { readonly kind: "failed"; readonly reason: string };

type Waiter = (result: ConnectionResult) => void;

export interface FramesPoolOptions {
  readonly connectTimeoutMs: number;
  readonly maxHeaderListSize: number;
  readonly tls: UpstreamTls | undefined;
  readonly log: Logger;
}

export class FramesUpstreamPool implements UpstreamEvents, EndpointPool {
  private readonly conns: UpstreamConnection[] = [];
  /** Waiters per connection being set up, and the slots promised to them. */
  private readonly waiters = new Map<UpstreamConnection, Waiter[]>();
  private readonly timers = new Map<UpstreamConnection, NodeJS.Timeout>();
  /** Why a connection's socket failed, for the streams that waited on it. */
  private readonly failureReasons = new WeakMap<UpstreamConnection, string>();
  private readonly backoff = new ConnectBackoff();
  private closed = false;
  private readonly tlsOptions: ConnectionOptions | undefined;

  constructor(
    readonly endpoint: Endpoint,
    private readonly options: FramesPoolOptions,
  ) {
    this.tlsOptions = options.tls ? tlsOptionsOf(options.tls, endpoint.host) : undefined;
  }

  /** An open connection with a free stream slot now, or undefined. */
  tryAcquire(): UpstreamConnection | undefined {
    for (const c of this.conns) if (c.hasSlot) return c;
    return undefined;
  }

  /** Waits for a connection with a free slot: joins one being set up, or opens another. */
  acquire(done: Waiter): void {
    const ready = this.tryAcquire();
    if (ready) return done({ kind: "ok", conn: ready });
    if (this.closed) return done({ kind: "failed", reason: "pool closed" });
    const backingOff = this.backoff.refusal();
    if (backingOff !== undefined) return done({ kind: "failed", reason: backingOff });
    for (const [c, waiting] of this.waiters) {
      if (c.state === "connecting") {
        waiting.push(done);
        return;
      }
    }
    this.waiters.set(this.open(), [done]);
  }

  get connectionCount(): number {
    return this.conns.length;
  }

  /** No new streams; connections close when their streams end. */
  close(): void {
    this.closed = true;
    for (const c of [...this.conns]) c.drain();
  }

  destroy(): void {
    this.closed = true;
    for (const c of [...this.conns]) c.destroy("pool destroyed");
  }

  // ---- UpstreamEvents ---------------------------------------------------------------------------

  onOpen(conn: UpstreamConnection): void {
    clearTimeout(this.timers.get(conn));
    this.timers.delete(conn);
    this.backoff.succeeded();
    if (this.closed) conn.drain();
    const waiting = this.waiters.get(conn) ?? [];
    this.waiters.delete(conn);
    for (const w of waiting) {
      if (conn.hasSlot) w({ kind: "ok", conn });
      else this.acquire(w);
    }
  }

  onStateChange(conn: UpstreamConnection, state: UpstreamState): void {
    if (state !== "closed") return;
    clearTimeout(this.timers.get(conn));
    this.timers.delete(conn);
    const i = this.conns.indexOf(conn);
    if (i >= 0) this.conns.splice(i, 1);
    const waiting = this.waiters.get(conn);
    if (waiting) {
      // Closed before it opened: a connect failure.
      this.waiters.delete(conn);
      this.failed(waiting, this.lastFailureOf(conn));
    }
  }

  onStreamEnded(): void {}

  private open(): UpstreamConnection {
    const { host, port } = this.endpoint;
    const socket: Socket = this.tlsOptions
      ? tlsConnect({ ...this.tlsOptions, host, port })
      : netConnect({ host, port });
    // Before the connection's own handlers, so the reason is known when it reports the close.
    socket.once("error", (err: NodeJS.ErrnoException) => {
      this.failureReasons.set(conn, err.code ?? err.message);
      this.options.log.debug(
        { endpoint: this.endpoint.address, err: err.code ?? err.message },
        "upstream connection error",
      );
    });
    const conn = new UpstreamConnection(new SocketLink(socket), this.options.maxHeaderListSize, this);
    this.conns.push(conn);
    const timer = setTimeout(() => {
      if (conn.state !== "connecting") return;
      this.failureReasons.set(conn, "connect timeout");
      conn.destroy("connect timeout");
    }, this.options.connectTimeoutMs);
    this.timers.set(conn, timer);
    return conn;
  }

  private lastFailureOf(conn: UpstreamConnection): string {
    return this.failureReasons.get(conn) ?? "connection closed";
  }

  private failed(waiting: readonly Waiter[], reason: string): void {
    this.backoff.failed(reason);
    for (const w of waiting) w({ kind: "failed", reason });
  }
}

/** The `frames` engine's pools of one cluster, one per endpoint, created on first use. */
export class FramesClusterPools extends ClusterPoolSet<FramesUpstreamPool> {
  constructor(config: ClusterConfig, maxHeaderListSize: number, log: Logger) {
    const connectTimeoutMs = durationMs(config.connect_timeout);
    super(
      config,
      (endpoint, tls) => new FramesUpstreamPool(endpoint, { connectTimeoutMs, maxHeaderListSize, tls, log }),
    );
  }
}
