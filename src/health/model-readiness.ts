/**
 * Which endpoints of one cluster have which model ready: per endpoint and per configured model
 * (`clusters[].models`), the same threshold logic as endpoint health (Envoy's health checker
 * semantics, health-thresholds.ts), fed by the triton prober's `ModelReady` results. A model changes
 * state after exactly `healthy_threshold` / `unhealthy_threshold` consecutive results that disagree
 * with it, and models start ready as endpoints start healthy, so a new endpoint or a new model takes
 * traffic before its first probe, like everything else in Fulcrum.
 *
 * It is a record, not a policy: model-aware routing reads it (`isReady`, `readyEndpoints`) and decides.
 * Endpoint health stays separate: an endpoint whose whole server is not ready is unhealthy in the
 * endpoint set, whatever this record says about its models.
 *
 * Pure: no I/O, no clock. Every change of a readiness or of the model list bumps `version`.
 */
import {
  HealthThresholds,
  type HealthTransition,
  type ProbeResult,
  type Thresholds,
} from "./health-thresholds.js";

/** One entry of `clusters[].models`: a model name and a version (`""` = whichever the worker serves). */
export interface ModelRef {
  readonly name: string;
  readonly version: string;
}

/** One model's readiness on one endpoint, as `stateOf` reports it. */
export interface ModelState {
  readonly name: string;
  readonly version: string;
  readonly ready: boolean;
}

// Model names and versions are free text in the config; a newline appears in neither key part.
function keyOf(model: ModelRef): string {
  return `${model.name}\n${model.version}`;
}

export class ModelReadiness {
  private thresholds: Thresholds;
  private configured: readonly ModelRef[] = [];
  private readonly keys = new Map<string, ModelRef>();
  /** address → model key → counter. Absent means "ready, nothing counted yet". */
  private readonly byEndpoint = new Map<string, Map<string, HealthThresholds>>();
  /** model key → addresses where it is not ready (the exception, so the set stays small). */
  private readonly notReadyAt = new Map<string, Set<string>>();
  private versionCounter = 0;
  private readonly listeners = new Set<() => void>();

  constructor(thresholds: Thresholds, models: readonly ModelRef[] = []) {
    checkThresholds(thresholds);
    this.thresholds = thresholds;
    this.configure(models, thresholds);
  }

  /** The tracked models, in configuration order. */
  get models(): readonly ModelRef[] {
    return this.configured;
  }

  /** Bumped on every change of a model's readiness on an endpoint, and of the model list. */
  get version(): number {
    return this.versionCounter;
  }

  /** Called after every version bump (e.g. to mirror the record to worker threads). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Takes a reload's model list and thresholds: kept models keep their readiness on every endpoint
   * (streaks restart, as endpoint health's do on reload); added models start ready; removed ones are
   * forgotten.
   */
  configure(models: readonly ModelRef[], thresholds: Thresholds): void {
    checkThresholds(thresholds);
    const next = new Map<string, ModelRef>();
    for (const m of models) if (!next.has(keyOf(m))) next.set(keyOf(m), { name: m.name, version: m.version });
    const changedThresholds =
      thresholds.healthy !== this.thresholds.healthy || thresholds.unhealthy !== this.thresholds.unhealthy;
    this.thresholds = thresholds;
    for (const counters of this.byEndpoint.values()) {
      for (const [key, counter] of counters) {
        if (!next.has(key)) counters.delete(key);
        else if (changedThresholds) counters.set(key, new HealthThresholds(thresholds, counter.state));
      }
    }
    for (const key of [...this.notReadyAt.keys()]) if (!next.has(key)) this.notReadyAt.delete(key);
    const same =
      next.size === this.keys.size && [...next.keys()].every((k, i) => [...this.keys.keys()][i] === k);
    this.keys.clear();
    for (const [k, m] of next) this.keys.set(k, m);
    this.configured = [...next.values()];
    if (!same) this.bump();
  }

  /** Forgets endpoints no longer in the cluster; a returning endpoint starts with every model ready. */
  syncEndpoints(addresses: Iterable<string>): void {
    const keep = new Set(addresses);
    let changed = false;
    for (const address of [...this.byEndpoint.keys()]) {
      if (keep.has(address)) continue;
      this.byEndpoint.delete(address);
      for (const set of this.notReadyAt.values()) changed = set.delete(address) || changed;
    }
    if (changed) this.bump();
  }

  /**
   * Counts one `ModelReady` result of `model` on `address`. A model that is not configured is not
   * tracked: its results are ignored and reported as unchanged.
   */
  observe(address: string, model: ModelRef, result: ProbeResult): HealthTransition {
    const key = keyOf(model);
    if (!this.keys.has(key)) return UNCHANGED;
    let counters = this.byEndpoint.get(address);
    if (!counters) this.byEndpoint.set(address, (counters = new Map<string, HealthThresholds>()));
    let counter = counters.get(key);
    if (!counter) counters.set(key, (counter = new HealthThresholds(this.thresholds)));
    const transition = counter.observe(result);
    if (transition.kind !== "changed") return transition;
    let set = this.notReadyAt.get(key);
    if (!set) this.notReadyAt.set(key, (set = new Set()));
    if (transition.to === "healthy") set.delete(address);
    else set.add(address);
    this.bump();
    return transition;
  }

  /**
   * True unless `model` was counted not ready on `address`. Untracked models and endpoints that were
   * never probed answer true: Fulcrum knows nothing against them, and models start ready.
   */
  isReady(address: string, model: ModelRef): boolean {
    return !(this.notReadyAt.get(keyOf(model))?.has(address) ?? false);
  }

  /** True when `model` is one of the configured models. */
  tracks(model: ModelRef): boolean {
    return this.keys.has(keyOf(model));
  }

  /** The addresses where `model` is counted not ready (empty for untracked models). */
  notReady(model: ModelRef): ReadonlySet<string> {
    return this.notReadyAt.get(keyOf(model)) ?? EMPTY;
  }

  /** The members of `endpoints` (in their order) that have `model` ready. */
  readyEndpoints<E extends { readonly address: string }>(model: ModelRef, endpoints: readonly E[]): E[] {
    const not = this.notReadyAt.get(keyOf(model));
    if (!not || not.size === 0) return [...endpoints];
    return endpoints.filter((e) => !not.has(e.address));
  }

  /** The not-ready record as plain data, for worker threads to mirror (`mirror`). */
  snapshot(): [ModelRef, string[]][] {
    const out: [ModelRef, string[]][] = [];
    for (const [key, set] of this.notReadyAt) {
      const ref = this.keys.get(key);
      if (ref && set.size > 0) out.push([ref, [...set]]);
    }
    return out;
  }

  /**
   * A worker thread's copy takes the main thread's record as it is (the main thread probes and
   * applies the thresholds; the copy only answers `isReady`).
   */
  mirror(entries: readonly (readonly [ModelRef, readonly string[]])[]): void {
    this.notReadyAt.clear();
    for (const [ref, addresses] of entries) this.notReadyAt.set(keyOf(ref), new Set(addresses));
    this.bump();
  }

  /** Every tracked model's readiness on `address`, in configuration order (status pages, tests). */
  stateOf(address: string): ModelState[] {
    return this.configured.map((m) => ({
      name: m.name,
      version: m.version,
      ready: this.isReady(address, m),
    }));
  }

  private bump(): void {
    this.versionCounter++;
    for (const l of this.listeners) l();
  }
}

function checkThresholds(t: Thresholds): void {
  if (t.healthy < 1 || t.unhealthy < 1) throw new RangeError("thresholds must be ≥ 1");
}

const EMPTY: ReadonlySet<string> = new Set();
const UNCHANGED: HealthTransition = Object.freeze({ kind: "unchanged" });
