/**
 * One HTTP/2 connection of the `frames` engine, either side (RFC 9113): frames in through a
 * FrameReader, HPACK per connection in both directions, SETTINGS and their acknowledgement, PING,
 * GOAWAY, RST_STREAM, the stream states of §5.1 and the message rules of §8.1 (a malformed block
 * never reaches a stream's owner), and flow control both ways (§5.2, §6.9) with real backpressure: a
 * receive window is given back to the peer only for bytes that have been written on to the other
 * side, and a sink that does not drain stops everything queued for it (frames-connection-send.ts).
 *
 * It owns no socket: it writes to the byte sink of its link and is fed `receive`, `peerEnded`,
 * `drained` and `lost` (frames-link.ts), so a test drives it frame by frame in memory.
 * Downstream (server role) and upstream (client role) connections extend it; a proxied stream links
 * one StreamEnd of each (frames-stream.ts). Nothing here throws across an event boundary: every
 * protocol violation ends as a stream error (RST_STREAM) or a connection error (GOAWAY, close).
 */
import { H2_ERROR_CODES } from "../../h2/h2-error-codes.js";
import { FloodGuard } from "../../h2/h2-flood-guard.js";
import {
  readGoaway,
  readPingPayload,
  readRstStreamCode,
  readWindowIncrement,
} from "../../h2/h2-frame-fields.js";
import { FrameReader, type H2Frame } from "../../h2/h2-frame-reader.js";
import {
  FLAG_ACK,
  FLAG_END_STREAM,
  FRAME_CONTINUATION,
  FRAME_DATA,
  FRAME_GOAWAY,
  FRAME_HEADERS,
  FRAME_PING,
  FRAME_PRIORITY,
  FRAME_RST_STREAM,
  FRAME_SETTINGS,
  FRAME_WINDOW_UPDATE,
  MAX_WINDOW_SIZE,
} from "../../h2/h2-frame-types.js";
import { SETTINGS_ACK_FRAME, encodePingFrame, encodeRstStreamFrame } from "../../h2/h2-frame-writers.js";
import { HeaderBlockAssembler, headerBlockBound } from "../../h2/h2-header-block.js";
import {
  BAD_CONTENT_LENGTH,
  NO_CONTENT_LENGTH,
  contentLengthOf,
  hasConnectionSpecificField,
  trailersMalformed,
} from "../../h2/h2-message-checks.js";
import { H2_INITIAL_SETTINGS, parseSettingsPayload } from "../../h2/h2-settings.js";
import type { StreamRefusal } from "../../h2/h2-stream-state.js";
import { HpackDecoder } from "../../h2/hpack-decoder.js";
import { HeaderList } from "../../h2/hpack-header-list.js";
import { H2ConnectionSend } from "./frames-connection-send.js";
import type { ConnectionLink, LinkInput } from "./frames-link.js";
import type { StreamEnd } from "./frames-stream-end.js";
import { FRAMES_TUNING } from "./frames-tuning.js";

export { StreamEnd } from "./frames-stream-end.js";
export type { ResetCause, StreamHandler } from "./frames-stream-end.js";

const EMPTY = Buffer.alloc(0);

export abstract class H2Connection extends H2ConnectionSend implements LinkInput {
  /** Set once a GOAWAY was received; the peer's last stream id. */
  goawayReceived: number | undefined;
  protected readonly reader: FrameReader;
  protected readonly decoder: HpackDecoder;
  protected readonly headerList = new HeaderList();
  /** HEADERS + CONTINUATION joined into one block, within one bound. */
  private readonly block: HeaderBlockAssembler;
  private readonly flood: FloodGuard;
  /** Inside `receive`: frames of one read are being handled. */
  private reading = false;
  /** Streams to ask to stop once this read is handled (`stopRequest`). */
  private readonly stopsAfterRead: StreamEnd[] = [];

  constructor(link: ConnectionLink, role: "server" | "client", maxHeaderListSize: number) {
    super(link, role, maxHeaderListSize);
    this.reader = new FrameReader({ expectClientPreface: role === "server" });
    this.decoder = new HpackDecoder({ maxHeaderListSize });
    this.block = new HeaderBlockAssembler(headerBlockBound(maxHeaderListSize));
    const timers = this.timers;
    this.flood = new FloodGuard(FRAMES_TUNING.floodBurst, FRAMES_TUNING.floodPerSecond, () => timers.now());
    link.attach(this);
  }

  // ---- hooks of the roles -------------------------------------------------------------------------

  /** A complete header block on a stream id this connection has no StreamEnd for. */
  protected abstract onNewStreamHeaders(
    id: number,
    list: HeaderList,
    endStream: boolean,
    status: DecodeStatus,
  ): void;
  /** The peer's first SETTINGS arrived (the connection is usable). */
  protected abstract onPeerSettings(): void;
  /** GOAWAY from the peer, after streams above `lastStreamId` were reset as never processed. */
  protected abstract onGoaway(lastStreamId: number, code: number): void;
  /** A PING acknowledgement for one of ours. */
  protected onPingAck(_payload: Buffer): void {}
  /** Highest stream id the peer may have opened (server) or we opened (client), for id checks. */
  protected abstract isIdle(id: number): boolean;

  /** Hook: the peer sent FIN with streams open (a downstream client may still read its responses). */
  protected onPeerHalfClose(): void {
    this.destroy("peer closed with streams open");
  }

  // ---- what the link feeds ------------------------------------------------------------------------

  receive(chunk: Buffer): void {
    if (this.closed) return;
    this.reader.push(chunk);
    this.reading = true;
    for (let frame = this.reader.next(); frame !== null; frame = this.reader.next()) {
      this.onFrame(frame);
      if (this.closed) {
        this.reading = false;
        return;
      }
    }
    this.reading = false;
    if (this.stopsAfterRead.length > 0) this.sendStops();
    const err = this.reader.error;
    if (err) this.connectionError(err.code, err.reason);
  }

  /**
   * The response on `end` is complete while the peer may still be sending: it is asked to stop with
   * RST_STREAM NO_ERROR (RFC 9113 §8.1), but only after the frames already read are handled, since
   * their END_STREAM (often in the same read as the request headers) closes the stream anyway.
   */
  stopRequest(end: StreamEnd): void {
    if (end.remoteClosed) return;
    if (this.reading) this.stopsAfterRead.push(end);
    else this.resetStream(end, "NO_ERROR");
  }

  private sendStops(): void {
    const stops = this.stopsAfterRead;
    for (let end = stops.pop(); end !== undefined; end = stops.pop()) {
      if (!end.remoteClosed && this.streams.get(end.id) === end) this.resetStream(end, "NO_ERROR");
    }
  }

  /** The peer half-closed its side: no more frames can come; streams still open cannot complete. */
  peerEnded(): void {
    if (this.streams.size === 0) this.destroy("peer closed");
    else this.onPeerHalfClose();
  }

  lost(why: string): void {
    this.destroy(why);
  }

  /**
   * Applies a received header block to `end` (§5.1) and checks it as a message (§8.1): the first
   * block of a client's stream (its content-length noted), a 1xx before a response, the final
   * response headers, or trailers, which end the stream and carry no pseudo-header. Returns the
   * stream error for a block the stream cannot take; the state is then unchanged.
   */
  protected acceptHeaders(end: StreamEnd, list: HeaderList, endStream: boolean): StreamRefusal | undefined {
    if (end.remoteClosed) return "STREAM_CLOSED";
    const state = end.state;
    let refusal: StreamRefusal | undefined;
    if (state === "idle") {
      refusal = end.transition("recv-headers");
      const length = contentLengthOf(list);
      if (length === BAD_CONTENT_LENGTH) return "PROTOCOL_ERROR";
      end.contentLeft = length;
    } else if (state === "open-awaiting-headers" || state === "half-closed-local-awaiting-headers") {
      const status = list.get(":status");
      if (status !== undefined && status.length === 3 && status.charCodeAt(0) === 0x31 /* 1 */) {
        // An informational response: the final one follows; it cannot end the stream (§8.1).
        return endStream ? "PROTOCOL_ERROR" : end.transition("recv-informational");
      }
      refusal = end.transition("recv-headers");
    } else if (!endStream) {
      // A block after the first can only be trailers, and trailers end the stream (§8.1).
      return "PROTOCOL_ERROR";
    } else if (trailersMalformed(list)) {
      return "PROTOCOL_ERROR";
    }
    // A response or trailers with a connection-specific field is malformed (§8.2.2); a request's
    // first block is checked with the rest of the request rules (frames-headers.ts).
    if (state !== "idle" && hasConnectionSpecificField(list)) return "PROTOCOL_ERROR";
    if (refusal !== undefined || !endStream) return refusal;
    if (end.contentLeft > 0) return "PROTOCOL_ERROR";
    return end.transition("recv-end");
  }

  // ---- receiving ----------------------------------------------------------------------------------

  private onFrame(f: H2Frame): void {
    switch (f.type) {
      case FRAME_DATA:
        return this.onDataFrame(f);
      case FRAME_HEADERS:
      case FRAME_CONTINUATION:
        return this.onHeaderFragment(f);
      case FRAME_PRIORITY:
        return this.spend(1);
      case FRAME_RST_STREAM:
        return this.onRstStream(f);
      case FRAME_SETTINGS:
        return this.onSettings(f);
      case FRAME_PING:
        return this.onPing(f);
      case FRAME_GOAWAY:
        return this.onGoawayFrame(f);
      case FRAME_WINDOW_UPDATE:
        return this.onWindowUpdate(f);
      default:
        return;
    }
  }

  /** Frames that cost the peer nothing but us work are budgeted (PING/SETTINGS/RST floods, §10.5). */
  private spend(cost: number): void {
    if (!this.flood.take(cost)) this.connectionError("ENHANCE_YOUR_CALM", "too many control frames");
    else if (this.output.backlog > FRAMES_TUNING.maxControlBacklog)
      this.connectionError("ENHANCE_YOUR_CALM", "peer does not read");
  }

  private onDataFrame(f: H2Frame): void {
    const length = f.length;
    if (!this.recvWindow.receive(length))
      return this.connectionError("FLOW_CONTROL_ERROR", "connection window exceeded");
    const end = this.streams.get(f.streamId);
    if (!end) {
      this.consumedUntracked(length);
      if (this.isIdle(f.streamId)) return this.connectionError("PROTOCOL_ERROR", "DATA on an idle stream");
      // Closed streams: ignored when we reset them (the peer had not seen it yet), else STREAM_CLOSED.
      if (!this.wasReset(f.streamId)) this.write(encodeRstStreamFrame(f.streamId, "STREAM_CLOSED"));
      return;
    }
    // Half-closed (remote): STREAM_CLOSED; before the response headers: PROTOCOL_ERROR (§8.1).
    const refusal = end.transition("recv-data");
    if (refusal !== undefined) {
      this.consumedUntracked(length);
      return this.streamError(end, refusal);
    }
    if (!end.recvWindow.receive(length)) {
      this.consumedUntracked(length);
      return this.streamError(end, "FLOW_CONTROL_ERROR");
    }
    const endStream = f.hasFlag(FLAG_END_STREAM);
    if (end.contentLeft !== NO_CONTENT_LENGTH) {
      // §8.1.1: DATA beyond the declared content-length, or less of it at the end, is malformed.
      end.contentLeft -= f.dataLength;
      if (end.contentLeft < 0 || (endStream && end.contentLeft !== 0)) {
        this.consumedUntracked(length);
        return this.streamError(end, "PROTOCOL_ERROR");
      }
    }
    if (f.dataLength === 0 && !endStream) this.spend(1);
    // Padding is flow-controlled but never forwarded: give it back now.
    const padding = length - f.dataLength;
    if (padding > 0) this.consumed(end, padding);
    if (endStream) end.transition("recv-end");
    end.handler.onData(end, f.dataLength > 0 ? f.data() : EMPTY, endStream);
    if (endStream && end.closed) this.forget(end);
  }

  private onHeaderFragment(f: H2Frame): void {
    if (f.type === FRAME_CONTINUATION && f.dataLength === 0) {
      this.spend(1);
      if (this.closed) return;
    }
    const block = this.block;
    const result = block.add(f);
    if (result === "partial") return;
    if (result === "too_large") return this.connectionError("ENHANCE_YOUR_CALM", "header block too large");
    this.onHeaderBlock(block.streamId, block.endStream, block.buffer, block.offset, block.length);
  }

  private onHeaderBlock(id: number, endStream: boolean, buf: Buffer, offset: number, length: number): void {
    const list = this.headerList;
    const result = this.decoder.decode(buf, offset, length, list);
    if (result === "compression_error")
      return this.connectionError("COMPRESSION_ERROR", this.decoder.lastError ?? "bad header block");
    const status: DecodeStatus = result === "ok" ? (list.malformed ? "malformed" : "ok") : "too_large";
    const end = this.streams.get(id);
    if (!end) return this.onNewStreamHeaders(id, list, endStream, status);
    // §5.1: HEADERS on a half-closed (remote) stream.
    if (end.remoteClosed) return this.streamError(end, "STREAM_CLOSED");
    if (status !== "ok") return this.streamError(end, "PROTOCOL_ERROR");
    const refusal = this.acceptHeaders(end, list, endStream);
    if (refusal !== undefined) return this.streamError(end, refusal);
    end.handler.onHeaders(end, list, endStream);
    if (endStream && end.closed) this.forget(end);
  }

  private onRstStream(f: H2Frame): void {
    this.spend(1);
    const end = this.streams.get(f.streamId);
    if (!end) {
      if (this.isIdle(f.streamId)) this.connectionError("PROTOCOL_ERROR", "RST_STREAM on an idle stream");
      return;
    }
    const code = readRstStreamCode(f);
    this.forget(end);
    end.handler.onReset(end, code, "peer");
  }

  private onSettings(f: H2Frame): void {
    if (f.hasFlag(FLAG_ACK)) return;
    this.spend(1);
    const parsed = parseSettingsPayload(
      f.buffer,
      f.payloadOffset,
      f.length,
      this.role === "server" ? "client" : "server",
    );
    if (!parsed.ok) return this.connectionError(parsed.code, parsed.reason);
    const first = this.remoteSettings === H2_INITIAL_SETTINGS;
    const before = this.remoteSettings.initialWindowSize;
    this.remoteSettings = { ...this.remoteSettings, ...parsed.update };
    const delta = this.remoteSettings.initialWindowSize - before;
    if (delta !== 0) {
      for (const end of this.streams.values()) {
        end.sendWindow += delta;
        if (end.sendWindow > MAX_WINDOW_SIZE)
          return this.connectionError("FLOW_CONTROL_ERROR", "window overflow");
      }
    }
    if (parsed.update.headerTableSize !== undefined)
      this.encoder.setPeerMaxTableSize(parsed.update.headerTableSize);
    this.write(SETTINGS_ACK_FRAME);
    if (first) this.onPeerSettings();
    if (delta > 0) this.flushBlocked();
  }

  private onPing(f: H2Frame): void {
    if (f.hasFlag(FLAG_ACK)) return this.onPingAck(readPingPayload(f));
    this.spend(1);
    if (this.closed) return;
    this.write(encodePingFrame(readPingPayload(f), true));
  }

  private onGoawayFrame(f: H2Frame): void {
    const { lastStreamId, errorCode } = readGoaway(f);
    this.goawayReceived = Math.min(this.goawayReceived ?? lastStreamId, lastStreamId);
    for (const end of this.streams.values()) {
      if (end.id > lastStreamId && this.ownsStream(end.id)) {
        this.forget(end);
        end.handler.onReset(end, H2_ERROR_CODES.REFUSED_STREAM, "goaway");
      }
    }
    this.onGoaway(lastStreamId, errorCode);
  }

  /** True for stream ids this side initiates (odd for a client). */
  private ownsStream(id: number): boolean {
    return this.role === "client" ? id % 2 === 1 : id % 2 === 0;
  }

  private onWindowUpdate(f: H2Frame): void {
    const increment = readWindowIncrement(f);
    if (f.streamId === 0) {
      if (increment === 0) return this.connectionError("PROTOCOL_ERROR", "WINDOW_UPDATE of 0");
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW_SIZE)
        return this.connectionError("FLOW_CONTROL_ERROR", "window overflow");
      return this.flushBlocked();
    }
    const end = this.streams.get(f.streamId);
    if (!end) {
      if (this.isIdle(f.streamId)) this.connectionError("PROTOCOL_ERROR", "WINDOW_UPDATE on an idle stream");
      return;
    }
    if (increment === 0) return this.streamError(end, "PROTOCOL_ERROR");
    end.sendWindow += increment;
    if (end.sendWindow > MAX_WINDOW_SIZE) return this.streamError(end, "FLOW_CONTROL_ERROR");
    if (end.queue.length > 0 || end.queuedEnd !== undefined) this.flush(end);
  }
}

/** How a header block decoded: fine, malformed (§8.1.1), or over max_header_list_size. */
export type DecodeStatus = "ok" | "malformed" | "too_large";

export { FLAG_END_STREAM };
