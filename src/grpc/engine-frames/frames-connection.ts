/**
 * One HTTP/2 connection of the `frames` engine, either side (RFC 9113): frames in through a
 * FrameReader, HPACK per connection in both directions, SETTINGS and their acknowledgement, PING,
 * GOAWAY, RST_STREAM, the stream table with its state rules (§5.1), and flow control both ways (§5.2,
 * §6.9) with real backpressure: a receive window is given back to the peer only for bytes that have
 * been written on to the other side, and a socket that does not drain stops everything queued for it.
 *
 * Downstream (server role) and upstream (client role) connections extend it; a proxied stream links
 * one StreamEnd of each (frames-stream.ts). Nothing here throws across an event boundary: every
 * protocol violation ends as a stream error (RST_STREAM) or a connection error (GOAWAY, close).
 */
import type { Socket } from "node:net";
import { H2_ERROR_CODES, type H2ErrorName } from "../../h2/h2-error-codes.js";
import {
  readGoaway,
  readPingPayload,
  readRstStreamCode,
  readWindowIncrement,
} from "../../h2/h2-frame-fields.js";
import { FrameReader, type H2Frame } from "../../h2/h2-frame-reader.js";
import {
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FRAME_CONTINUATION,
  FRAME_DATA,
  FRAME_GOAWAY,
  FRAME_HEADER_LENGTH,
  FRAME_HEADERS,
  FRAME_PING,
  FRAME_PRIORITY,
  FRAME_RST_STREAM,
  FRAME_SETTINGS,
  FRAME_WINDOW_UPDATE,
  MAX_WINDOW_SIZE,
} from "../../h2/h2-frame-types.js";
import {
  SETTINGS_ACK_FRAME,
  encodeGoawayFrame,
  encodePingFrame,
  encodeRstStreamFrame,
  encodeSettingsFrame,
  encodeWindowUpdateFrame,
  writeDataFrameHeader,
  writeFrameHeader,
} from "../../h2/h2-frame-writers.js";
import {
  H2_INITIAL_SETTINGS,
  parseSettingsPayload,
  type H2Settings,
  type H2SettingsUpdate,
} from "../../h2/h2-settings.js";
import { HpackDecoder } from "../../h2/hpack-decoder.js";
import { HpackEncoder } from "../../h2/hpack-encoder.js";
import { HeaderList } from "../../h2/hpack-header-list.js";
import { forwardable, forwardedFields } from "./frames-headers.js";
import { FloodGuard } from "../../h2/h2-flood-guard.js";
import { FRAMES_TUNING } from "./frames-tuning.js";
import { FrameOutput } from "./frames-output.js";
import { StreamTable } from "./frames-stream-table.js";
import { emptyArray } from "./frames-arrays.js";

/** What a stream's owner hears from its connection. */
export interface StreamHandler {
  /** A complete header block: request or response headers, or trailers. `list` is reused after the call. */
  onHeaders(end: StreamEnd, list: HeaderList, endStream: boolean): void;
  /** DATA content (a view of the received bytes, never overwritten); the owner must `consumed()` it. */
  onData(end: StreamEnd, data: Buffer, endStream: boolean): void;
  /** The stream ended abnormally: RST_STREAM from the peer, a stream error, or the connection closed. */
  onReset(end: StreamEnd, code: number, why: ResetCause): void;
  /** `n` octets of DATA queued on this end were written to the socket (give the source's window back). */
  onWritten(end: StreamEnd, n: number): void;
  /** We sent END_STREAM on this end (the last DATA or trailers left). */
  onLocalEnd(end: StreamEnd): void;
}

/** Why a stream was reset: by the peer, by a GOAWAY below its id (never processed), or by the connection's end. */
export type ResetCause = "peer" | "goaway" | "connection" | "protocol";

/** One side of a stream on one connection. */
export class StreamEnd {
  /** Peer's window for our DATA on this stream. */
  sendWindow: number;
  /** Our window for the peer's DATA (what it may still send). */
  recvWindow: number;
  /** Received octets handed on but not yet returned to the peer with WINDOW_UPDATE. */
  unacked = 0;
  /** DATA waiting for send window or a draining socket; END_STREAM follows when `endQueued`. */
  readonly queue: Buffer[] = [];
  queuedBytes = 0;
  endQueued = false;
  /** We sent END_STREAM (or RST_STREAM). */
  localClosed = false;
  /** The peer sent END_STREAM (or RST_STREAM). */
  remoteClosed = false;
  /** In its connection's set of streams waiting to send (a flag spares a hash lookup per stream). */
  blocked = false;
  /** Header blocks received (0 → the next one is the first). */
  headerBlocks = 0;
  /** Trailers to send once the queued DATA has left (encoded only then: HPACK state follows wire order). */
  trailers: HeaderList | undefined;

  constructor(
    readonly conn: H2Connection,
    readonly id: number,
    public handler: StreamHandler,
  ) {
    this.sendWindow = conn.remoteSettings.initialWindowSize;
    this.recvWindow = conn.localStreamWindow;
  }

  get closed(): boolean {
    return this.localClosed && this.remoteClosed;
  }
}

const EMPTY = Buffer.alloc(0);
/** How many reset stream ids are remembered (the peer's frames in flight after our RST_STREAM). */
const RECENT_RESETS = 1024;

export abstract class H2Connection {
  readonly streams = new StreamTable<StreamEnd>();
  remoteSettings: H2Settings = H2_INITIAL_SETTINGS;
  /** Our per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE we send). */
  readonly localStreamWindow = FRAMES_TUNING.streamWindow;
  closed = false;
  /** Set once a GOAWAY was received; the peer's last stream id. */
  goawayReceived: number | undefined;
  protected readonly reader: FrameReader;
  protected readonly decoder: HpackDecoder;
  protected readonly encoder = new HpackEncoder();
  protected readonly headerList = new HeaderList();
  private sendWindow = 65_535;
  private recvWindow = 65_535;
  private unacked = 0;
  /** Streams with DATA queued, waiting for window or for the socket to drain. */
  private readonly blocked = new Set<StreamEnd>();
  protected readonly output: FrameOutput;
  /** Header block being assembled from HEADERS + CONTINUATION. */
  private blockStream = 0;
  private blockFlags = 0;
  private blockParts: Buffer[] = [];
  private blockBytes = 0;
  /**
   * Streams we reset lately: frames the peer sent before it saw our RST_STREAM are ignored, as §5.1
   * requires, instead of being answered as errors. Bounded: the oldest ids drop out.
   */
  private readonly recentlyReset = new Set<number>();
  private readonly flood = new FloodGuard(FRAMES_TUNING.floodBurst, FRAMES_TUNING.floodPerSecond);

  constructor(
    readonly socket: Socket,
    protected readonly role: "server" | "client",
    readonly maxHeaderListSize: number,
  ) {
    this.output = new FrameOutput(socket);
    this.reader = new FrameReader({ expectClientPreface: role === "server" });
    this.decoder = new HpackDecoder({ maxHeaderListSize });
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onChunk(chunk));
    socket.on("drain", () => this.onSocketDrain());
    socket.on("error", () => this.destroy("socket error"));
    socket.on("close", () => this.destroy("socket closed"));
    socket.on("end", () => this.onPeerEnd());
  }

  /** Our SETTINGS, the connection window raised, then whatever the role sends first. */
  protected sendPrefaceSettings(extra: H2SettingsUpdate): void {
    this.write(
      encodeSettingsFrame({
        enablePush: 0,
        initialWindowSize: this.localStreamWindow,
        maxHeaderListSize: this.maxHeaderListSize,
        ...extra,
      }),
    );
    const raise = FRAMES_TUNING.connectionWindow - this.recvWindow;
    this.recvWindow += raise;
    this.write(encodeWindowUpdateFrame(0, raise));
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
  /** The connection is gone; every stream was reset before this. */
  protected abstract onClosed(why: string): void;
  /** A PING acknowledgement for one of ours. */
  protected onPingAck(_payload: Buffer): void {}
  /** Highest stream id the peer may have opened (server) or we opened (client), for id checks. */
  protected abstract isIdle(id: number): boolean;

  // ---- sending ------------------------------------------------------------------------------------

  /** Queues a control frame; everything of one turn of the event loop leaves in one write. */
  write(buf: Buffer): void {
    if (this.closed) return;
    this.output.copy(buf);
  }

  /** The socket holds more than it should: stop sending DATA until it drains. */
  private get congested(): boolean {
    return this.output.backlog > FRAMES_TUNING.socketBacklog;
  }

  /**
   * Sends a header block. With `forward`, `list` is a block received on the other side (reused by
   * its connection after this call) and is encoded filtered (forwardedFields) without a copy,
   * unless it must wait behind queued DATA.
   */
  sendHeaders(
    end: StreamEnd,
    list: HeaderList,
    endStream: boolean,
    forward?: "response" | "trailers",
    extra?: readonly [string, string],
  ): void {
    if (this.closed || end.localClosed) return;
    if (endStream && (end.queue.length > 0 || end.endQueued)) {
      // Trailers go after the DATA still waiting for window.
      end.endQueued = false;
      if (forward) {
        const copy = new HeaderList();
        forwardedFields(list, copy, forward === "response");
        if (extra) copy.add(extra[0], extra[1]);
        end.trailers = copy;
      } else {
        end.trailers = list;
      }
      return;
    }
    // HEADERS, then CONTINUATION frames past the peer's max frame size (§6.10), straight into the output.
    const length = forward
      ? this.encodeForwarded(list, forward === "response", extra)
      : this.encoder.encode(list);
    const block = this.encoder.output;
    const maxFrame = this.remoteSettings.maxFrameSize;
    const frames = Math.max(1, Math.ceil(length / maxFrame));
    const out = this.output;
    const slab = out.reserve(length + frames * FRAME_HEADER_LENGTH);
    const start = out.offset;
    let o = start;
    for (let i = 0, p = 0; i < frames; i++) {
      const n = Math.min(maxFrame, length - p);
      let flags = i === frames - 1 ? FLAG_END_HEADERS : 0;
      if (i === 0 && endStream) flags |= FLAG_END_STREAM;
      o = writeFrameHeader(slab, o, n, i === 0 ? FRAME_HEADERS : FRAME_CONTINUATION, flags, end.id);
      o += block.copy(slab, o, p, p + n);
      p += n;
    }
    out.commit(o - start);
    if (endStream) this.closeLocal(end);
  }

  /**
   * Sends DATA as far as the windows and the socket allow and queues the rest (a view, not a copy);
   * the source end's receive window is given back for what was written.
   */
  sendData(end: StreamEnd, data: Buffer, endStream: boolean): void {
    if (this.closed || end.localClosed) return;
    const n = data.length;
    if (
      n > 0 &&
      end.queue.length === 0 &&
      !end.endQueued &&
      n <= end.sendWindow &&
      n <= this.sendWindow &&
      n <= this.remoteSettings.maxFrameSize &&
      !this.congested
    ) {
      // What flush() would do for a queue of one that fits every window and one frame, without the queue.
      this.writeDataHeader(end.id, n, endStream);
      this.output.attach(data);
      end.sendWindow -= n;
      this.sendWindow -= n;
      end.handler.onWritten(end, n);
      if (endStream) this.closeLocal(end);
      return;
    }
    if (data.length > 0) {
      end.queue.push(data);
      end.queuedBytes += data.length;
    }
    if (endStream) end.endQueued = true;
    this.flush(end);
  }

  resetStream(end: StreamEnd, code: H2ErrorName): void {
    if (this.closed || (end.localClosed && end.remoteClosed)) return;
    this.write(encodeRstStreamFrame(end.id, code));
    this.recentlyReset.add(end.id);
    if (this.recentlyReset.size > RECENT_RESETS) {
      for (const id of this.recentlyReset) {
        this.recentlyReset.delete(id);
        break;
      }
    }
    this.forget(end);
  }

  /** True when `id` is a stream we reset lately (its late frames are ignored, §5.1). */
  protected wasReset(id: number): boolean {
    return this.recentlyReset.has(id);
  }

  sendGoaway(lastStreamId: number, code: H2ErrorName, debug = ""): void {
    this.write(encodeGoawayFrame(lastStreamId, code, debug));
  }

  ping(payload: Buffer): void {
    this.write(encodePingFrame(payload, false));
  }

  /** The owner handed `n` received octets of `end` on: give them back to the peer (batched). */
  consumed(end: StreamEnd, n: number): void {
    if (n <= 0 || this.closed) return;
    this.unacked += n;
    if (this.unacked >= FRAMES_TUNING.connectionWindow / 2) {
      this.write(encodeWindowUpdateFrame(0, this.unacked));
      this.recvWindow += this.unacked;
      this.unacked = 0;
    }
    if (end.remoteClosed) return;
    end.unacked += n;
    if (end.unacked >= this.localStreamWindow / 2) {
      this.write(encodeWindowUpdateFrame(end.id, end.unacked));
      end.recvWindow += end.unacked;
      end.unacked = 0;
    }
  }

  /** A connection error (§5.4.1): GOAWAY with `code`, then close. */
  connectionError(code: H2ErrorName, debug: string): void {
    if (this.closed) return;
    this.sendGoaway(this.lastPeerStreamId(), code, debug);
    this.destroy(`connection error ${code}: ${debug}`);
  }

  /** Ends the connection now, resetting every stream; what was queued (a GOAWAY) still leaves first. */
  destroy(why: string): void {
    if (this.closed) return;
    this.output.flush();
    this.closed = true;
    for (const end of this.streams.values()) {
      this.streams.delete(end.id);
      end.localClosed = end.remoteClosed = true;
      end.handler.onReset(end, H2_ERROR_CODES.CANCEL, "connection");
    }
    for (const end of this.blocked) end.blocked = false;
    this.blocked.clear();
    const socket = this.socket;
    if (!socket.destroyed) {
      if (socket.writableLength === 0) socket.destroy();
      else {
        // Let the queued bytes leave, then FIN; the timer bounds a peer that does not read.
        if (!socket.writableEnded) socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
      }
    }
    this.onClosed(why);
  }

  /** Highest stream id of the peer processed, for GOAWAY. */
  protected abstract lastPeerStreamId(): number;

  protected register(end: StreamEnd): void {
    this.streams.set(end);
  }

  protected closeLocal(end: StreamEnd): void {
    end.localClosed = true;
    end.handler.onLocalEnd(end);
    if (end.remoteClosed) this.forget(end);
  }

  protected forget(end: StreamEnd): void {
    end.localClosed = end.remoteClosed = true;
    emptyArray(end.queue);
    end.queuedBytes = 0;
    this.unblock(end);
    if (this.streams.get(end.id) === end) {
      this.streams.delete(end.id);
      this.onStreamClosed(end);
    }
  }

  /** A stream left the table (both sides closed or reset). */
  protected onStreamClosed(_end: StreamEnd): void {}

  private flush(end: StreamEnd): void {
    const maxFrame = this.remoteSettings.maxFrameSize;
    while (end.queue.length > 0 && !this.closed) {
      if (this.congested) break;
      const head = end.queue[0] as Buffer;
      const room = Math.min(end.sendWindow, this.sendWindow, maxFrame);
      if (room <= 0) break;
      const n = Math.min(room, head.length);
      const last = n === head.length && end.queue.length === 1 && end.endQueued;
      this.writeDataHeader(end.id, n, last);
      this.output.attach(n === head.length ? head : head.subarray(0, n));
      if (n === head.length) end.queue.shift();
      else end.queue[0] = head.subarray(n);
      end.queuedBytes -= n;
      end.sendWindow -= n;
      this.sendWindow -= n;
      end.handler.onWritten(end, n);
      if (last) {
        end.endQueued = false;
        this.unblock(end);
        this.closeLocal(end);
        return;
      }
    }
    if (end.queue.length === 0 && end.endQueued && !this.closed) {
      // END_STREAM alone: an empty DATA frame (no window needed).
      end.endQueued = false;
      this.writeDataHeader(end.id, 0, true);
      this.unblock(end);
      this.closeLocal(end);
      return;
    }
    if (end.queue.length > 0) {
      if (!end.blocked) {
        end.blocked = true;
        this.blocked.add(end);
      }
      return;
    }
    this.unblock(end);
    const trailers = end.trailers;
    if (trailers && !this.closed) {
      end.trailers = undefined;
      this.sendHeaders(end, trailers, true);
    }
  }

  /** Encodes a received block minus connection-specific fields (and pseudo-headers for trailers). */
  private encodeForwarded(list: HeaderList, keepPseudo: boolean, extra?: readonly [string, string]): number {
    const encoder = this.encoder;
    encoder.begin();
    for (let i = 0; i < list.length; i++) {
      const name = list.name(i);
      if (!forwardable(name, keepPseudo)) continue;
      encoder.field(name, list.value(i), list.neverIndexed(i));
    }
    if (extra) encoder.field(extra[0], extra[1]);
    return encoder.end();
  }

  private writeDataHeader(id: number, length: number, endStream: boolean): void {
    const out = this.output;
    const slab = out.reserve(FRAME_HEADER_LENGTH);
    writeDataFrameHeader(slab, out.offset, id, length, endStream);
    out.commit(FRAME_HEADER_LENGTH);
  }

  private unblock(end: StreamEnd): void {
    if (!end.blocked) return;
    end.blocked = false;
    this.blocked.delete(end);
  }

  private flushBlocked(): void {
    for (const end of [...this.blocked]) {
      if (this.congested || this.sendWindow <= 0) return;
      this.flush(end);
    }
  }

  private onSocketDrain(): void {
    this.flushBlocked();
  }

  /** The peer half-closed its side: no more frames can come; streams still open cannot complete. */
  private onPeerEnd(): void {
    if (this.streams.size === 0) this.destroy("peer closed");
    else this.onPeerHalfClose();
  }

  /** Hook: the peer sent FIN with streams open (a downstream client may still read its responses). */
  protected onPeerHalfClose(): void {
    this.destroy("peer closed with streams open");
  }

  // ---- receiving ----------------------------------------------------------------------------------

  private onChunk(chunk: Buffer): void {
    if (this.closed) return;
    this.reader.push(chunk);
    for (let frame = this.reader.next(); frame !== null; frame = this.reader.next()) {
      this.onFrame(frame);
      if (this.closed) return;
    }
    const err = this.reader.error;
    if (err) this.connectionError(err.code, err.reason);
  }

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
    this.recvWindow -= length;
    if (this.recvWindow < 0) return this.connectionError("FLOW_CONTROL_ERROR", "connection window exceeded");
    const end = this.streams.get(f.streamId);
    if (!end) {
      this.consumedUntracked(length);
      if (this.isIdle(f.streamId)) return this.connectionError("PROTOCOL_ERROR", "DATA on an idle stream");
      // Closed streams: ignored when we reset them (the peer had not seen it yet), else STREAM_CLOSED.
      if (!this.wasReset(f.streamId)) this.write(encodeRstStreamFrame(f.streamId, "STREAM_CLOSED"));
      return;
    }
    if (end.remoteClosed) {
      this.consumedUntracked(length);
      this.streamError(end, "STREAM_CLOSED");
      return;
    }
    if (end.headerBlocks === 0) {
      this.consumedUntracked(length);
      return this.streamError(end, "PROTOCOL_ERROR");
    }
    end.recvWindow -= length;
    if (end.recvWindow < 0) {
      this.consumedUntracked(length);
      return this.streamError(end, "FLOW_CONTROL_ERROR");
    }
    if (f.dataLength === 0 && !f.hasFlag(FLAG_END_STREAM)) this.spend(1);
    // Padding is flow-controlled but never forwarded: give it back now.
    const padding = length - f.dataLength;
    if (padding > 0) this.consumed(end, padding);
    const endStream = f.hasFlag(FLAG_END_STREAM);
    if (endStream) end.remoteClosed = true;
    end.handler.onData(end, f.dataLength > 0 ? f.data() : EMPTY, endStream);
    if (endStream && end.localClosed) this.forget(end);
  }

  /** Connection window for octets no stream will hand on. */
  private consumedUntracked(n: number): void {
    if (n <= 0) return;
    this.unacked += n;
    if (this.unacked >= FRAMES_TUNING.connectionWindow / 2) {
      this.write(encodeWindowUpdateFrame(0, this.unacked));
      this.recvWindow += this.unacked;
      this.unacked = 0;
    }
  }

  private onHeaderFragment(f: H2Frame): void {
    if (f.type === FRAME_HEADERS) {
      this.blockStream = f.streamId;
      this.blockFlags = f.flags;
      emptyArray(this.blockParts);
      this.blockBytes = 0;
    } else if (f.dataLength === 0) {
      this.spend(1);
    }
    const done = f.hasFlag(FLAG_END_HEADERS);
    if (done && f.type === FRAME_HEADERS) return this.onHeaderBlock(f.buffer, f.dataOffset, f.dataLength);
    this.blockBytes += f.dataLength;
    if (this.blockBytes > this.maxHeaderListSize * 2 + 16_384)
      return this.connectionError("ENHANCE_YOUR_CALM", "header block too large");
    // A fragment is a view of a chunk the reader never overwrites; keep it until the block is whole.
    this.blockParts.push(f.data());
    if (!done) return;
    const block = Buffer.concat(this.blockParts, this.blockBytes);
    emptyArray(this.blockParts);
    this.onHeaderBlock(block, 0, block.length);
  }

  private onHeaderBlock(buf: Buffer, offset: number, length: number): void {
    const id = this.blockStream;
    const endStream = (this.blockFlags & FLAG_END_STREAM) !== 0;
    const list = this.headerList;
    const result = this.decoder.decode(buf, offset, length, list);
    if (result === "compression_error")
      return this.connectionError("COMPRESSION_ERROR", this.decoder.lastError ?? "bad header block");
    const status: DecodeStatus = result === "ok" ? (list.malformed ? "malformed" : "ok") : "too_large";
    const end = this.streams.get(id);
    if (!end) return this.onNewStreamHeaders(id, list, endStream, status);
    if (end.remoteClosed) {
      // §5.1: HEADERS on a half-closed (remote) stream.
      return this.streamError(end, "STREAM_CLOSED");
    }
    if (status !== "ok") return this.streamError(end, "PROTOCOL_ERROR");
    end.headerBlocks++;
    if (endStream) end.remoteClosed = true;
    end.handler.onHeaders(end, list, endStream);
    if (endStream && end.localClosed) this.forget(end);
  }

  /** A stream error (§5.4.2): RST_STREAM with `code`; the owner hears of it. */
  streamError(end: StreamEnd, code: H2ErrorName): void {
    this.resetStream(end, code);
    end.handler.onReset(end, H2_ERROR_CODES[code], "protocol");
  }

  private onRstStream(f: H2Frame): void {
    this.spend(1);
    const end = this.streams.get(f.streamId);
    if (!end) {
      if (this.isIdle(f.streamId)) this.connectionError("PROTOCOL_ERROR", "RST_STREAM on an idle stream");
      return;
    }
    const code = readRstStreamCode(f);
    end.remoteClosed = true;
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
    if (end.queue.length > 0 || end.endQueued || end.trailers) this.flush(end);
  }
}

/** How a header block decoded: fine, malformed (§8.1.1), or over max_header_list_size. */
export type DecodeStatus = "ok" | "malformed" | "too_large";

export { FLAG_END_STREAM };
