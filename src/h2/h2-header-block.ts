/**
 * Joins a field block sent as HEADERS plus CONTINUATION frames (RFC 9113 §4.3, §6.10) so the HPACK
 * decoder sees it whole; the FrameReader has already checked that the CONTINUATION frames follow without
 * interleaving.
 *
 * A block in one HEADERS frame (the usual case) is not copied. A longer one is copied into a buffer that
 * is kept for the next block, up to `maxBlockLength` octets: past that "too_large", after which the
 * connection must end, since a block that is not decoded leaves the peer's dynamic table out of step
 * (§4.3; RFC 9113 §10.5.1 asks for the block to be processed unless the connection closes). That limit
 * is what stands between a CONTINUATION flood and memory.
 */
import { FLAG_END_HEADERS, FLAG_END_STREAM, FRAME_HEADERS } from "./h2-frame-types.js";
import type { H2Frame } from "./h2-frame-reader.js";

export type HeaderBlockStatus = "complete" | "partial" | "too_large";

/**
 * The longest block a connection with SETTINGS_MAX_HEADER_LIST_SIZE `maxHeaderListSize` assembles:
 * twice the list (HPACK literals without Huffman coding are at most about its size, plus their
 * length prefixes) and one frame more, so every block that can decode within the limit fits.
 */
export function headerBlockBound(maxHeaderListSize: number): number {
  return maxHeaderListSize * 2 + 16_384;
}

export class HeaderBlockAssembler {
  private readonly maxBlockLength: number;
  private joined: Buffer = Buffer.allocUnsafeSlow(0);
  private filled = 0;
  /** The complete block, once `add` returned "complete": `buffer[offset, offset + length)`. */
  buffer: Buffer = this.joined;
  offset = 0;
  length = 0;
  /** Stream of the block, and whether its HEADERS frame ended the stream. */
  streamId = 0;
  endStream = false;

  constructor(maxBlockLength: number) {
    this.maxBlockLength = maxBlockLength;
  }

  /** Takes a HEADERS or CONTINUATION frame of the block in progress. */
  add(frame: H2Frame): HeaderBlockStatus {
    const last = frame.hasFlag(FLAG_END_HEADERS);
    if (frame.type === FRAME_HEADERS) {
      this.streamId = frame.streamId;
      this.endStream = frame.hasFlag(FLAG_END_STREAM);
      this.filled = 0;
      if (frame.dataLength > this.maxBlockLength) return "too_large";
      if (last) {
        this.buffer = frame.buffer;
        this.offset = frame.dataOffset;
        this.length = frame.dataLength;
        return "complete";
      }
    }
    const end = this.filled + frame.dataLength;
    if (end > this.maxBlockLength) return "too_large";
    if (end > this.joined.length) {
      const grown = Buffer.allocUnsafeSlow(
        Math.min(this.maxBlockLength, Math.max(end, this.joined.length * 2)),
      );
      this.joined.copy(grown, 0, 0, this.filled);
      this.joined = grown;
    }
    frame.buffer.copy(this.joined, this.filled, frame.dataOffset, frame.dataOffset + frame.dataLength);
    this.filled = end;
    if (!last) return "partial";
    this.buffer = this.joined;
    this.offset = 0;
    this.length = this.filled;
    return "complete";
  }
}
