/**
 * The per-endpoint counters of one cluster, in memory that worker threads share.
 *
 * - `active` is global: every worker thread adds and subtracts with Atomics on one Int32Array, so
 *   least-connections and bounded-load affinity see the load of the whole process (like Envoy's
 *   per-host atomic counters read by per-worker balancers). Policies read it with plain loads: a
 *   count that is one pick stale is harmless, a torn value cannot happen on an aligned Int32.
 * - `total` and `failures` are striped: each thread writes only its own Float64Array stripe with
 *   plain stores (no contention, no 2^31 wrap), and readers sum the stripes.
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
}

export class EndpointCounters {
  /** Global active connections (tcp) or streams (grpc) per slot. */
  readonly active: Int32Array;
  /** This thread's stripe: requests started per slot. */
  readonly total: Float64Array;
  /** This thread's stripe: data-path failures (connect failures, resets) per slot. */
  readonly failures: Float64Array;
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
  release(slot: number): number {
    return Atomics.sub(this.active, slot, 1) - 1;
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

  /** Zeroes a slot in every stripe; only for a slot no thread uses (a fresh endpoint's). */
  resetSlot(slot: number): void {
    Atomics.store(this.active, slot, 0);
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
