/**
 * Where a stream of length-prefixed gRPC messages is (PROTOCOL-HTTP2.md: a 1-byte compressed flag,
 * a 4-byte big-endian length, then the message): only the boundaries, so a stream can be cut or
 * merged at whole messages without reading a message's content. Pure; any split of the same bytes
 * into chunks gives the same boundaries.
 */
export class GrpcMessageFramer {
  /** Prefix bytes of the current message read so far (0 at a boundary). */
  private prefixRead = 0;
  private length = 0;
  /** Bytes of the current message's body still to come. */
  private left = 0;

  /** True between two messages (nothing of the next one read yet). */
  get atBoundary(): boolean {
    return this.prefixRead === 0;
  }

  /**
   * Reads `data` from `from` up to the end of the current message or of `data`, whichever is first,
   * and returns where it stopped. At a boundary (`atBoundary`) the message ended exactly there.
   */
  advance(data: Buffer, from: number): number {
    let i = from;
    const n = data.length;
    while (this.prefixRead < 5) {
      if (i === n) return i;
      const b = data[i++]!;
      if (this.prefixRead > 0) this.length = this.length * 256 + b;
      this.prefixRead++;
    }
    if (this.left === 0 && this.length > 0) {
      this.left = this.length;
      this.length = 0;
    }
    const take = Math.min(this.left, n - i);
    i += take;
    this.left -= take;
    if (this.left === 0) {
      this.prefixRead = 0;
      this.length = 0;
    }
    return i;
  }
}
