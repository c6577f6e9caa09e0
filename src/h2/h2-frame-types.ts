/**
 * HTTP/2 frame layout constants (RFC 9113 §4.1, §6): the 9-octet frame header, frame type codes and flag
 * bits as numbers for the wire, and names for logs.
 */

/** Octets in a frame header: length (24 bits), type, flags, R + stream identifier (31 bits) (§4.1). */
export const FRAME_HEADER_LENGTH = 9;

export const FRAME_DATA = 0x0;
export const FRAME_HEADERS = 0x1;
export const FRAME_PRIORITY = 0x2;
export const FRAME_RST_STREAM = 0x3;
export const FRAME_SETTINGS = 0x4;
export const FRAME_PUSH_PROMISE = 0x5;
export const FRAME_PING = 0x6;
export const FRAME_GOAWAY = 0x7;
export const FRAME_WINDOW_UPDATE = 0x8;
export const FRAME_CONTINUATION = 0x9;

export type H2FrameTypeName =
  | "DATA"
  | "HEADERS"
  | "PRIORITY"
  | "RST_STREAM"
  | "SETTINGS"
  | "PUSH_PROMISE"
  | "PING"
  | "GOAWAY"
  | "WINDOW_UPDATE"
  | "CONTINUATION";

const TYPE_NAMES: readonly H2FrameTypeName[] = [
  "DATA",
  "HEADERS",
  "PRIORITY",
  "RST_STREAM",
  "SETTINGS",
  "PUSH_PROMISE",
  "PING",
  "GOAWAY",
  "WINDOW_UPDATE",
  "CONTINUATION",
];

/** Name of a frame type code, or "UNKNOWN" (such frames are ignored, §4.1). */
export function frameTypeName(type: number): H2FrameTypeName | "UNKNOWN" {
  return TYPE_NAMES[type] ?? "UNKNOWN";
}

/** DATA, HEADERS: the last frame the sender will send on the stream (§6.1, §6.2). */
export const FLAG_END_STREAM = 0x1;
/** SETTINGS, PING: acknowledgement (§6.5, §6.7); the same bit as END_STREAM. */
export const FLAG_ACK = 0x1;
/** HEADERS, PUSH_PROMISE, CONTINUATION: the field block ends in this frame (§6.2, §6.10). */
export const FLAG_END_HEADERS = 0x4;
/** DATA, HEADERS, PUSH_PROMISE: a pad length octet leads the payload (§6.1). */
export const FLAG_PADDED = 0x8;
/** HEADERS: exclusive flag, stream dependency and weight lead the fragment (§6.2). */
export const FLAG_PRIORITY = 0x20;

/** SETTINGS_MAX_FRAME_SIZE bounds (§6.5.2): the initial value is also the smallest allowed. */
export const MIN_MAX_FRAME_SIZE = 16_384;
export const MAX_MAX_FRAME_SIZE = 16_777_215;

/** Largest stream identifier and flow-control window (§5.1.1, §6.9.1): 2^31 - 1. */
export const MAX_STREAM_ID = 0x7fffffff;
export const MAX_WINDOW_SIZE = 0x7fffffff;
