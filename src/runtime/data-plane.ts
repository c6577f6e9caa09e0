/**
 * The traffic-serving half of Fulcrum in one thread: the listeners and the upstream HTTP/2 pools
 * behind them. With `threads: 1` it runs in the main thread on the main thread's clusters; with
 * worker threads each worker thread runs one on its mirror of the clusters (threads-worker.ts), all
 * bound to the same addresses with `reusePort` so the kernel spreads connections over them.
 *
 * A reload is two-phase so that every thread binds before any thread changes: `prepare` binds the
 * listeners the new config adds (and changes nothing else), then `commit` or `abort`.
 */
import { splitAddress, type EndpointSet } from "../balancer/endpoint-set.js";
import type { ClusterConfig, FulcrumConfig, ListenerConfig } from "../config/config-schema.js";
import { durationMs, sizeBytes } from "../config/config-units.js";
import { ClusterPools } from "../grpc/engine-http2/cluster-pools.js";
import { GrpcListener } from "../grpc/engine-http2/grpc-listener.js";
import { FramesListener } from "../grpc/engine-frames/frames-listener.js";
import { FramesClusterPools } from "../grpc/engine-frames/frames-upstream-pool.js";
import { AccessLogSink } from "../access-log/access-log.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import { TcpListener } from "../tcp/tcp-listener.js";
import type { UpstreamCluster } from "../cluster/upstream-cluster.js";
import type { Listener, ListenerStatus } from "../net/listener.js";
import { sameSocket, upstreamChanged } from "./reload-plan.js";

export interface DataPlaneDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The `thread` label of this thread's metrics ("0" without worker threads). */
  readonly thread: string;
  /** Bind with SO_REUSEPORT (worker threads share each address). */
  readonly reusePort: boolean;
  /** The cluster runtime called `name` now; reloads replace runtimes, so it is looked up per use. */
  readonly cluster: (name: string) => UpstreamCluster;
  /** Where this thread's access-log lines go; default stdout (buffered, see access-log.ts). */
  readonly accessLog?: AccessLogSink | undefined;
}

/** One listener as `/status` shows it. */
/**
 * Where the listeners run, as the main thread drives them: a DataPlane in the main thread
 * (`threads: 1`) or one in each worker thread (ThreadsHost). Same phases either way.
 */
export interface DataPlaneHost {
  /** Binds every listener; resolves with their addresses by index, or throws a BindError. */
  start(): Promise<string[]>;
  prepare(next: FulcrumConfig): Promise<(string | undefined)[]>;
  commit(next: FulcrumConfig): void;
  abort(): void;
  /** Listener activity, summed over worker threads. */
  status(): Promise<ListenerStatus[]> | ListenerStatus[];
  stop(drainMs: number): Promise<void>;
  closeNow(): void;
}

/** A listener that could not bind, by its index in the config's `listeners`. */
export class BindError extends Error {
  constructor(
    readonly index: number,
    readonly code: string,
  ) {
    super(`listeners[${index}] cannot bind: ${code}`);
  }
}

/**
 * Port overrides by listener index: the worker threads after the first bind the port the first one
 * got (a configured port 0 must become one shared port, not one per thread).
 */
export type PortOverrides = readonly (number | undefined)[];

/** A cluster's endpoint set as this thread last saw it, to act when endpoints leave. */
interface Watch {
  readonly set: EndpointSet;
  readonly unsubscribe: () => void;
  members: ReadonlySet<string>;
}

/** The upstream pools of one cluster for one engine. */
type EnginePools = ClusterPools | FramesClusterPools;

interface PendingReload {
  readonly keep: Map<Listener, ListenerConfig>;
  readonly retiring: Listener[];
  readonly fresh: Listener[];
}

export class DataPlane implements DataPlaneHost {
  private listeners: Listener[] = [];
  /** Upstream pools by engine and cluster (`http2/name`, `frames/name`). */
  private readonly pools = new Map<string, EnginePools>();
  private readonly watches = new Map<string, Watch>();
  /** Pools replaced or removed by a reload, destroyed when its drain_timeout runs out. */
  private readonly retiredPools: EnginePools[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private pending: PendingReload | undefined;
  private readonly accessLog: AccessLogSink;

  constructor(
    private config: FulcrumConfig,
    private readonly deps: DataPlaneDeps,
  ) {
    this.accessLog = deps.accessLog ?? new AccessLogSink();
  }

  /** Binds every listener; resolves with their addresses, or throws a BindError (nothing bound). */
  async start(ports: PortOverrides = []): Promise<string[]> {
    this.watchClusters();
    const addresses = await this.bindFresh(this.config.listeners, new Set(), [], ports);
    return addresses.map((a) => a ?? "");
  }

  /** Reload phase 1: binds the listeners `next` adds. Resolves with their addresses by index. */
  async prepare(next: FulcrumConfig, ports: PortOverrides = []): Promise<(string | undefined)[]> {
    this.abort();
    const keep = new Map<Listener, ListenerConfig>();
    const retiring: Listener[] = [];
    for (const l of this.listeners) {
      const match = next.listeners.find((n) => sameSocket(l.config, n));
      if (match) keep.set(l, match);
      else retiring.push(l);
    }
    const fresh: Listener[] = [];
    const taken = new Set([...keep.values()].map((c) => c.name));
    const addresses = await this.bindFresh(next.listeners, taken, retiring, ports, fresh);
    this.pending = { keep, retiring, fresh };
    return addresses;
  }

  /** Reload phase 2 (failed): closes what `prepare` bound. */
  abort(): void {
    const p = this.pending;
    this.pending = undefined;
    if (!p) return;
    for (const l of p.fresh) {
      l.stopAccepting();
      l.closeAll();
    }
  }

  /**
   * Reload phase 2: pools whose upstream settings changed or whose cluster went are replaced,
   * kept listeners take their new settings, the others stop accepting; what runs on removed
   * listeners, endpoints and pools may finish for up to `drain_timeout`.
   */
  commit(next: FulcrumConfig): void {
    const p: PendingReload = this.pending ?? { keep: new Map(), retiring: [], fresh: [] };
    this.pending = undefined;
    const previous = this.config;
    for (const [key, pools] of this.pools) {
      const name = key.slice(key.indexOf("/") + 1);
      const before = previous.clusters.find((c) => c.name === name);
      const after = next.clusters.find((c) => c.name === name);
      if (!after || !before || upstreamChanged(before, after)) this.retirePools(key, pools);
    }
    for (const [l, lc] of p.keep) l.reconfigure(lc);
    for (const l of p.retiring) l.stopAccepting();
    this.listeners = [...p.keep.keys(), ...p.fresh];
    this.config = next;
    this.watchClusters();
    this.afterDrainTimeout(() => {
      for (const l of p.retiring) l.closeAll();
      this.closeRemoved();
      for (const pools of this.retiredPools.splice(0)) pools.destroy();
    });
  }

  status(): ListenerStatus[] {
    return this.listeners.map((l) => ({
      name: l.config.name,
      protocol: l.config.protocol,
      address: l.address(),
      engine: l.config.engine,
      active: l.active,
    }));
  }

  get active(): number {
    return this.listeners.reduce((n, l) => n + l.active, 0);
  }

  /**
   * Graceful stop: stop accepting (HTTP/2 sessions get the double GOAWAY), let work in flight finish
   * for up to `drainMs`, close the rest, close every upstream pool.
   */
  async stop(drainMs: number): Promise<void> {
    this.abort();
    for (const l of this.listeners) l.stopAccepting();
    const drained = Promise.all(this.listeners.map((l) => l.idle()));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), drainMs)));
    const result = await Promise.race([drained.then(() => "drained" as const), timeout]);
    clearTimeout(timer);
    if (result === "timeout") {
      if (this.active > 0)
        this.deps.log.warn({ in_flight: this.active }, "drain timeout: closing what is left");
      this.closeNow();
      await drained;
    }
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const [key, pools] of this.pools) this.retirePools(key, pools);
    for (const pools of this.retiredPools.splice(0)) pools.destroy();
    for (const w of this.watches.values()) w.unsubscribe();
    this.watches.clear();
    this.accessLog.close();
  }

  /** Ends every connection now (a second signal). */
  closeNow(): void {
    for (const l of this.listeners) l.closeAll();
    this.accessLog.flush();
  }

  /** Sessions open from this thread to `address` in `cluster` (tests). */
  sessionsTo(cluster: string, address: string): number {
    let n = 0;
    for (const engine of ["http2", "frames"])
      n += this.pools.get(`${engine}/${cluster}`)?.sessionsTo(address) ?? 0;
    return n;
  }

  private async bindFresh(
    configs: readonly ListenerConfig[],
    taken: ReadonlySet<string>,
    retiring: readonly Listener[],
    ports: PortOverrides,
    fresh: Listener[] = this.listeners,
  ): Promise<(string | undefined)[]> {
    const addresses: (string | undefined)[] = [];
    try {
      for (const [i, lc] of configs.entries()) {
        if (taken.has(lc.name)) continue;
        // A listener moving to an address another one frees must wait for that one to let go.
        for (const old of retiring) if (old.config.listen === lc.listen) old.stopAccepting();
        const listener = this.createListener(lc);
        const { host, port } = splitAddress(lc.listen) as { host: string; port: number };
        try {
          addresses[i] = await listener.listen(host, ports[i] ?? port, { reusePort: this.deps.reusePort });
        } catch (err) {
          listener.closeAll();
          throw new BindError(i, (err as NodeJS.ErrnoException).code ?? String(err));
        }
        fresh.push(listener);
      }
    } catch (err) {
      for (const l of fresh.splice(0)) {
        l.stopAccepting();
        l.closeAll();
      }
      throw err;
    }
    return addresses;
  }

  private createListener(lc: ListenerConfig): Listener {
    const common = {
      log: this.deps.log,
      metrics: this.deps.metrics,
      thread: this.deps.thread,
      cluster: () => this.deps.cluster(lc.cluster),
      accessLog: this.accessLog,
    };
    if (lc.protocol === "tcp") return new TcpListener(lc, common);
    const maxHeaderListSize = sizeBytes(lc.max_header_list_size);
    // `pools()` runs per stream: its key and factory are built once here.
    if (lc.engine === "frames") {
      const key = `frames/${lc.cluster}`;
      const create = (c: ClusterConfig, log: Logger) => new FramesClusterPools(c, maxHeaderListSize, log);
      return new FramesListener(lc, { ...common, pools: () => this.poolsOf(key, create) });
    }
    const key = `http2/${lc.cluster}`;
    const create = (c: ClusterConfig, log: Logger) => new ClusterPools(c, maxHeaderListSize, log);
    return new GrpcListener(lc, { ...common, pools: () => this.poolsOf(key, create) });
  }

  /** The upstream pools of a cluster for one engine, shared by every listener of that engine routing to it. */
  private poolsOf<P extends EnginePools>(key: string, create: (c: ClusterConfig, log: Logger) => P): P {
    let pools = this.pools.get(key);
    if (!pools) {
      const name = key.slice(key.indexOf("/") + 1);
      pools = create(
        this.deps.cluster(name).config,
        this.deps.log.child({ component: "upstream", cluster: name }),
      );
      this.pools.set(key, pools);
    }
    return pools as P;
  }

  private retirePools(key: string, pools: EnginePools): void {
    pools.retain(new Set());
    this.retiredPools.push(pools);
    this.pools.delete(key);
  }

  /**
   * Follows every cluster's membership: endpoints that leave (reload, DNS discovery, a mirror update
   * from the main thread) take their pools with them (no new streams, closed once their streams
   * end), and what still runs on them is closed at drain_timeout.
   */
  private watchClusters(): void {
    const names = new Set(this.config.clusters.map((c) => c.name));
    for (const [name, w] of this.watches) {
      if (names.has(name) && this.deps.cluster(name).endpoints === w.set) continue;
      w.unsubscribe();
      this.watches.delete(name);
    }
    for (const name of names) {
      if (this.watches.has(name)) continue;
      const set = this.deps.cluster(name).endpoints;
      const watch: Watch = {
        set,
        members: addressesOf(set),
        unsubscribe: set.onChange(() => {
          const members = addressesOf(set);
          const left = [...watch.members].some((a) => !members.has(a));
          watch.members = members;
          if (!left) return;
          for (const engine of ["http2", "frames"]) this.pools.get(`${engine}/${name}`)?.retain(members);
          this.afterDrainTimeout(() => this.closeRemoved());
        }),
      };
      this.watches.set(name, watch);
    }
  }

  private closeRemoved(): void {
    for (const l of this.listeners) l.closeRemoved();
    for (const pools of this.pools.values()) pools.destroyRemoved();
  }

  private afterDrainTimeout(fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, durationMs(this.config.drain_timeout));
    timer.unref();
    this.timers.add(timer);
  }
}

function addressesOf(set: EndpointSet): Set<string> {
  return new Set(set.endpoints.map((e) => e.address));
}
