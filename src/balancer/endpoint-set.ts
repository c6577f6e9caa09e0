/**
 * The endpoint set of one cluster: membership, weight, health, drain and ejection flags, and the
 * per-endpoint counters the policies read (active) and the status page shows (total, failures).
 *
 * Pure: no I/O, no clock. Counters live in EndpointCounters (shared memory), so with worker threads
 * least-connections sees the load of the whole process without a policy knowing about threads.
 * Every change that can alter a pick bumps `version`; pickers are rebuilt lazily when it moved.
 *
 * With worker threads the main thread's set is the source of truth and allocates slots; each worker
 * thread keeps a mirror that takes the same slots from `EndpointSpec.slot`.
 */
import { EndpointCounters } from "./endpoint-counters.js";

export type EndpointHealth = "healthy" | "unhealthy";

export interface EndpointSpec {
  /** `host:port` or `[v6]:port`, exactly as configured; the endpoint's identity. */
  readonly address: string;
  /** Integer 1–1000. */
  readonly weight: number;
  /** The counter slot, given only to a mirror of another thread's set (which allocated it). */
  readonly slot?: number | undefined;
}

export interface Endpoint {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Index into the set's counter arrays; stable for the endpoint's lifetime in this set. */
  readonly slot: number;
  /** The weight the policies use: `configuredWeight`, ramped during slow start. */
  readonly weight: number;
  /** `endpoints[].weight` or the admin API's. */
  readonly configuredWeight: number;
  readonly health: EndpointHealth;
  readonly drained: boolean;
  readonly ejected: boolean;
  /** Removed from the set by a reload; kept alive while connections still count against it. */
  readonly removed: boolean;
}

/** Splits `host:port` / `[v6]:port`; returns undefined when the text is not an address. */
export function splitAddress(address: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: (m[1] ?? m[2]) as string, port };
}

class MutableEndpoint implements Endpoint {
  health: EndpointHealth = "healthy";
  drained = false;
  ejected = false;
  removed = false;
  weight: number;
  configuredWeight: number;
  /** When the endpoint's slow start began (ms, the set's clock); 0 = not ramping. */
  rampFrom = 0;
  /** Slow start's share now, 0.1 … 1 (weight = configuredWeight × ramp). */
  ramp = 1;
  readonly host: string;
  readonly port: number;
  constructor(
    readonly address: string,
    weight: number,
    readonly slot: number,
  ) {
    const parts = splitAddress(address);
    if (!parts) throw new Error(`invalid endpoint address ${JSON.stringify(address)}`);
    this.host = parts.host;
    this.port = parts.port;
    this.weight = weight;
    this.configuredWeight = weight;
  }
}

const MAX_SLOTS_DEFAULT = 1024;

/** Slow start begins at this share of the weight (HAProxy and Envoy start near 10 % too). */
export const SLOW_START_FLOOR = 0.1;

/** Slow start's share `elapsedMs` into a ramp of `windowMs`: 10 % rising linearly to 100 %. */
export function rampAt(elapsedMs: number, windowMs: number): number {
  if (windowMs <= 0 || elapsedMs >= windowMs) return 1;
  return SLOW_START_FLOOR + (1 - SLOW_START_FLOOR) * (Math.max(0, elapsedMs) / windowMs);
}

export class EndpointSet {
  private readonly byAddress = new Map<string, MutableEndpoint>();
  private members: MutableEndpoint[] = [];
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  /** Active counts (global across threads), requests started and failures per slot. */
  readonly counters: EndpointCounters;
  private versionCounter = 0;
  private readonly listeners = new Set<() => void>();
  private slowStartMs = 0;
  private clock: () => number = Date.now;
  private rampingCount = 0;
  /** False until the first `update`: the first config's endpoints do not ramp. */
  private populated = false;
  private caps: ReadonlyMap<string, number> = new Map();
  private defaultCap = 0;
  private capped = false;

  constructor(
    readonly cluster: string,
    specs: readonly EndpointSpec[],
    options: { maxSlots?: number; counters?: EndpointCounters } = {},
  ) {
    this.counters = options.counters ?? EndpointCounters.create(options.maxSlots ?? MAX_SLOTS_DEFAULT);
    this.update(specs);
  }

  /** Bumped on every change that can alter a pick (membership, weight, health, drain, ejection). */
  get version(): number {
    return this.versionCounter;
  }

  /** Current members, in configuration order; excludes removed endpoints. */
  get endpoints(): readonly Endpoint[] {
    return this.members;
  }

  /** The current member holding counter `slot` (sequence pins name endpoints by slot). */
  bySlot(slot: number): Endpoint | undefined {
    for (const e of this.members) if (e.slot === slot) return e;
    return undefined;
  }

  get(address: string): Endpoint | undefined {
    const e = this.byAddress.get(address);
    return e && !e.removed ? e : undefined;
  }

  /** Called after every version bump; used to push state to metrics and other worker threads. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Replaces the membership with `specs`. Kept endpoints keep their health, drain, ejection and
   * counters (a weight set through the admin API survives while `keepWeights` lists it); added ones
   * start healthy; removed ones are flagged `removed` and keep their slot until `release` brings their
   * active count to zero.
   */
  update(specs: readonly EndpointSpec[], keepWeights: ReadonlySet<string> = new Set()): void {
    this.sweep();
    const next: MutableEndpoint[] = [];
    const seen = new Set<string>();
    for (const spec of specs) {
      if (seen.has(spec.address)) continue;
      seen.add(spec.address);
      let e = this.byAddress.get(spec.address);
      if (e && e.removed) {
        e.removed = false;
      }
      if (e && spec.slot !== undefined && e.slot !== spec.slot) {
        // The owner freed and reused the slot while this mirror still held the old endpoint.
        this.byAddress.delete(e.address);
        e = undefined;
      }
      if (!e) {
        e = new MutableEndpoint(spec.address, spec.weight, spec.slot ?? this.allocateSlot());
        this.byAddress.set(spec.address, e);
        // Endpoints of the first config start at full weight; ones added later ramp up.
        if (this.populated) this.startRamp(e);
      } else if (!keepWeights.has(spec.address)) {
        e.configuredWeight = spec.weight;
        e.weight = spec.weight * e.ramp;
      }
      next.push(e);
    }
    for (const e of this.members) {
      if (!seen.has(e.address)) {
        e.removed = true;
        this.endRamp(e);
        this.maybeFree(e);
      }
    }
    this.members = next;
    if (next.length > 0) this.populated = true;
    this.bump();
  }

  setHealth(address: string, health: EndpointHealth): boolean {
    return this.mutate(address, (e) => {
      if (e.health === health) return false;
      e.health = health;
      if (health === "healthy") this.startRamp(e);
      return true;
    });
  }

  setDrained(address: string, drained: boolean): boolean {
    return this.mutate(address, (e) => {
      if (e.drained === drained) return false;
      e.drained = drained;
      if (!drained) this.startRamp(e);
      return true;
    });
  }

  setEjected(address: string, ejected: boolean): boolean {
    return this.mutate(address, (e) => {
      if (e.ejected === ejected) return false;
      e.ejected = ejected;
      if (!ejected) this.startRamp(e);
      return true;
    });
  }

  setWeight(address: string, weight: number): boolean {
    return this.mutate(address, (e) => {
      if (e.configuredWeight === weight) return false;
      e.configuredWeight = weight;
      e.weight = weight * e.ramp;
      return true;
    });
  }

  /**
   * `clusters[].slow_start`: an endpoint that is added, undrained, healthy again or back from an
   * ejection takes weight (and cap) from 10 % to 100 % linearly over `ms` (0 = off), as HAProxy's
   * `slowstart`. `now` is the clock (ms) the ramps are read on.
   */
  setSlowStart(ms: number, now: () => number = Date.now): void {
    this.slowStartMs = ms;
    this.clock = now;
    if (ms <= 0) for (const e of this.members) this.endRamp(e);
  }

  /** True while some endpoint ramps: the balancer calls `refreshRamps` now and then. */
  get ramping(): boolean {
    return this.rampingCount > 0;
  }

  /** Milliseconds between two `refreshRamps` (a twentieth of the slow start, at least 50 ms). */
  get rampStepMs(): number {
    return Math.max(50, this.slowStartMs / 20);
  }

  get now(): number {
    return this.clock();
  }

  /** Moves every ramp to the clock's time; a changed weight rebuilds the pickers (a new version). */
  refreshRamps(): void {
    if (this.rampingCount === 0) return;
    const now = this.clock();
    for (const e of this.byAddress.values()) {
      if (e.rampFrom === 0) continue;
      const ramp = rampAt(now - e.rampFrom, this.slowStartMs);
      if (ramp >= 1) this.endRamp(e);
      else {
        e.ramp = ramp;
        e.weight = e.configuredWeight * ramp;
      }
    }
    this.bump();
  }

  private startRamp(e: MutableEndpoint): void {
    if (this.slowStartMs <= 0 || !EndpointSet.eligible(e)) return;
    if (e.rampFrom === 0) this.rampingCount++;
    e.rampFrom = Math.max(1, this.clock());
    e.ramp = SLOW_START_FLOOR;
    e.weight = e.configuredWeight * SLOW_START_FLOOR;
  }

  private endRamp(e: MutableEndpoint): void {
    if (e.rampFrom !== 0) this.rampingCount--;
    e.rampFrom = 0;
    e.ramp = 1;
    e.weight = e.configuredWeight;
  }

  /** Counts one started connection or stream on `endpoint`. Pair with exactly one `release`. */
  acquire(endpoint: Endpoint): void {
    this.counters.acquire(endpoint.slot);
  }

  /**
   * Each endpoint's cap on active work (0 = none), set from the config at each reload by every
   * thread alike; endpoints not in `caps` get `defaultCap`.
   */
  setCaps(caps: ReadonlyMap<string, number>, defaultCap: number): void {
    this.caps = caps;
    this.defaultCap = defaultCap;
    this.capped = defaultCap > 0 || [...caps.values()].some((c) => c > 0);
  }

  /** True when some endpoint has a cap. */
  get hasCaps(): boolean {
    return this.capped;
  }

  /** The endpoint's cap now: its own or the cluster's, ramped during slow start (at least 1); 0 = none. */
  capOf(endpoint: Endpoint): number {
    const cap = this.caps.get(endpoint.address) ?? this.defaultCap;
    const ramp = (endpoint as MutableEndpoint).ramp;
    return cap <= 0 || ramp >= 1 ? cap : Math.max(1, Math.round(cap * ramp));
  }

  /** True when `endpoint` is below its cap (or has none). */
  hasRoom(endpoint: Endpoint): boolean {
    if (!this.capped) return true;
    const cap = this.capOf(endpoint);
    return cap <= 0 || this.activeOf(endpoint) < cap;
  }

  /** Counts work on `endpoint` unless it is at its cap (exact across threads); pair a true with `release`. */
  tryAcquire(endpoint: Endpoint): boolean {
    return this.counters.tryAcquire(endpoint.slot, this.capped ? this.capOf(endpoint) : 0);
  }

  release(endpoint: Endpoint): void {
    this.counters.release(endpoint.slot);
    const e = this.byAddress.get(endpoint.address);
    if (e === endpoint && e.removed) this.maybeFree(e);
  }

  recordFailure(endpoint: Endpoint): void {
    this.counters.recordFailure(endpoint.slot);
  }

  /** Active connections (tcp) or streams (grpc) on `endpoint`, across every thread. */
  activeOf(endpoint: Endpoint): number {
    return this.counters.active[endpoint.slot] ?? 0;
  }

  /** Requests (connections or streams) started on `endpoint` since it joined, across every thread. */
  totalOf(endpoint: Endpoint): number {
    return this.counters.totalOf(endpoint.slot);
  }

  /** Data-path failures (connect failures, resets) on `endpoint` since it joined, across every thread. */
  failuresOf(endpoint: Endpoint): number {
    return this.counters.failuresOf(endpoint.slot);
  }

  /**
   * Frees the slots of removed endpoints that nothing counts against any more. The owner of a set
   * shared with worker threads calls it, since releases happen in the threads, not here.
   */
  sweep(): void {
    for (const e of this.byAddress.values()) if (e.removed) this.maybeFree(e);
  }

  /** True when the endpoint may take new work: healthy, not ejected, not drained, not removed. */
  static eligible(e: Endpoint): boolean {
    return e.health === "healthy" && !e.ejected && !e.drained && !e.removed;
  }

  private mutate(address: string, fn: (e: MutableEndpoint) => boolean): boolean {
    const e = this.byAddress.get(address);
    if (!e || e.removed) return false;
    if (!fn(e)) return false;
    this.bump();
    return true;
  }

  /**
   * Fresh slots first, freed ones only when none is left: a worker thread may still hold a removed
   * endpoint's slot for a moment after the owner freed it, and reuse that late keeps it harmless.
   */
  private allocateSlot(): number {
    const slot = this.nextSlot < this.counters.maxSlots ? this.nextSlot++ : this.freeSlots.shift();
    if (slot === undefined)
      throw new Error(`cluster ${this.cluster}: more than ${this.counters.maxSlots} endpoints`);
    this.counters.resetSlot(slot);
    return slot;
  }

  private maybeFree(e: MutableEndpoint): void {
    if (this.activeOf(e) > 0) return;
    this.byAddress.delete(e.address);
    this.freeSlots.push(e.slot);
  }

  private bump(): void {
    this.versionCounter++;
    for (const l of this.listeners) l();
  }
}
