/**
 * Writers for the frames the engine sends (RFC 9113 §6): each returns the complete frame, header
 * included, ready for `socket.write`. DATA gets only its 9-octet header, so a forwarded payload goes out
 * as the view the FrameReader handed in, uncopied (write the header, then the payload, under one cork).
 *
 * Arguments out of their protocol range (a stream id above 2^31 - 1, a setting above 2^32 - 1, a PING
 * payload that is not 8 octets) are programming errors and throw a RangeError.
 */
import { H2_ERROR_CODES, type H2ErrorName } from "./h2-error-codes.js";
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
  FRAME_RST_STREAM,
  FRAME_SETTINGS,
  FRAME_WINDOW_UPDATE,
  MAX_STREAM_ID,
} from "./h2-frame-types.js";
import {
  H2_SETTING_IDS,
  SETTINGS_ENTRY_LENGTH,
  type H2SettingName,
  type H2SettingsUpdate,
} from "./h2-settings.js";

/** Writes a frame header at `out[offset]` and returns the offset after it (§4.1). */
export function writeFrameHeader(
  out: Buffer,
  offset: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): number {
  if (streamId < 0 || streamId > MAX_STREAM_ID) throw new RangeError(`stream id ${streamId} out of range`);
  out[offset] = length >>> 16;
  out[offset + 1] = (length >>> 8) & 0xff;
  out[offset + 2] = length & 0xff;
  out[offset + 3] = type;
  out[offset + 4] = flags;
  out.writeUInt32BE(streamId, offset + 5);
  return offset + FRAME_HEADER_LENGTH;
}

/** Writes the header of a DATA frame carrying `length` octets (no padding) at `out[offset]`. */
export function writeDataFrameHeader(
  out: Buffer,
  offset: number,
  streamId: number,
  length: number,
  endStream: boolean,
): number {
  return writeFrameHeader(out, offset, length, FRAME_DATA, endStream ? FLAG_END_STREAM : 0, streamId);
}

/** A DATA frame header alone (§6.1); the payload follows it on the socket. */
export function encodeDataFrameHeader(streamId: number, length: number, endStream: boolean): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
  writeDataFrameHeader(out, 0, streamId, length, endStream);
  return out;
}

/**
 * A field block as one HEADERS frame, followed by CONTINUATION frames when it exceeds the peer's
 * SETTINGS_MAX_FRAME_SIZE (§6.2, §6.10); END_STREAM goes on the HEADERS frame, END_HEADERS on the last.
 */
export function encodeHeadersFrames(
  streamId: number,
  block: Buffer,
  blockOffset: number,
  blockLength: number,
  endStream: boolean,
  maxFrameSize: number,
): Buffer {
  const frames = Math.max(1, Math.ceil(blockLength / maxFrameSize));
  const out = Buffer.allocUnsafe(blockLength + frames * FRAME_HEADER_LENGTH);
  let o = 0;
  let p = blockOffset;
  let remaining = blockLength;
  for (let i = 0; i < frames; i++) {
    const n = Math.min(remaining, maxFrameSize);
    let flags = i === frames - 1 ? FLAG_END_HEADERS : 0;
    if (i === 0 && endStream) flags |= FLAG_END_STREAM;
    o = writeFrameHeader(out, o, n, i === 0 ? FRAME_HEADERS : FRAME_CONTINUATION, flags, streamId);
    o += block.copy(out, o, p, p + n);
    p += n;
    remaining -= n;
  }
  return out;
}

const SETTING_ORDER = (Object.keys(H2_SETTING_IDS) as H2SettingName[]).sort(
  (a, b) => H2_SETTING_IDS[a] - H2_SETTING_IDS[b],
);

/** A SETTINGS frame with the given parameters, in identifier order (§6.5); Infinity ones are left out. */
export function encodeSettingsFrame(settings: H2SettingsUpdate): Buffer {
  const names = SETTING_ORDER.filter((name) => settings[name] !== undefined && settings[name] !== Infinity);
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + names.length * SETTINGS_ENTRY_LENGTH);
  let o = writeFrameHeader(out, 0, names.length * SETTINGS_ENTRY_LENGTH, FRAME_SETTINGS, 0, 0);
  for (const name of names) {
    const value = settings[name] as number;
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new RangeError(`setting ${name} = ${value} out of range`);
    }
    o = out.writeUInt16BE(H2_SETTING_IDS[name], o);
    o = out.writeUInt32BE(value, o);
  }
  return out;
}

/** The SETTINGS acknowledgement (§6.5.3): shared and never modified. */
export const SETTINGS_ACK_FRAME: Buffer = (() => {
  const out = Buffer.alloc(FRAME_HEADER_LENGTH);
  writeFrameHeader(out, 0, 0, FRAME_SETTINGS, FLAG_ACK, 0);
  return out;
})();

/** A PING, or with `ack` its acknowledgement echoing the received payload (§6.7). */
export function encodePingFrame(payload: Uint8Array, ack: boolean): Buffer {
  if (payload.length !== 8) throw new RangeError(`PING payload must be 8 octets, got ${payload.length}`);
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 8);
  writeFrameHeader(out, 0, 8, FRAME_PING, ack ? FLAG_ACK : 0, 0);
  out.set(payload, FRAME_HEADER_LENGTH);
  return out;
}

/** A WINDOW_UPDATE granting `increment` (1 to 2^31 - 1) octets on a stream, or on the connection (0). */
export function encodeWindowUpdateFrame(streamId: number, increment: number): Buffer {
  if (increment < 1 || increment > 0x7fffffff)
    throw new RangeError(`window increment ${increment} out of range`);
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 4);
  writeFrameHeader(out, 0, 4, FRAME_WINDOW_UPDATE, 0, streamId);
  out.writeUInt32BE(increment, FRAME_HEADER_LENGTH);
  return out;
}

/** An RST_STREAM ending `streamId` with `error` (§6.4). */
export function encodeRstStreamFrame(streamId: number, error: H2ErrorName): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 4);
  writeFrameHeader(out, 0, 4, FRAME_RST_STREAM, 0, streamId);
  out.writeUInt32BE(H2_ERROR_CODES[error], FRAME_HEADER_LENGTH);
  return out;
}

/**
 * A GOAWAY (§6.8): streams above `lastStreamId` were not and will not be processed. `debugData` is opaque
 * diagnostics for the peer's logs; it must never carry secrets.
 */
export function encodeGoawayFrame(lastStreamId: number, error: H2ErrorName, debugData = ""): Buffer {
  if (lastStreamId < 0 || lastStreamId > MAX_STREAM_ID) {
    throw new RangeError(`last stream id ${lastStreamId} out of range`);
  }
  const debugLength = Buffer.byteLength(debugData, "utf8");
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 8 + debugLength);
  writeFrameHeader(out, 0, 8 + debugLength, FRAME_GOAWAY, 0, 0);
  out.writeUInt32BE(lastStreamId, FRAME_HEADER_LENGTH);
  out.writeUInt32BE(H2_ERROR_CODES[error], FRAME_HEADER_LENGTH + 4);
  out.write(debugData, FRAME_HEADER_LENGTH + 8, "utf8");
  return out;
}
