/**
 * Hot-path counting for prom-client counters: a tally is one label set's handle whose increments
 * add to a plain number, moved into the counter when it is read (a scrape, `/metrics`, a test's
 * `get()`). A proxied stream then costs an addition instead of prom-client's label validation and
 * hashing per increment (measured: about 2 % of the frames engine's CPU per unary RPC, per counter).
 */
import { performance } from "node:perf_hooks";
import { Histogram, type Counter, type HistogramConfiguration } from "prom-client";

export class CounterTally<L extends string> {
  private pending = 0;

  constructor(
    private readonly counter: Counter<L>,
    private readonly labels: Partial<Record<L, string | number>>,
  ) {}

  add(n = 1): void {
    this.pending += n;
  }

  /** Moves what was counted into the counter. */
  flush(): void {
    if (this.pending === 0) return;
    this.counter.inc(this.labels, this.pending);
    this.pending = 0;
  }
}

/** The tallies of one counter, flushed by that counter's `collect()`. */
export class TallyBook<L extends string> {
  private readonly tallies = new Map<string, CounterTally<L>>();
  counter: Counter<L> | undefined;

  /** The tally of `labels` (one per distinct label set). */
  tally(labels: Partial<Record<L, string | number>>): CounterTally<L> {
    const key = Object.values(labels).join("\u0000");
    let t = this.tallies.get(key);
    if (!t) {
      if (!this.counter) throw new Error("tally book without a counter");
      t = new CounterTally(this.counter, labels);
      this.tallies.set(key, t);
    }
    return t;
  }

  flush(): void {
    for (const t of this.tallies.values()) t.flush();
  }
}

type LabelSet<L extends string> = Partial<Record<L, string | number>>;

/** One label set of a TalliedHistogram: per-bucket counts, sum and count in plain numbers. */
export class HistogramTally<L extends string> {
  /** Observations per bucket, not cumulative; the last slot is above every bound (+Inf only). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  /** False until the first observation or `zero`, and again after a reset or remove: not exported. */
  listed = false;

  constructor(
    readonly labels: LabelSet<L>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Counts `value` (seconds); NaN and infinities are not durations and are dropped. */
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    (this.counts[i] as number) += 1;
    this.sum += value;
    this.count++;
    this.listed = true;
  }

  /** Zero counts; `listed` says whether the series stays exported. */
  clear(listed: boolean): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
    this.listed = listed;
  }
}

/**
 * A prom-client Histogram whose observations land in tallies: a hot path resolves its label set to a
 * `HistogramTally` once and then costs a bucket search and three additions per observation, against
 * prom-client's label validation, label hashing and a closure per `observe` (measured: 0.6–0.85 KB of
 * garbage and about 5 % of the `frames` engine's CPU per unary RPC for the two histograms of a
 * stream). Every other way in (`observe`, `labels()`, `startTimer`, `zero`, `remove`, `reset`) goes
 * through the same tallies, and `get()` renders them as prom-client renders its own histograms, so
 * scrapes and the worker threads' aggregation see no difference (test/unit/metrics-tally.test.ts).
 * Exemplars are not supported.
 */
export class TalliedHistogram<L extends string> extends Histogram<L> {
  private readonly bounds: readonly number[];
  private readonly names: readonly string[];
  private readonly tallies = new Map<string, HistogramTally<L>>();

  constructor(private readonly config: HistogramConfiguration<L>) {
    if (config.enableExemplars) throw new Error(`${config.name}: a tallied histogram has no exemplars`);
    super(config);
    this.bounds = [...(config.buckets ?? DEFAULT_BUCKETS)].sort((a, b) => a - b);
    this.names = [...(config.labelNames ?? [])];
  }

  /** The tally of `labels`, one per distinct label set; keep it to observe without a lookup. */
  tally(labels: LabelSet<L>): HistogramTally<L> {
    const key = this.keyOf(labels);
    let t = this.tallies.get(key);
    if (!t) {
      t = new HistogramTally(labels, this.bounds);
      this.tallies.set(key, t);
    }
    return t;
  }

  /** What `observe` runs (prom-client points `observe` at it). */
  observeWithoutExemplar(labels: LabelSet<L> | number, value?: number): void {
    const [set, v] = typeof labels === "number" ? [{}, labels] : [labels ?? {}, value as number];
    if (!Number.isFinite(v)) throw new TypeError(`Value is not a valid number: ${v}`);
    this.tally(set).observe(v);
  }

  override labels(...args: unknown[]): Histogram.Internal<L> {
    const set = this.labelSetOf(args);
    const t = this.tally(set);
    return { observe: (v: number) => t.observe(v), startTimer: () => this.startTimer(set) };
  }

  override startTimer(labels?: LabelSet<L>): (endLabels?: LabelSet<L>) => number {
    const started = performance.now();
    return (endLabels) => {
      const seconds = (performance.now() - started) / 1000;
      this.tally({ ...labels, ...endLabels }).observe(seconds);
      return seconds;
    };
  }

  override zero(labels: LabelSet<L>): void {
    this.tally(labels).clear(true);
  }

  override remove(...args: unknown[]): void {
    this.tallies.get(this.keyOf(this.labelSetOf(args)))?.clear(false);
  }

  /** Empties every series; tallies already handed out keep working and reappear when they count. */
  override reset(): void {
    // prom-client's constructor calls reset() before this class's fields exist.
    if ((this.tallies as typeof this.tallies | undefined) === undefined) return;
    for (const t of this.tallies.values()) t.clear(false);
  }

  override async get(): Promise<HistogramData<L>> {
    const { name, help, collect, aggregator = "sum" } = this.config;
    if (collect) await collect.call(this);
    const bucketName = `${name}_bucket`;
    const values: HistogramData<L>["values"] = [];
    for (const t of this.tallies.values()) {
      if (!t.listed) continue;
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += t.counts[i] as number;
        values.push(point({ le: this.bounds[i], ...t.labels }, cumulative, bucketName, null));
      }
      values.push(point({ le: "+Inf", ...t.labels }, t.count, bucketName, null));
      values.push(point({ ...t.labels }, t.sum, `${name}_sum`, undefined));
      values.push(point({ ...t.labels }, t.count, `${name}_count`, undefined));
    }
    const data = { name, help, type: "histogram", values, aggregator } as unknown as HistogramData<L>;
    return data;
  }

  /** The text exposition reads the same values (prom-client prefers this method when present). */
  getForPromString(): Promise<HistogramData<L>> {
    return this.get();
  }

  /** `labels()` and `remove()` take either one label object or the values in `labelNames` order. */
  private labelSetOf(args: unknown[]): LabelSet<L> {
    if (args.length === 1 && typeof args[0] === "object") return args[0] as LabelSet<L>;
    const set: Record<string, unknown> = {};
    this.names.forEach((n, i) => (set[n] = args[i]));
    return set as LabelSet<L>;
  }

  private keyOf(labels: LabelSet<L>): string {
    for (const name of Object.keys(labels))
      if (!this.names.includes(name))
        throw new Error(`Added label "${name}" is not included in initial labelset`);
    let key = "";
    for (const name of this.names) key += `${labels[name as L] ?? ""}\u0000`;
    return key;
  }
}

/** prom-client's default buckets, for a histogram configured without any. */
const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What prom-client's `Histogram.get()` resolves to (its type is not exported). */
type HistogramData<L extends string> = Awaited<ReturnType<Histogram<L>["get"]>>;

/** One exported sample, shaped as prom-client's `get()` shapes histogram samples. */
function point<L extends string>(
  labels: Record<string, string | number | undefined>,
  value: number,
  metricName: string,
  exemplar: null | undefined,
): HistogramData<L>["values"][number] {
  return { value, metricName, exemplar, labels } as unknown as HistogramData<L>["values"][number];
}
