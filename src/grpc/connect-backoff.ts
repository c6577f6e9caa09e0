/**
 * Exponential backoff of connects to one endpoint, for both engines' pools: after n consecutive
 * failures no connect is tried for 100 ms × 2^(n−1) (at most 5 s, 80–100 % of it, so pools do not
 * retry in step), and streams asking meanwhile fail at once with the last reason, so a dead endpoint
 * costs nothing per stream. A success resets it.
 */
const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 5000;

export class ConnectBackoff {
  private consecutiveFailures = 0;
  private retryAt = 0;
  private lastFailure = "";

  /** Why a connect must not be tried now, or undefined when it may. */
  refusal(): string | undefined {
    return Date.now() < this.retryAt ? `backing off after: ${this.lastFailure}` : undefined;
  }

  failed(reason: string): void {
    this.consecutiveFailures++;
    this.lastFailure = reason;
    const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.consecutiveFailures - 1));
    this.retryAt = Date.now() + backoff * (0.8 + 0.2 * Math.random());
  }

  succeeded(): void {
    this.consecutiveFailures = 0;
    this.retryAt = 0;
  }
}
