/**
 * Incremental HTTP/2 frame parser (RFC 9113 §4, §6) over the chunks a socket delivers.
 *
 * Zero-copy where it can be: a frame that lies within one chunk is handed out as a view of that chunk;
 * only a frame split across chunks is copied, into a fresh buffer (never reused, so the caller may keep
 * or forward any payload it is handed). The frame object itself is reused from call to call.
 *
 * It enforces what can be judged frame by frame: the length limit of our SETTINGS_MAX_FRAME_SIZE and the
 * fixed lengths (FRAME_SIZE_ERROR, §4.2), whether a type belongs on stream 0 or on a stream, padding
 * (§6.1), HEADERS and PRIORITY priority fields (§6.2, §6.3), CONTINUATION sequencing (§6.10), the client
 * preface and a SETTINGS frame first (§3.4), and PUSH_PROMISE refused (Fulcrum never enables push, §6.6).
 * Every violation is reported as a connection error, which §5.4.1 allows even where a stream error would
 * do; after one, the reader yields nothing more. Stream states, flow-control windows, window increments
 * and SETTINGS values are the engine's (see h2-settings.ts for the last). Unknown frame types are skipped
 * (§4.1) but still count against a pending CONTINUATION.
 */
import {
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_PADDED,
  FLAG_PRIORITY,
  FRAME_CONTINUATION,
  FRAME_DATA,
  FRAME_GOAWAY,
  FRAME_HEADER_LENGTH,
  FRAME_HEADERS,
  FRAME_PING,
  FRAME_PRIORITY,
  FRAME_PUSH_PROMISE,
  FRAME_RST_STREAM,
  FRAME_SETTINGS,
  FRAME_WINDOW_UPDATE,
  MIN_MAX_FRAME_SIZE,
} from "./h2-frame-types.js";
import { checkClientPreface, CLIENT_PREFACE } from "./h2-preface.js";

const EMPTY = Buffer.alloc(0);

/** One received frame; fields are valid until the next `FrameReader.next()`. */
export class H2Frame {
  type = 0;
  flags = 0;
  /** Stream identifier with the reserved bit cleared (§4.1). */
  streamId = 0;
  /** Payload length from the header, padding and priority fields included: what DATA flow control counts. */
  length = 0;
  /** Holds the payload at `payloadOffset`; a socket chunk or a copy, never overwritten by the reader. */
  buffer: Buffer = EMPTY;
  payloadOffset = 0;
  /**
   * The content without pad length, priority fields and padding: DATA's data, the field block fragment
   * of HEADERS and CONTINUATION, and the whole payload of other types.
   */
  dataOffset = 0;
  dataLength = 0;
  /** Padding octets (PADDED flag), 0 otherwise. */
  padLength = 0;
  /** Set by HEADERS with the PRIORITY flag and by PRIORITY (§6.2, §6.3; the scheme is deprecated, §5.3.2). */
  hasPriority = false;
  priorityExclusive = false;
  priorityDependency = 0;
  /** Weight 1–256 (the wire value plus one). */
  priorityWeight = 16;

  hasFlag(flag: number): boolean {
    return (this.flags & flag) !== 0;
  }

  /** The content (`dataOffset`, `dataLength`) as a view; it allocates the view object only. */
  data(): Buffer {
    return this.buffer.subarray(this.dataOffset, this.dataOffset + this.dataLength);
  }
}

/** Why the reader refused the connection. */
export type FrameReaderErrorReason =
  | "bad_preface"
  | "first_frame_not_settings"
  | "frame_too_large"
  | "bad_frame_length"
  | "stream_id_required"
  | "stream_id_forbidden"
  | "bad_padding"
  | "self_dependency"
  | "continuation_expected"
  | "unexpected_continuation"
  | "push_promise";

export interface FrameReaderError {
  /** The connection error to send in GOAWAY. */
  readonly code: "PROTOCOL_ERROR" | "FRAME_SIZE_ERROR";
  readonly reason: FrameReaderErrorReason;
  /** Type and stream of the offending frame (-1 / 0 for a preface error). */
  readonly frameType: number;
  readonly streamId: number;
}

export interface FrameReaderOptions {
  /** A server reads the client preface first (RFC 9113 §3.4); a client does not. Default false. */
  readonly expectClientPreface?: boolean;
  /** Our SETTINGS_MAX_FRAME_SIZE; default 16,384. */
  readonly maxFrameSize?: number;
}

export class FrameReader {
  private chunk: Buffer = EMPTY;
  private pos = 0;
  private readonly headerBuf = Buffer.alloc(FRAME_HEADER_LENGTH);
  private headerFill = 0;
  /** The payload of a frame split across chunks, filling up. */
  private partial: Buffer | null = null;
  private partialFill = 0;
  private prefaceMatched: number;
  private settingsSeen = false;
  /** Stream whose field block awaits CONTINUATION frames, or 0. */
  private continuationStream = 0;
  private maxFrameSize: number;
  // Header of the frame being assembled.
  private length = 0;
  private type = 0;
  private flags = 0;
  private streamId = 0;
  private readonly frame = new H2Frame();
  /** The connection error met, after which `next` returns null for good. */
  error: FrameReaderError | null = null;

  constructor(options: FrameReaderOptions = {}) {
    this.prefaceMatched = options.expectClientPreface === true ? 0 : CLIENT_PREFACE.length;
    this.maxFrameSize = options.maxFrameSize ?? MIN_MAX_FRAME_SIZE;
  }

  /** Applies our SETTINGS_MAX_FRAME_SIZE (raise when sending SETTINGS, lower once acknowledged). */
  setMaxFrameSize(size: number): void {
    this.maxFrameSize = size;
  }

  /** Octets received but not yet handed out as frames (a partial frame header or payload). */
  get buffered(): number {
    return this.chunk.length - this.pos + this.headerFill + (this.partial === null ? 0 : this.partialFill);
  }

  /** Adds a chunk from the socket. Frames still unread in the previous chunk are kept (then copied). */
  push(chunk: Buffer): void {
    if (this.pos < this.chunk.length) {
      this.chunk = Buffer.concat([this.chunk.subarray(this.pos), chunk]);
    } else {
      this.chunk = chunk;
    }
    this.pos = 0;
  }

  /** The next complete frame, or null when more octets are needed or after an error (see `error`). */
  next(): H2Frame | null {
    while (this.error === null) {
      if (this.prefaceMatched < CLIENT_PREFACE.length && !this.readPreface()) return null;
      let buf: Buffer;
      let payloadOffset: number;
      if (this.partial !== null) {
        if (!this.fillPartial()) return null;
        buf = this.partial;
        payloadOffset = 0;
        this.partial = null;
      } else {
        if (!this.readHeader()) return null;
        if (this.length > this.maxFrameSize) {
          this.fail("FRAME_SIZE_ERROR", "frame_too_large");
          return null;
        }
        const available = this.chunk.length - this.pos;
        if (available < this.length) {
          this.partial = Buffer.allocUnsafe(this.length);
          this.partialFill = 0;
          this.fillPartial();
          return null;
        }
        buf = this.chunk;
        payloadOffset = this.pos;
        this.pos += this.length;
      }
      if (this.accept(buf, payloadOffset)) return this.frame;
    }
    return null;
  }

  private readPreface(): boolean {
    const n = Math.min(this.chunk.length - this.pos, CLIENT_PREFACE.length - this.prefaceMatched);
    if (checkClientPreface(this.chunk, this.pos, n, this.prefaceMatched) === "mismatch") {
      this.error = { code: "PROTOCOL_ERROR", reason: "bad_preface", frameType: -1, streamId: 0 };
      return false;
    }
    this.pos += n;
    this.prefaceMatched += n;
    return this.prefaceMatched === CLIENT_PREFACE.length;
  }

  /** Reads the 9-octet header into the fields, in place when the chunk holds all of it. */
  private readHeader(): boolean {
    let src = this.chunk;
    let p = this.pos;
    if (this.headerFill > 0 || this.chunk.length - this.pos < FRAME_HEADER_LENGTH) {
      const n = Math.min(FRAME_HEADER_LENGTH - this.headerFill, this.chunk.length - this.pos);
      this.chunk.copy(this.headerBuf, this.headerFill, this.pos, this.pos + n);
      this.headerFill += n;
      this.pos += n;
      if (this.headerFill < FRAME_HEADER_LENGTH) return false;
      this.headerFill = 0;
      src = this.headerBuf;
      p = 0;
    } else {
      this.pos += FRAME_HEADER_LENGTH;
    }
    this.length = ((src[p] as number) << 16) | ((src[p + 1] as number) << 8) | (src[p + 2] as number);
    this.type = src[p + 3] as number;
    this.flags = src[p + 4] as number;
    this.streamId = src.readUInt32BE(p + 5) & 0x7fffffff;
    return true;
  }

  private fillPartial(): boolean {
    const partial = this.partial as Buffer;
    const n = Math.min(this.length - this.partialFill, this.chunk.length - this.pos);
    this.chunk.copy(partial, this.partialFill, this.pos, this.pos + n);
    this.partialFill += n;
    this.pos += n;
    return this.partialFill === this.length;
  }

  private fail(code: FrameReaderError["code"], reason: FrameReaderErrorReason): false {
    this.error = { code, reason, frameType: this.type, streamId: this.streamId };
    return false;
  }

  /** Validates the complete frame and fills `frame`; false for an error or a skipped unknown type. */
  private accept(buf: Buffer, payloadOffset: number): boolean {
    const { type, flags, streamId, length } = this;
    if (!this.settingsSeen) {
      if (type !== FRAME_SETTINGS || (flags & FLAG_ACK) !== 0) {
        return this.fail("PROTOCOL_ERROR", "first_frame_not_settings");
      }
      this.settingsSeen = true;
    }
    if (
      this.continuationStream !== 0 &&
      (type !== FRAME_CONTINUATION || streamId !== this.continuationStream)
    ) {
      return this.fail("PROTOCOL_ERROR", "continuation_expected");
    }
    const f = this.frame;
    f.type = type;
    f.flags = flags;
    f.streamId = streamId;
    f.length = length;
    f.buffer = buf;
    f.payloadOffset = payloadOffset;
    f.dataOffset = payloadOffset;
    f.dataLength = length;
    f.padLength = 0;
    f.hasPriority = false;
    switch (type) {
      case FRAME_DATA:
        if (streamId === 0) return this.fail("PROTOCOL_ERROR", "stream_id_required");
        return this.stripPadding(f, 0);
      case FRAME_HEADERS:
        if (streamId === 0) return this.fail("PROTOCOL_ERROR", "stream_id_required");
        if (!this.stripPadding(f, (flags & FLAG_PRIORITY) !== 0 ? 5 : 0)) return false;
        if ((flags & FLAG_END_HEADERS) === 0) this.continuationStream = streamId;
        return true;
      case FRAME_PRIORITY:
        if (streamId === 0) return this.fail("PROTOCOL_ERROR", "stream_id_required");
        if (length !== 5) return this.fail("FRAME_SIZE_ERROR", "bad_frame_length");
        return this.readPriority(f, payloadOffset);
      case FRAME_RST_STREAM:
        if (streamId === 0) return this.fail("PROTOCOL_ERROR", "stream_id_required");
        return length === 4 || this.fail("FRAME_SIZE_ERROR", "bad_frame_length");
      case FRAME_SETTINGS:
        if (streamId !== 0) return this.fail("PROTOCOL_ERROR", "stream_id_forbidden");
        if ((flags & FLAG_ACK) !== 0 ? length !== 0 : length % 6 !== 0) {
          return this.fail("FRAME_SIZE_ERROR", "bad_frame_length");
        }
        return true;
      case FRAME_PUSH_PROMISE:
        return this.fail("PROTOCOL_ERROR", "push_promise");
      case FRAME_PING:
        if (streamId !== 0) return this.fail("PROTOCOL_ERROR", "stream_id_forbidden");
        return length === 8 || this.fail("FRAME_SIZE_ERROR", "bad_frame_length");
      case FRAME_GOAWAY:
        if (streamId !== 0) return this.fail("PROTOCOL_ERROR", "stream_id_forbidden");
        return length >= 8 || this.fail("FRAME_SIZE_ERROR", "bad_frame_length");
      case FRAME_WINDOW_UPDATE:
        return length === 4 || this.fail("FRAME_SIZE_ERROR", "bad_frame_length");
      case FRAME_CONTINUATION:
        if (streamId === 0) return this.fail("PROTOCOL_ERROR", "stream_id_required");
        if (this.continuationStream === 0) return this.fail("PROTOCOL_ERROR", "unexpected_continuation");
        if ((flags & FLAG_END_HEADERS) !== 0) this.continuationStream = 0;
        return true;
      default:
        return false;
    }
  }

  /**
   * Removes the pad length octet, `priorityLength` octets of priority fields and the padding. A payload
   * too short for its mandatory fields is a FRAME_SIZE_ERROR (§4.2); padding longer than what remains is
   * a PROTOCOL_ERROR (§6.1, §6.2).
   */
  private stripPadding(f: H2Frame, priorityLength: number): boolean {
    let start = f.payloadOffset;
    let rest = f.length;
    if ((f.flags & FLAG_PADDED) !== 0) {
      if (rest < 1) return this.fail("FRAME_SIZE_ERROR", "bad_frame_length");
      f.padLength = f.buffer[start] as number;
      start++;
      rest--;
    }
    if (priorityLength > 0) {
      if (rest < priorityLength) return this.fail("FRAME_SIZE_ERROR", "bad_frame_length");
      if (!this.readPriority(f, start)) return false;
      start += priorityLength;
      rest -= priorityLength;
    }
    if (f.padLength > rest) return this.fail("PROTOCOL_ERROR", "bad_padding");
    f.dataOffset = start;
    f.dataLength = rest - f.padLength;
    return true;
  }

  private readPriority(f: H2Frame, at: number): boolean {
    const word = f.buffer.readUInt32BE(at);
    f.hasPriority = true;
    f.priorityExclusive = word >>> 31 === 1;
    f.priorityDependency = word & 0x7fffffff;
    f.priorityWeight = (f.buffer[at + 4] as number) + 1;
    // RFC 7540 §5.3.1 makes this a stream error; as a connection error it needs no HPACK bookkeeping.
    if (f.priorityDependency === f.streamId) return this.fail("PROTOCOL_ERROR", "self_dependency");
    return true;
  }
}
