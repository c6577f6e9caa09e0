/**
 * A token bucket for frames that cost the peer nothing and us work: PING, SETTINGS, RST_STREAM,
 * PRIORITY, empty DATA and CONTINUATION frames. It is what stops the floods of RFC 9113 §10.5 (and
 * the 2023 "rapid reset" pattern, streams opened and reset in bulk): a burst is fine, a sustained rate
 * above `perSecond` ends the connection with ENHANCE_YOUR_CALM. Clock injected for tests.
 */
export class FloodGuard {
  private tokens: number;
  private last: number;

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes `cost` tokens; false when the bucket is empty (the peer floods). */
  take(cost: number): boolean {
    if (this.tokens >= cost) {
      this.tokens -= cost;
      return true;
    }
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.perSecond) / 1000);
    this.last = t;
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }
}
