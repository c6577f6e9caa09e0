/**
 * The endpoint set of one cluster: membership, weight, health, drain and ejection flags, and the
 * per-endpoint counters the policies read (active) and the status page shows (total, failures).
 *
 * Pure: no I/O, no clock. Active counts live in an Int32Array so that the worker-thread build can back
 * them with a SharedArrayBuffer and let least-connections see global load without changing a policy.
 * Every change that can alter a pick bumps `version`; pickers are rebuilt lazily when it moved.
 */

export type EndpointHealth = "healthy" | "unhealthy";

export interface EndpointSpec {
  /** `host:port` or `[v6]:port`, exactly as configured; the endpoint's identity. */
  readonly address: string;
  /** Integer 1–1000. */
  readonly weight: number;
}

export interface Endpoint {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Index into the set's counter arrays; stable for the endpoint's lifetime in this set. */
  readonly slot: number;
  readonly weight: number;
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
  }
}

const MAX_SLOTS_DEFAULT = 1024;

export class EndpointSet {
  private readonly byAddress = new Map<string, MutableEndpoint>();
  private members: MutableEndpoint[] = [];
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  /** Active connections (tcp) or streams (grpc) per slot. */
  readonly active: Int32Array;
  /** Requests (connections or streams) started per slot since the endpoint joined. */
  readonly total: Float64Array;
  /** Data-path failures (connect failures, resets) per slot since the endpoint joined. */
  readonly failures: Float64Array;
  private versionCounter = 0;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly cluster: string,
    specs: readonly EndpointSpec[],
    options: { maxSlots?: number; activeBuffer?: Int32Array } = {},
  ) {
    const maxSlots = options.maxSlots ?? MAX_SLOTS_DEFAULT;
    this.active = options.activeBuffer ?? new Int32Array(maxSlots);
    this.total = new Float64Array(maxSlots);
    this.failures = new Float64Array(maxSlots);
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
    const next: MutableEndpoint[] = [];
    const seen = new Set<string>();
    for (const spec of specs) {
      if (seen.has(spec.address)) continue;
      seen.add(spec.address);
      let e = this.byAddress.get(spec.address);
      if (e && e.removed) {
        e.removed = false;
      }
      if (!e) {
        e = new MutableEndpoint(spec.address, spec.weight, this.allocateSlot());
        this.byAddress.set(spec.address, e);
      } else if (!keepWeights.has(spec.address)) {
        e.weight = spec.weight;
      }
      next.push(e);
    }
    for (const e of this.members) {
      if (!seen.has(e.address)) {
        e.removed = true;
        this.maybeFree(e);
      }
    }
    this.members = next;
    this.bump();
  }

  setHealth(address: string, health: EndpointHealth): boolean {
    return this.mutate(address, (e) => {
      if (e.health === health) return false;
      e.health = health;
      return true;
    });
  }

  setDrained(address: string, drained: boolean): boolean {
    return this.mutate(address, (e) => {
      if (e.drained === drained) return false;
      e.drained = drained;
      return true;
    });
  }

  setEjected(address: string, ejected: boolean): boolean {
    return this.mutate(address, (e) => {
      if (e.ejected === ejected) return false;
      e.ejected = ejected;
      return true;
    });
  }

  setWeight(address: string, weight: number): boolean {
    return this.mutate(address, (e) => {
      if (e.weight === weight) return false;
      e.weight = weight;
      return true;
    });
  }

  /** Counts one started connection or stream on `endpoint`. Pair with exactly one `release`. */
  acquire(endpoint: Endpoint): void {
    this.active[endpoint.slot] = (this.active[endpoint.slot] ?? 0) + 1;
    this.total[endpoint.slot] = (this.total[endpoint.slot] ?? 0) + 1;
  }

  release(endpoint: Endpoint): void {
    this.active[endpoint.slot] = (this.active[endpoint.slot] ?? 0) - 1;
    const e = this.byAddress.get(endpoint.address);
    if (e === endpoint && e.removed) this.maybeFree(e);
  }

  recordFailure(endpoint: Endpoint): void {
    this.failures[endpoint.slot] = (this.failures[endpoint.slot] ?? 0) + 1;
  }

  activeOf(endpoint: Endpoint): number {
    return this.active[endpoint.slot] ?? 0;
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

  private allocateSlot(): number {
    const slot = this.freeSlots.pop() ?? this.nextSlot++;
    if (slot >= this.active.length)
      throw new Error(`cluster ${this.cluster}: more than ${this.active.length} endpoints`);
    this.active[slot] = 0;
    this.total[slot] = 0;
    this.failures[slot] = 0;
    return slot;
  }

  private maybeFree(e: MutableEndpoint): void {
    if ((this.active[e.slot] ?? 0) > 0) return;
    this.byAddress.delete(e.address);
    this.freeSlots.push(e.slot);
  }

  private bump(): void {
    this.versionCounter++;
    for (const l of this.listeners) l();
  }
}
