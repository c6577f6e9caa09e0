/**
 * HTTP/2 sessions to one endpoint. Streams are placed on an open session with a free slot under the
 * peer's MAX_CONCURRENT_STREAMS (Node's client would otherwise queue them silently); when none has
 * one, another session is opened. A session that receives GOAWAY takes no new streams and closes once
 * its streams end. Connect failures back off exponentially so a dead endpoint costs nothing per stream.
 */
import { connect, type ClientHttp2Session, type SecureClientSessionOptions, type Settings } from "node:http2";
import type { Endpoint } from "../../balancer/endpoint-set.js";
import type { Logger } from "../../log/logger.js";
import { H2_TUNING } from "./h2-tuning.js";
import type { EndpointPool } from "../cluster-pool-set.js";
import { ConnectBackoff } from "../connect-backoff.js";
import { tlsOptionsOf, type UpstreamTls } from "../upstream-tls.js";

export type UpstreamSessionState = "connecting" | "open" | "draining" | "closed";

export interface UpstreamPoolOptions {
  readonly connectTimeoutMs: number;
  readonly maxHeaderListSize: number;
  readonly tls?: UpstreamTls | undefined;
  readonly log: Logger;
}

export class UpstreamSession {
  state: UpstreamSessionState = "connecting";
  /** Streams open on this session, counted by Fulcrum (not nghttp2's view). */
  active = 0;
  /** The peer's MAX_CONCURRENT_STREAMS; unlimited until its SETTINGS say otherwise. */
  maxConcurrent = Number.MAX_SAFE_INTEGER;
  /** Streams promised to waiters while connecting. */
  reserved = 0;

  constructor(readonly session: ClientHttp2Session) {}

  get hasSlot(): boolean {
    return this.state === "open" && this.active < this.maxConcurrent;
  }

  /** Leaves the current state; `closed` is final. */
  transition(to: UpstreamSessionState): boolean {
    if (this.state === to || this.state === "closed") return false;
    if (to === "connecting") return false;
    this.state = to;
    return true;
  }
}

export type SessionResult =
  | { readonly kind: "ok"; readonly session: UpstreamSession }
  | { readonly kind: "failed"; readonly reason: string };

type Waiter = (result: SessionResult) => void;

export class UpstreamPool implements EndpointPool {
  private readonly sessions: UpstreamSession[] = [];
  private readonly waiters = new Map<UpstreamSession, Waiter[]>();
  private readonly backoff = new ConnectBackoff();
  private closed = false;
  private readonly authority: string;
  private readonly tlsOptions: SecureClientSessionOptions | undefined;

  constructor(
    readonly endpoint: Endpoint,
    private readonly options: UpstreamPoolOptions,
  ) {
    const host = endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host;
    this.authority = `${options.tls ? "https" : "http"}://${host}:${endpoint.port}`;
    this.tlsOptions = options.tls ? tlsOptionsOf(options.tls, endpoint.host) : undefined;
  }

  /** A session with a free stream slot now, or undefined (then call `connectFor`). */
  tryAcquire(): UpstreamSession | undefined {
    for (const s of this.sessions) if (s.hasSlot) return s;
    return undefined;
  }

  /** Waits for a session with a free slot: joins one being set up, or opens another. */
  acquire(done: Waiter): void {
    const ready = this.tryAcquire();
    if (ready) return done({ kind: "ok", session: ready });
    if (this.closed) return done({ kind: "failed", reason: "pool closed" });
    const backingOff = this.backoff.refusal();
    if (backingOff !== undefined) return done({ kind: "failed", reason: backingOff });
    for (const s of this.sessions) {
      if (s.state === "connecting") {
        s.reserved++;
        this.waiters.get(s)?.push(done);
        return;
      }
    }
    const s = this.open();
    s.reserved++;
    this.waiters.get(s)?.push(done);
  }

  /** Sessions by state, for status and tests. */
  get connectionCount(): number {
    return this.sessions.length;
  }

  close(): void {
    this.closed = true;
    for (const s of [...this.sessions]) {
      s.transition("draining");
      if (s.active === 0) s.session.close();
    }
  }

  destroy(): void {
    this.closed = true;
    for (const s of [...this.sessions]) s.session.destroy();
  }

  /** A stream on `s` ended: free its slot; a draining session closes when its last stream ends. */
  released(s: UpstreamSession): void {
    s.active--;
    if (s.state === "draining" && s.active === 0) s.session.close();
  }

  private open(): UpstreamSession {
    const session = connect(this.authority, {
      ...this.tlsOptions,
      settings: {
        enablePush: false,
        initialWindowSize: H2_TUNING.streamWindow,
        maxHeaderListSize: this.options.maxHeaderListSize,
      },
      maxSessionMemory: H2_TUNING.maxSessionMemoryMiB,
      maxHeaderListPairs: H2_TUNING.maxHeaderListPairs,
      peerMaxConcurrentStreams: H2_TUNING.maxConcurrentStreams,
      maxOutstandingPings: 10,
    });
    const s = new UpstreamSession(session);
    this.sessions.push(s);
    this.waiters.set(s, []);
    const timer = setTimeout(() => fail("connect timeout"), this.options.connectTimeoutMs);

    const fail = (reason: string): void => {
      clearTimeout(timer);
      if (s.state !== "connecting") return;
      this.backoff.failed(reason);
      s.transition("closed");
      this.forget(s);
      session.destroy();
      this.flush(s, { kind: "failed", reason });
    };

    session.once("connect", () => {
      session.setLocalWindowSize(H2_TUNING.connectionWindow);
    });
    session.once("remoteSettings", (settings: Settings) => {
      clearTimeout(timer);
      if (s.state !== "connecting") return;
      this.backoff.succeeded();
      s.maxConcurrent = settings.maxConcurrentStreams ?? Number.MAX_SAFE_INTEGER;
      s.transition(this.closed ? "draining" : "open");
      this.serveWaiters(s);
    });
    session.on("remoteSettings", (settings: Settings) => {
      s.maxConcurrent = settings.maxConcurrentStreams ?? Number.MAX_SAFE_INTEGER;
    });
    session.on("goaway", (code, lastStreamId) => {
      this.options.log.debug(
        { endpoint: this.endpoint.address, code, last_stream_id: lastStreamId },
        "upstream GOAWAY",
      );
      s.transition("draining");
    });
    session.on("error", (err: NodeJS.ErrnoException) => {
      this.options.log.debug(
        { endpoint: this.endpoint.address, err: err.code ?? err.message },
        "upstream session error",
      );
      fail(err.code ?? err.message);
    });
    session.once("close", () => {
      fail("connection closed");
      s.transition("closed");
      this.forget(s);
    });
    return s;
  }

  /** The session is set up: hand a slot to each waiter it can take; the rest try another session. */
  private serveWaiters(s: UpstreamSession): void {
    const waiting = this.waiters.get(s) ?? [];
    this.waiters.set(s, []);
    s.reserved = 0;
    let free = s.maxConcurrent - s.active;
    for (const w of waiting) {
      if (free > 0 && s.state === "open") {
        free--;
        w({ kind: "ok", session: s });
      } else {
        this.acquire(w);
      }
    }
  }

  private flush(s: UpstreamSession, result: SessionResult): void {
    const waiting = this.waiters.get(s) ?? [];
    this.waiters.delete(s);
    for (const w of waiting) w(result);
  }

  private forget(s: UpstreamSession): void {
    const i = this.sessions.indexOf(s);
    if (i >= 0) this.sessions.splice(i, 1);
  }
}
