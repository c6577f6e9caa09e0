/**
 * A warning that may fire once per connection logs at most once per period and key, with the count
 * of occurrences it stood for: operators hear about refusals without a log line per connection.
 */
import type { Logger } from "./logger.js";

export class RateLimitedWarning {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly periodMs: number,
  ) {}

  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.periodMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.last.set(key, { at: now, suppressed: 0 });
    this.log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, msg);
  }
}
