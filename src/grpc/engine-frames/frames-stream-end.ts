/**
 * One side of a stream on one `frames` connection: its RFC 9113 §5.1 state (h2-stream-state.ts, one
 * transition function), its flow-control windows both ways, and the DATA waiting for send window or a
 * draining sink. A proxied stream links one StreamEnd of each connection (frames-stream.ts), which
 * hears of its end through `handler` and acts on it through `conn`.
 */
import type { H2ErrorName } from "../../h2/h2-error-codes.js";
import { ReceiveWindow } from "../../h2/h2-flow-window.js";
import { NO_CONTENT_LENGTH } from "../../h2/h2-message-checks.js";
import type { H2Settings } from "../../h2/h2-settings.js";
import {
  localOpen,
  remoteOpen,
  streamTransition,
  type StreamEvent,
  type StreamRefusal,
  type StreamState,
} from "../../h2/h2-stream-state.js";
import type { HeaderList } from "../../h2/hpack-header-list.js";

/** What a stream's owner hears from its connection. */
export interface StreamHandler {
  /** A complete header block: request or response headers, or trailers. `list` is reused after the call. */
  onHeaders(end: StreamEnd, list: HeaderList, endStream: boolean): void;
  /** DATA content (a view of the received bytes, never overwritten); the owner must `consumed()` it. */
  onData(end: StreamEnd, data: Buffer, endStream: boolean): void;
  /** The stream ended abnormally: RST_STREAM from the peer, a stream error, or the connection closed. */
  onReset(end: StreamEnd, code: number, why: ResetCause): void;
  /** `n` octets of DATA queued on this end were written to the sink (give the source's window back). */
  onWritten(end: StreamEnd, n: number): void;
  /** We sent END_STREAM on this end (the last DATA or trailers left). */
  onLocalEnd(end: StreamEnd): void;
}

/** Why a stream was reset: by the peer, by a GOAWAY below its id (never processed), or by the connection's end. */
export type ResetCause = "peer" | "goaway" | "connection" | "protocol";

/** What a stream's owner may do with its connection (H2Connection implements it). */
export interface StreamConnection {
  readonly remoteSettings: H2Settings;
  /** Our per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE we send). */
  readonly localStreamWindow: number;
  sendHeaders(
    end: StreamEnd,
    list: HeaderList,
    endStream: boolean,
    forward?: "response" | "trailers",
    extra?: readonly [string, string],
  ): void;
  sendData(end: StreamEnd, data: Buffer, endStream: boolean): void;
  resetStream(end: StreamEnd, code: H2ErrorName): void;
  /** The response on `end` is complete: a peer still sending is told to stop (RST_STREAM NO_ERROR). */
  stopRequest(end: StreamEnd): void;
  streamError(end: StreamEnd, code: H2ErrorName): void;
  consumed(end: StreamEnd, n: number): void;
}

/** `queuedEnd` when END_STREAM rides on the last queued DATA frame (or an empty one). */
export const END_ON_DATA = "end-on-data";

export class StreamEnd {
  private current: StreamState = "idle";
  /**
   * The state's closed halves, kept by `transition` (read per frame, so fields rather than a
   * function of the state). Local: we sent END_STREAM (or RST_STREAM), nothing more goes out.
   * Remote: the peer sent END_STREAM (or RST_STREAM), nothing more comes in.
   */
  private localDone = false;
  private remoteDone = false;
  /** Peer's window for our DATA on this stream. */
  sendWindow: number;
  /** Our window for the peer's DATA. */
  readonly recvWindow: ReceiveWindow;
  /** DATA waiting for send window or a draining sink. */
  readonly queue: Buffer[] = [];
  queuedBytes = 0;
  /**
   * What ends the stream once the queued DATA has left: END_STREAM on the last DATA frame, or
   * trailers (encoded only then: HPACK state follows wire order).
   */
  queuedEnd: HeaderList | typeof END_ON_DATA | undefined;
  /** In its connection's set of streams waiting to send (a flag spares a hash lookup per stream). */
  blocked = false;
  /** DATA octets the peer's content-length still announces, or NO_CONTENT_LENGTH (§8.1.1). */
  contentLeft = NO_CONTENT_LENGTH;

  constructor(
    readonly conn: StreamConnection,
    readonly id: number,
    public handler: StreamHandler,
  ) {
    this.sendWindow = conn.remoteSettings.initialWindowSize;
    this.recvWindow = new ReceiveWindow(conn.localStreamWindow);
  }

  /** Applies `event`; an illegal one leaves the state as it is and returns the stream error it is. */
  transition(event: StreamEvent): StreamRefusal | undefined {
    const next = streamTransition(this.state, event);
    if (next === "PROTOCOL_ERROR" || next === "STREAM_CLOSED") return next;
    this.current = next;
    this.localDone = !localOpen(next);
    this.remoteDone = !remoteOpen(next);
    return undefined;
  }

  get state(): StreamState {
    return this.current;
  }

  get closed(): boolean {
    return this.localDone && this.remoteDone;
  }

  /** We sent END_STREAM (or RST_STREAM): nothing more goes out. */
  get localClosed(): boolean {
    return this.localDone;
  }

  /** The peer sent END_STREAM (or RST_STREAM): nothing more comes in. */
  get remoteClosed(): boolean {
    return this.remoteDone;
  }
}
