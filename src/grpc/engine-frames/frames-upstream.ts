/**
 * A connection of the `frames` engine to one worker (client role): the preface and SETTINGS, odd
 * stream ids, the worker's MAX_CONCURRENT_STREAMS honoured by the pool (which opens another
 * connection instead of queueing), and GOAWAY: streams above its last id are refused (never
 * processed, so the proxied stream may retry), no new stream starts here, and the connection closes
 * once its streams end. Its life is a union of states with one transition function.
 */
import { CLIENT_PREFACE } from "../../h2/h2-preface.js";
import type { HeaderList } from "../../h2/hpack-header-list.js";
import { H2Connection, StreamEnd, type DecodeStatus, type StreamHandler } from "./frames-connection.js";
import type { ConnectionLink } from "./frames-link.js";

export type UpstreamState = "connecting" | "open" | "draining" | "closed";

export interface UpstreamEvents {
  /** The worker's SETTINGS arrived: streams may start. */
  onOpen(conn: UpstreamConnection): void;
  /** Left `open` (GOAWAY or closed): take no new streams; a closed one is gone. */
  onStateChange(conn: UpstreamConnection, state: UpstreamState): void;
  /** A stream ended on this connection (a slot is free). */
  onStreamEnded(conn: UpstreamConnection): void;
}

export class UpstreamConnection extends H2Connection {
  state: UpstreamState = "connecting";
  private nextId = 1;
  /** Streams started here and not yet ended. */
  active = 0;

  constructor(
    link: ConnectionLink,
    maxHeaderListSize: number,
    private readonly events: UpstreamEvents,
  ) {
    super(link, "client", maxHeaderListSize);
    this.write(CLIENT_PREFACE);
    this.sendPrefaceSettings({});
  }

  /** The worker's MAX_CONCURRENT_STREAMS (unlimited until its SETTINGS say otherwise). */
  get maxConcurrent(): number {
    return this.remoteSettings.maxConcurrentStreams;
  }

  get hasSlot(): boolean {
    return this.state === "open" && this.active < this.maxConcurrent && this.nextId < 2 ** 31 - 1;
  }

  /** Opens a stream and sends its request headers; the caller checked `hasSlot`. */
  startStream(handler: StreamHandler, headers: HeaderList, endStream: boolean): StreamEnd {
    const end = new StreamEnd(this, this.nextId, handler);
    this.nextId += 2;
    this.active++;
    this.register(end);
    this.sendHeaders(end, headers, endStream);
    if (this.nextId >= 2 ** 31 - 1) this.transition("draining");
    return end;
  }

  transition(to: UpstreamState): void {
    if (this.state === to || this.state === "closed") return;
    this.state = to;
    this.events.onStateChange(this, to);
    if (to === "draining" && this.streams.size === 0) this.destroy("drained");
  }

  /** No new streams; close when the running ones end (reload removed the endpoint, or Fulcrum stops). */
  drain(): void {
    if (this.state === "closed") return;
    if (this.state === "open" || this.state === "connecting") this.sendGoaway(0, "NO_ERROR");
    this.transition("draining");
  }

  protected override onPeerSettings(): void {
    if (this.state !== "connecting") return;
    this.transition("open");
    if ((this.state as UpstreamState) === "open") this.events.onOpen(this);
  }

  protected override onNewStreamHeaders(
    id: number,
    _list: HeaderList,
    _end: boolean,
    _s: DecodeStatus,
  ): void {
    // A server never opens streams (push is disabled): HEADERS for an unknown stream of ours is
    // one we already reset; for an even id it is a protocol error.
    if (id % 2 === 0 || id >= this.nextId)
      this.connectionError("PROTOCOL_ERROR", "HEADERS on a stream we did not open");
  }

  protected override onGoaway(): void {
    this.transition("draining");
  }

  protected override onStreamClosed(): void {
    this.active--;
    this.events.onStreamEnded(this);
    if (this.state === "draining" && this.streams.size === 0) this.destroy("drained");
  }

  protected override onClosed(): void {
    this.state = "closed";
    this.events.onStateChange(this, "closed");
  }

  protected override isIdle(id: number): boolean {
    return id % 2 === 1 ? id >= this.nextId : true;
  }

  protected override lastPeerStreamId(): number {
    return 0;
  }
}
