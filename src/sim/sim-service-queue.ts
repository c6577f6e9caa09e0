/**
 * The service-time model of the simulated inference workers: `slots` requests in service at once (a
 * GPU's batch capacity, or a server's concurrency limit), each for `serviceMs`; the rest wait in
 * arrival order. Waiting requests are counted per tag (a model name), which is what an inference
 * server's queue gauge reports (Triton's `nv_inference_pending_request_count{model}`).
 */

interface Waiting {
  readonly tag: string;
  readonly serve: () => void;
}

export class SimServiceQueue {
  /** Requests in service now (holding a slot), and the peak of it. */
  active = 0;
  maxActive = 0;
  private readonly waiting: Waiting[] = [];
  private readonly waitingByTag = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();

  /** `slots`: Infinity = no limit; `serviceMs()`: drawn once per request when its service starts. */
  constructor(
    private readonly slots: number,
    private readonly serviceMs: () => number,
  ) {}

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Requests tagged `tag` waiting for a slot. */
  queuedOf(tag: string): number {
    return this.waitingByTag.get(tag) ?? 0;
  }

  /** Serves one request: `done` runs when its service time has passed (after any wait for a slot). */
  run(tag: string, done: () => void): void {
    const serve = (): void => {
      const ms = this.serviceMs();
      const finish = (): void => {
        const next = this.waiting.shift();
        if (next) {
          this.waitingByTag.set(next.tag, (this.waitingByTag.get(next.tag) ?? 1) - 1);
          next.serve();
        } else {
          this.active--;
        }
        done();
      };
      if (ms <= 0) return finish();
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        finish();
      }, ms);
      this.timers.add(timer);
    };
    if (this.active < this.slots) {
      this.active++;
      this.maxActive = Math.max(this.maxActive, this.active);
      serve();
    } else {
      this.waiting.push({ tag, serve });
      this.waitingByTag.set(tag, (this.waitingByTag.get(tag) ?? 0) + 1);
    }
  }

  /** Drops every waiting request and service timer (the worker is closing; its calls are cut). */
  clear(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.waiting.length = 0;
    this.waitingByTag.clear();
  }
}
