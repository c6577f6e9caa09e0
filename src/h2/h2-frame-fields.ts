/**
 * Readers for the fixed fields of control frames (RFC 9113 §6.4, §6.7, §6.8, §6.9), applied to a frame
 * the FrameReader already checked for type and length.
 */
import type { H2Frame } from "./h2-frame-reader.js";

/** RST_STREAM: the error code (§6.4); `h2ErrorName` names it. */
export function readRstStreamCode(frame: H2Frame): number {
  return frame.buffer.readUInt32BE(frame.payloadOffset);
}

/**
 * WINDOW_UPDATE: the increment, 31 bits with the reserved bit cleared (§6.9). 0 is an error the caller
 * judges: a stream error on a stream, a connection error on stream 0.
 */
export function readWindowIncrement(frame: H2Frame): number {
  return frame.buffer.readUInt32BE(frame.payloadOffset) & 0x7fffffff;
}

/** PING: the 8 opaque octets to echo in the acknowledgement (§6.7), as a view. */
export function readPingPayload(frame: H2Frame): Buffer {
  return frame.buffer.subarray(frame.payloadOffset, frame.payloadOffset + 8);
}

export interface GoawayFields {
  /** Highest stream the sender may have processed (§6.8); streams above it can be retried elsewhere. */
  readonly lastStreamId: number;
  readonly errorCode: number;
  /** Opaque diagnostic octets, a view into the frame. */
  readonly debugData: Buffer;
}

/** GOAWAY: last stream identifier, error code and debug data (§6.8). */
export function readGoaway(frame: H2Frame): GoawayFields {
  const p = frame.payloadOffset;
  return {
    lastStreamId: frame.buffer.readUInt32BE(p) & 0x7fffffff,
    errorCode: frame.buffer.readUInt32BE(p + 4),
    debugData: frame.buffer.subarray(p + 8, p + frame.length),
  };
}
