/**
 * A cluster's retry budget (`clusters[].retry_budget_percent`, `retry_budget_min_concurrency`), as
 * Envoy's retry budgets work: retries running at once may be at most that percentage of the
 * cluster's active streams, and always at least the minimum. Beyond it a retryable status passes
 * through to the client: when a fleet is failing, retries would only add load to it.
 *
 * Retries are counted per thread (each worker thread has its own budget); the active streams are the
 * shared counts, so with worker threads the budget is a little looser than the percentage says.
 */
export class RetryBudget {
  private running = 0;

  constructor(
    private readonly percent: number,
    private readonly minConcurrency: number,
  ) {}

  /** Retries running now (in this thread). */
  get active(): number {
    return this.running;
  }

  /** Starts a retry when the budget allows one with `activeStreams` in the cluster; pair a true with `end`. */
  tryStart(activeStreams: number): boolean {
    const limit = Math.max(this.minConcurrency, Math.floor((activeStreams * this.percent) / 100));
    if (this.running >= limit) return false;
    this.running++;
    return true;
  }

  end(): void {
    if (this.running > 0) this.running--;
  }
}
