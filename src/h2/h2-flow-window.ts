/**
 * One receive window of HTTP/2 flow control (RFC 9113 §5.2, §6.9), the connection's or a stream's,
 * with the rule that makes it backpressure: octets are given back to the peer (WINDOW_UPDATE) only
 * once they were handed on, and in batches of at least half the window, so a stream of small DATA
 * frames costs one WINDOW_UPDATE per half window instead of one per frame.
 */
export class ReceiveWindow {
  /** What the peer may still send. */
  available: number;
  /** Octets handed on and not given back yet. */
  private pending = 0;
  /** The window we advertise; a batch is half of it. */
  private size: number;

  constructor(size: number, initial = size) {
    this.size = size;
    this.available = initial;
  }

  /** The peer sent `n` flow-controlled octets; false when they exceed the window (FLOW_CONTROL_ERROR). */
  receive(n: number): boolean {
    this.available -= n;
    return this.available >= 0;
  }

  /**
   * `n` received octets were handed on (or dropped); returns the WINDOW_UPDATE increment to send now,
   * 0 while the batch is below half the window.
   */
  consumed(n: number): number {
    this.pending += n;
    if (this.pending < this.size / 2) return 0;
    const increment = this.pending;
    this.available += increment;
    this.pending = 0;
    return increment;
  }

  /** Raises the advertised window to `size` (the preface); returns the increment to send. */
  grow(size: number): number {
    const increment = size - this.size;
    this.size = size;
    this.available += increment;
    return increment;
  }
}
