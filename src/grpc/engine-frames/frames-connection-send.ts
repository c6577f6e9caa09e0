/**
 * The sending half of a `frames` connection (frames-connection.ts adds the receiving half): header
 * blocks and DATA out through one FrameOutput, flow control of what we send (the peer's windows) and
 * of what we give back (ReceiveWindow: only octets handed on), the queue of streams waiting for window
 * or for the sink to drain, and the stream table's lifecycle (a stream leaves it once both sides are
 * closed or it was reset). Everything of one turn of the event loop leaves in one write to the sink.
 */
import { H2_ERROR_CODES, type H2ErrorName } from "../../h2/h2-error-codes.js";
import { ReceiveWindow } from "../../h2/h2-flow-window.js";
import {
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FRAME_CONTINUATION,
  FRAME_HEADER_LENGTH,
  FRAME_HEADERS,
} from "../../h2/h2-frame-types.js";
import {
  encodeGoawayFrame,
  encodePingFrame,
  encodeRstStreamFrame,
  encodeSettingsFrame,
  encodeWindowUpdateFrame,
  writeDataFrameHeader,
  writeFrameHeader,
} from "../../h2/h2-frame-writers.js";
import { H2_INITIAL_SETTINGS, type H2Settings, type H2SettingsUpdate } from "../../h2/h2-settings.js";
import { HpackEncoder } from "../../h2/hpack-encoder.js";
import { HeaderList } from "../../h2/hpack-header-list.js";
import { emptyArray } from "./frames-arrays.js";
import { crossesProxy } from "../header-rules.js";
import { forwardedFields } from "./frames-headers.js";
import type { ByteSink, ConnectionLink, Timers } from "./frames-link.js";
import { FrameOutput } from "./frames-output.js";
import { END_ON_DATA, type StreamConnection, type StreamEnd } from "./frames-stream-end.js";
import { StreamTable } from "./frames-stream-table.js";
import { FRAMES_TUNING } from "./frames-tuning.js";

/** How many reset stream ids are remembered (the peer's frames in flight after our RST_STREAM). */
const RECENT_RESETS = 1024;
/** A connection window before our preface raises it (§6.9.2). */
const INITIAL_WINDOW = 65_535;

export abstract class H2ConnectionSend implements StreamConnection {
  readonly streams = new StreamTable<StreamEnd>();
  remoteSettings: H2Settings = H2_INITIAL_SETTINGS;
  /** Our per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE we send). */
  readonly localStreamWindow = FRAMES_TUNING.streamWindow;
  closed = false;
  protected readonly sink: ByteSink;
  protected readonly timers: Timers;
  protected readonly output: FrameOutput;
  protected readonly encoder = new HpackEncoder();
  /** The peer's connection window for our DATA. */
  protected sendWindow = INITIAL_WINDOW;
  /** Our connection window for the peer's DATA. */
  protected readonly recvWindow = new ReceiveWindow(INITIAL_WINDOW);
  /** Streams with DATA queued, waiting for window or for the sink to drain. */
  private readonly blocked = new Set<StreamEnd>();
  /**
   * Streams we reset lately: frames the peer sent before it saw our RST_STREAM are ignored, as §5.1
   * requires, instead of being answered as errors. Bounded: the oldest ids drop out.
   */
  private readonly recentlyReset = new Set<number>();

  constructor(
    link: ConnectionLink,
    protected readonly role: "server" | "client",
    readonly maxHeaderListSize: number,
  ) {
    this.sink = link.sink;
    this.timers = link.timers;
    this.output = new FrameOutput(link.sink, link.timers);
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
    this.write(encodeWindowUpdateFrame(0, this.recvWindow.grow(FRAMES_TUNING.connectionWindow)));
  }

  /** Highest stream id of the peer processed, for GOAWAY. */
  protected abstract lastPeerStreamId(): number;
  /** The response on `end` is complete: a peer still sending is told to stop (the receive side knows when). */
  abstract stopRequest(end: StreamEnd): void;
  /** The connection is gone; every stream was reset before this. */
  protected abstract onClosed(why: string): void;
  /** A stream left the table (both sides closed or reset). */
  protected onStreamClosed(_end: StreamEnd): void {}

  // ---- sending ------------------------------------------------------------------------------------

  /** Queues a control frame; everything of one turn of the event loop leaves in one write. */
  write(buf: Buffer): void {
    if (this.closed) return;
    this.output.copy(buf);
  }

  /** The sink holds more than it should: stop sending DATA until it drains. */
  protected get congested(): boolean {
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
    if (endStream && (end.queue.length > 0 || end.queuedEnd !== undefined)) {
      // Trailers go after the DATA still waiting for window.
      if (forward) {
        const copy = new HeaderList();
        forwardedFields(list, copy, forward === "response");
        if (extra) copy.add(extra[0], extra[1]);
        end.queuedEnd = copy;
      } else {
        end.queuedEnd = list;
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
    end.transition("send-headers");
    if (endStream) this.closeLocal(end);
  }

  /**
   * Sends DATA as far as the windows and the sink allow and queues the rest (a view, not a copy);
   * the source end's receive window is given back for what was written.
   */
  sendData(end: StreamEnd, data: Buffer, endStream: boolean): void {
    if (this.closed || end.localClosed) return;
    const n = data.length;
    if (
      n > 0 &&
      end.queue.length === 0 &&
      end.queuedEnd === undefined &&
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
    if (endStream) end.queuedEnd = END_ON_DATA;
    this.flush(end);
  }

  resetStream(end: StreamEnd, code: H2ErrorName): void {
    if (this.closed || end.closed) return;
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

  /** A stream error (§5.4.2): RST_STREAM with `code`; the owner hears of it. */
  streamError(end: StreamEnd, code: H2ErrorName): void {
    this.resetStream(end, code);
    end.handler.onReset(end, H2_ERROR_CODES[code], "protocol");
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
    this.consumedUntracked(n);
    if (end.remoteClosed) return;
    const increment = end.recvWindow.consumed(n);
    if (increment > 0) this.write(encodeWindowUpdateFrame(end.id, increment));
  }

  /** Connection window for octets no stream will hand on (or whose stream window needs none back). */
  protected consumedUntracked(n: number): void {
    if (n <= 0) return;
    const increment = this.recvWindow.consumed(n);
    if (increment > 0) this.write(encodeWindowUpdateFrame(0, increment));
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
      end.transition("reset");
      end.handler.onReset(end, H2_ERROR_CODES.CANCEL, "connection");
    }
    for (const end of this.blocked) end.blocked = false;
    this.blocked.clear();
    this.sink.end();
    this.onClosed(why);
  }

  /** The sink wrote out its backlog: streams held back by congestion go on. */
  drained(): void {
    this.flushBlocked();
  }

  protected register(end: StreamEnd): void {
    this.streams.set(end);
  }

  protected closeLocal(end: StreamEnd): void {
    end.transition("send-end");
    end.handler.onLocalEnd(end);
    if (end.remoteClosed) this.forget(end);
  }

  protected forget(end: StreamEnd): void {
    end.transition("reset");
    emptyArray(end.queue);
    end.queuedBytes = 0;
    this.unblock(end);
    if (this.streams.get(end.id) === end) {
      this.streams.delete(end.id);
      this.onStreamClosed(end);
    }
  }

  protected flush(end: StreamEnd): void {
    const maxFrame = this.remoteSettings.maxFrameSize;
    while (end.queue.length > 0 && !this.closed) {
      if (this.congested) break;
      const head = end.queue[0] as Buffer;
      const room = Math.min(end.sendWindow, this.sendWindow, maxFrame);
      if (room <= 0) break;
      const n = Math.min(room, head.length);
      const last = n === head.length && end.queue.length === 1 && end.queuedEnd === END_ON_DATA;
      this.writeDataHeader(end.id, n, last);
      this.output.attach(n === head.length ? head : head.subarray(0, n));
      if (n === head.length) end.queue.shift();
      else end.queue[0] = head.subarray(n);
      end.queuedBytes -= n;
      end.sendWindow -= n;
      this.sendWindow -= n;
      end.handler.onWritten(end, n);
      if (last) {
        end.queuedEnd = undefined;
        this.unblock(end);
        this.closeLocal(end);
        return;
      }
    }
    if (end.queue.length === 0 && end.queuedEnd === END_ON_DATA && !this.closed) {
      // END_STREAM alone: an empty DATA frame (no window needed).
      end.queuedEnd = undefined;
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
    const trailers = end.queuedEnd;
    if (trailers !== undefined && trailers !== END_ON_DATA && !this.closed) {
      end.queuedEnd = undefined;
      this.sendHeaders(end, trailers, true);
    }
  }

  protected flushBlocked(): void {
    for (const end of [...this.blocked]) {
      if (this.congested || this.sendWindow <= 0) return;
      this.flush(end);
    }
  }

  /** Encodes a received block minus connection-specific fields (and pseudo-headers for trailers). */
  private encodeForwarded(list: HeaderList, keepPseudo: boolean, extra?: readonly [string, string]): number {
    const encoder = this.encoder;
    encoder.begin();
    for (let i = 0; i < list.length; i++) {
      const name = list.name(i);
      if (!crossesProxy(name, keepPseudo)) continue;
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
}
