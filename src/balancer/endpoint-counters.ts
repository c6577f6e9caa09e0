/**
 * The per-endpoint counters of one cluster, in memory that worker threads share.
 *
 * - `active` is global: every worker thread adds and subtracts with Atomics on one Int32Array, so
 *   least-connections and bounded-load affinity see the load of the whole process (like Envoy's
 *   per-host atomic counters read by per-worker balancers). Policies read it with plain loads: a
 *   count that is one pick stale is harmless, a torn value cannot happen on an aligned Int32.
 * - `total` and `failures` are striped: each thread writes only its own Float64Array stripe with
 *   plain stores (no contention, no 2^31 wrap), and readers sum the stripes.
 * - `queue` holds, per slot, the queue depth last scraped from the endpoint's worker (`load_metrics`)
 *   and when (epoch ms), written only by the main thread's scraper and read by every thread's
 *   least_loaded picker. A reader may see a new depth with the previous time for a moment; the cost
 *   tolerates that (the age only discounts the depth).
 *
 * Pure: no I/O. The buffers are SharedArrayBuffers whether or not threads exist, so one code path
 * serves `threads: 1` and `threads: N`.
 */

/** What crosses a thread boundary to attach the same counters elsewhere. */
export interface EndpointCounterBuffers {
  readonly maxSlots: number;
  readonly stripes: number;
  readonly active: SharedArrayBuffer;
  readonly total: SharedArrayBuffer;
  readonly failures: SharedArrayBuffer;
  /** Per slot: scraped queue depth at 2·slot, scrape time (epoch ms, 0 = never) at 2·slot + 1. */
  readonly queue: SharedArrayBuffer;
  /**
   * One Int32: bumped on every release while some thread's queue waits for a slot (the count of
   * threads waiting is the second Int32), so a thread whose queued calls wait hears of slots that
   * other threads free (`Atomics.waitAsync`).
   */
  readonly signal: SharedArrayBuffer;
}

export class EndpointCounters {
  /** Global active connections (tcp) or streams (grpc) per slot. */
  readonly active: Int32Array;
  /** This thread's stripe: requests started per slot. */
  readonly total: Float64Array;
  /** This thread's stripe: data-path failures (connect failures, resets) per slot. */
  readonly failures: Float64Array;
  /** Scraped queue depth and time per slot (see `EndpointCounterBuffers.queue`). */
  private readonly queue: Float64Array;
  /** [releases, threads waiting] (see `EndpointCounterBuffers.signal`). */
  readonly signal: Int32Array;
  private readonly allTotal: Float64Array;
  private readonly allFailures: Float64Array;

  /** `stripe`: this thread's index in `0 … buffers.stripes - 1`. */
  constructor(
    readonly buffers: EndpointCounterBuffers,
    readonly stripe: number,
  ) {
    const { maxSlots, stripes } = buffers;
    if (!Number.isInteger(stripe) || stripe < 0 || stripe >= stripes)
      throw new RangeError(`counter stripe ${stripe} outside 0..${stripes - 1}`);
    this.active = new Int32Array(buffers.active);
    this.queue = new Float64Array(buffers.queue);
    this.signal = new Int32Array(buffers.signal);
    this.allTotal = new Float64Array(buffers.total);
    this.allFailures = new Float64Array(buffers.failures);
    this.total = this.allTotal.subarray(stripe * maxSlots, (stripe + 1) * maxSlots);
    this.failures = this.allFailures.subarray(stripe * maxSlots, (stripe + 1) * maxSlots);
  }

  /** Fresh zeroed counters for `maxSlots` endpoints written by `stripes` threads. */
  static create(maxSlots: number, stripes = 1): EndpointCounters {
    const f64 = Float64Array.BYTES_PER_ELEMENT;
    return new EndpointCounters(
      {
        maxSlots,
        stripes,
        active: new SharedArrayBuffer(maxSlots * Int32Array.BYTES_PER_ELEMENT),
        total: new SharedArrayBuffer(maxSlots * stripes * f64),
        failures: new SharedArrayBuffer(maxSlots * stripes * f64),
        queue: new SharedArrayBuffer(maxSlots * 2 * f64),
        signal: new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT),
      },
      0,
    );
  }

  get maxSlots(): number {
    return this.buffers.maxSlots;
  }

  acquire(slot: number): void {
    Atomics.add(this.active, slot, 1);
    this.total[slot] = (this.total[slot] ?? 0) + 1;
  }

  /** Returns the global active count after the release. */
  /**
   * Counts one more on `slot` unless it already holds `cap` (0 = no cap): one compare-and-swap
   * loop on the shared count, so threads together never pass the cap.
   */
  tryAcquire(slot: number, cap: number): boolean {
    if (cap <= 0) {
      this.acquire(slot);
      return true;
    }
    const active = this.active;
    for (let seen = Atomics.load(active, slot); seen < cap; seen = Atomics.load(active, slot)) {
      if (Atomics.compareExchange(active, slot, seen, seen + 1) === seen) {
        this.total[slot] = (this.total[slot] ?? 0) + 1;
        return true;
      }
    }
    return false;
  }

  release(slot: number): number {
    const left = Atomics.sub(this.active, slot, 1) - 1;
    if (Atomics.load(this.signal, 1) > 0) {
      Atomics.add(this.signal, 0, 1);
      Atomics.notify(this.signal, 0);
    }
    return left;
  }

  /**
   * Resolves when any thread releases a slot, or after `timeoutMs`, for a thread whose queue waits.
   * Releases signal only while some thread waits; the waiter is counted before the count of releases
   * is read, so a release in between is not missed.
   */
  async waitForRelease(timeoutMs: number): Promise<void> {
    Atomics.add(this.signal, 1, 1);
    try {
      const seen = Atomics.load(this.signal, 0);
      const wait = Atomics.waitAsync(this.signal, 0, seen, timeoutMs);
      if (wait.async) await wait.value;
    } finally {
      Atomics.sub(this.signal, 1, 1);
    }
  }

  recordFailure(slot: number): void {
    this.failures[slot] = (this.failures[slot] ?? 0) + 1;
  }

  activeOf(slot: number): number {
    return Atomics.load(this.active, slot);
  }

  /** Requests started on `slot` by every thread. */
  totalOf(slot: number): number {
    return sumStripes(this.allTotal, slot, this.buffers);
  }

  /** Failures on `slot` seen by every thread. */
  failuresOf(slot: number): number {
    return sumStripes(this.allFailures, slot, this.buffers);
  }

  /** Records a queue depth scraped from `slot`'s worker at `atMs` (epoch ms). */
  setQueue(slot: number, depth: number, atMs: number): void {
    this.queue[2 * slot] = depth;
    this.queue[2 * slot + 1] = atMs;
  }

  /** The last scraped queue depth of `slot` (0 when never scraped). */
  queueDepthOf(slot: number): number {
    return this.queue[2 * slot] ?? 0;
  }

  /** When `slot`'s queue depth was scraped (epoch ms; 0 = never). */
  queueScrapedAtOf(slot: number): number {
    return this.queue[2 * slot + 1] ?? 0;
  }

  /** Zeroes a slot in every stripe; only for a slot no thread uses (a fresh endpoint's). */
  resetSlot(slot: number): void {
    Atomics.store(this.active, slot, 0);
    this.setQueue(slot, 0, 0);
    for (let s = 0; s < this.buffers.stripes; s++) {
      this.allTotal[s * this.buffers.maxSlots + slot] = 0;
      this.allFailures[s * this.buffers.maxSlots + slot] = 0;
    }
  }
}

function sumStripes(all: Float64Array, slot: number, b: EndpointCounterBuffers): number {
  let n = 0;
  for (let s = 0; s < b.stripes; s++) n += all[s * b.maxSlots + slot] ?? 0;
  return n;
}
