/**
 * A client connection to a `frames` listener (server role): the client preface and SETTINGS within
 * `handshake_timeout`, client stream ids checked (odd, increasing: §5.1.1), MAX_CONCURRENT_STREAMS
 * enforced with REFUSED_STREAM, every request validated and proxied as its own FramesStream, `idle_timeout`
 * while no stream is active, and the drain of RFC 9113 §6.8: a first GOAWAY with the largest stream id,
 * then, one PING round trip later, the final GOAWAY naming the last stream accepted; the connection
 * closes when its streams end. A client that half-closes still receives its responses.
 */
import { Socket } from "node:net";
import { normalizeClientAddress } from "../../balancer/picker.js";
import type { StreamOutcome, StreamOwner } from "../stream-outcome.js";
import { H2Connection, StreamEnd, type DecodeStatus, type StreamHandler } from "./frames-connection.js";
import { releaseRequestList, takeRequestList, upstreamRequest } from "./frames-headers.js";
import type { HeaderList } from "../../h2/hpack-header-list.js";
import { FramesStream, type FramesRoute } from "./frames-stream.js";
import { FramesStreamSplit } from "./frames-stream-split.js";
import { SPLIT_METHOD } from "../stream-split.js";
import type { ConnectionLink, TimerHandle } from "./frames-link.js";
import { SocketLink } from "./frames-socket-link.js";
import { FRAMES_TUNING } from "./frames-tuning.js";

export interface DownstreamDeps {
  /** Route of a new stream (cluster and pools are looked up per stream: reloads swap them). */
  route(request: HeaderList, clientAddress: string | undefined): FramesRoute;
  /** Upstream :scheme for the cluster's pools. */
  scheme(): "http" | "https";
  onStreamStart(conn: DownstreamConnection): void;
  onStreamDone(conn: DownstreamConnection, outcome: StreamOutcome, cluster: string): void;
  onHandshake(conn: DownstreamConnection): void;
  onClosed(conn: DownstreamConnection): void;
}

const PING_PAYLOAD = Buffer.from("fulcrum!", "latin1");

/** A handler for streams that are refused or reset before a FramesStream owns them. */
const IGNORE: StreamHandler = {
  onHeaders: () => undefined,
  onData: (end, data) => end.conn.consumed(end, data.length),
  onReset: () => undefined,
  onWritten: () => undefined,
  onLocalEnd: () => undefined,
};

export class DownstreamConnection extends H2Connection implements StreamOwner {
  /** Highest client stream id seen (every lower idle id is closed: §5.1.1). */
  private lastStreamId = 0;
  /** Streams proxied now (owned by a FramesStream and not yet reported). */
  active = 0;
  private draining = false;
  /** Set by the final GOAWAY: streams above it are refused. */
  private finalLastId: number | undefined;
  private halfClosed = false;
  private handshaken = false;
  private readonly clientAddress: string | undefined;

  /** On a client's socket (the listener), or on any link (tests drive one in memory). */
  constructor(
    link: Socket | ConnectionLink,
    maxHeaderListSize: number,
    private readonly deps: DownstreamDeps,
  ) {
    const l = link instanceof Socket ? new SocketLink(link) : link;
    super(l, "server", maxHeaderListSize);
    this.clientAddress = normalizeClientAddress(l.remoteAddress);
    this.sendPrefaceSettings({ maxConcurrentStreams: FRAMES_TUNING.maxConcurrentStreams });
  }

  get isHandshaken(): boolean {
    return this.handshaken;
  }

  /** First GOAWAY now, the final one a PING round trip later (or after a timeout); close when idle. */
  drain(): void {
    if (this.draining || this.closed) return;
    this.draining = true;
    this.sendGoaway(FRAMES_TUNING.maxStreamId, "NO_ERROR");
    this.ping(PING_PAYLOAD);
    this.pingTimer = this.timers.setTimeout(() => this.finalGoaway(), FRAMES_TUNING.goawayPingTimeoutMs);
  }

  private pingTimer: TimerHandle | undefined;

  /** GOAWAY and close at once (max_connections, idle). */
  goAway(): void {
    if (this.closed) return;
    this.draining = true;
    this.finalGoaway();
  }

  private finalGoaway(): void {
    this.timers.clearTimeout(this.pingTimer);
    if (this.closed || this.finalLastId !== undefined) return;
    this.finalLastId = this.lastStreamId;
    this.sendGoaway(this.lastStreamId, "NO_ERROR");
    if (this.streams.size === 0) this.close("drained");
  }

  /** Closes a connection whose streams are over, saying so with GOAWAY first (RFC 9113 §6.8). */
  private close(why: string): void {
    if (this.finalLastId === undefined) {
      this.finalLastId = this.lastStreamId;
      this.sendGoaway(this.lastStreamId, "NO_ERROR");
    }
    this.destroy(why);
  }

  protected override onPingAck(payload: Buffer): void {
    if (this.draining && payload.equals(PING_PAYLOAD)) this.finalGoaway();
  }

  protected override onPeerSettings(): void {
    this.handshaken = true;
    this.deps.onHandshake(this);
  }

  protected override isIdle(id: number): boolean {
    return id % 2 === 1 ? id > this.lastStreamId : true;
  }

  protected override lastPeerStreamId(): number {
    return this.lastStreamId;
  }

  protected override onGoaway(): void {
    // The client will open no more streams; those running finish.
    if (this.streams.size === 0) this.close("client went away");
  }

  protected override onPeerHalfClose(): void {
    this.halfClosed = true;
  }

  protected override onStreamClosed(): void {
    if (this.streams.size > 0) return;
    if (this.halfClosed || this.finalLastId !== undefined || this.goawayReceived !== undefined)
      this.close("done");
  }

  protected override onClosed(): void {
    this.timers.clearTimeout(this.pingTimer);
    this.deps.onClosed(this);
  }

  protected override onNewStreamHeaders(
    id: number,
    list: HeaderList,
    endStream: boolean,
    status: DecodeStatus,
  ): void {
    if (id % 2 === 0) return this.connectionError("PROTOCOL_ERROR", "client stream id is even");
    if (id <= this.lastStreamId) {
      // Trailers the client sent before it saw our RST_STREAM are ignored (§5.1); any other reuse of
      // an id is a protocol error (§5.1.1).
      if (this.wasReset(id)) return;
      return this.connectionError("PROTOCOL_ERROR", "stream id not above the last one");
    }
    this.lastStreamId = id;
    const end = new StreamEnd(this, id, IGNORE);
    // The request's block opens the stream; a bad content-length makes it malformed (§8.1.1).
    const refusal = this.acceptHeaders(end, list, endStream);
    if (this.finalLastId !== undefined && id > this.finalLastId) return this.refuse(end, "REFUSED_STREAM");
    if (status === "malformed" || refusal !== undefined) return this.refuse(end, "PROTOCOL_ERROR");
    if (this.streams.size >= FRAMES_TUNING.maxConcurrentStreams) return this.refuse(end, "REFUSED_STREAM");
    // Decoded (HPACK state kept) but over max_header_list_size: refused like nghttp2 does, which
    // gRPC clients report as RESOURCE_EXHAUSTED.
    if (status === "too_large") return this.refuse(end, "ENHANCE_YOUR_CALM");
    const request = takeRequestList();
    if (upstreamRequest(list, this.deps.scheme(), request) !== undefined) {
      releaseRequestList(request);
      return this.refuse(end, "PROTOCOL_ERROR");
    }
    this.register(end);
    const route = this.deps.route(request, this.clientAddress);
    this.active++;
    this.deps.onStreamStart(this);
    if (route.perRequest && request.get(":path") === SPLIT_METHOD) {
      new FramesStreamSplit(end, request, route, this, endStream);
    } else {
      new FramesStream(end, request, route, this, endStream);
    }
  }

  /** A stream of this connection finished (FramesStream's owner). */
  streamDone(cluster: string, outcome: StreamOutcome): void {
    this.active--;
    this.deps.onStreamDone(this, outcome, cluster);
  }

  /** Refuses a stream the client opened: RST_STREAM (the id counts as used). */
  private refuse(end: StreamEnd, code: "REFUSED_STREAM" | "PROTOCOL_ERROR" | "ENHANCE_YOUR_CALM"): void {
    this.register(end);
    this.resetStream(end, code);
  }
}
