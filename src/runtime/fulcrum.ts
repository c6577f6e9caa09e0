/**
 * A running Fulcrum: clusters (balancer, health, outlier detection) and the listeners in front of
 * them, started from a validated config and stopped with a drain. The CLI, the demo and the tests all
 * start Fulcrum through this one class.
 */
import { splitAddress } from "../balancer/endpoint-set.js";
import type { RandomSource } from "../balancer/picker.js";
import { ConfigError, type ConfigIssue } from "../config/config-error.js";
import type { FulcrumConfig, ListenerConfig } from "../config/config-schema.js";
import { durationMs } from "../config/config-units.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import { ClusterPools } from "../grpc/cluster-pools.js";
import { GrpcListener } from "../grpc/grpc-listener.js";
import { TcpListener } from "../tcp/tcp-listener.js";
import { sizeBytes } from "../config/config-units.js";
import type { Listener } from "./listener.js";
import { reloadRefusals, sameSocket, upstreamChanged } from "./reload-plan.js";
import { loadConfigFile } from "../config/config-load.js";
import { ClusterRuntime } from "./cluster-runtime.js";
import { AdminServer } from "../admin/admin-server.js";
import { DnsDiscovery, dnsResolverIssues } from "../discovery/dns-discovery.js";

export interface FulcrumDeps {
  readonly log: Logger;
  /** The file the config came from, for reloads (absent: `reloadFile` is unavailable). */
  readonly configFile?: string | undefined;
  readonly metrics: Metrics;
  /** Seeded in tests; Math.random otherwise. */
  readonly random?: RandomSource | undefined;
}

export interface BoundListener {
  readonly name: string;
  readonly protocol: "tcp" | "grpc";
  readonly address: string;
  readonly engine: "http2" | "frames";
  /** Active connections (tcp) or streams (grpc). */
  readonly active: number;
}

export class Fulcrum {
  readonly clusters = new Map<string, ClusterRuntime>();
  private readonly boundListeners: Listener[] = [];
  private readonly pools = new Map<string, ClusterPools>();
  /** Pools replaced or removed by a reload, destroyed when its drain_timeout runs out. */
  private readonly retiredPools: ClusterPools[] = [];
  private readonly log: Logger;
  private stopping: Promise<void> | undefined;
  private admin: AdminServer | undefined;
  private removeCollector: (() => void) | undefined;
  /** Weights set through the admin API, per cluster: they survive a reload while the endpoint exists. */
  private readonly adminWeights = new Map<string, Set<string>>();
  /** DNS discovery of each `discovery: dns` cluster, by cluster name. */
  private readonly discoveries = new Map<string, DnsDiscovery>();

  private constructor(
    private current: FulcrumConfig,
    private readonly deps: FulcrumDeps,
  ) {
    this.log = deps.log.child({ component: "fulcrum" });
  }

  /** The config in force (the last one a reload accepted). */
  get config(): FulcrumConfig {
    return this.current;
  }

  /** Starts every cluster and binds every listener; throws ConfigError for anything it cannot run. */
  static async start(config: FulcrumConfig, deps: FulcrumDeps): Promise<Fulcrum> {
    const unsupported = unsupportedFeatures(config);
    if (unsupported.length > 0) throw new ConfigError(unsupported);
    const f = new Fulcrum(config, deps);
    try {
      await f.bind();
    } catch (err) {
      await f.stop(0);
      throw err;
    }
    return f;
  }

  get listeners(): readonly BoundListener[] {
    return this.boundListeners.map((l) => ({
      engine: l.config.engine,
      active: l.active,
      name: l.config.name,
      protocol: l.config.protocol,
      address: l.address(),
    }));
  }

  /** True once a stop began: `/readyz` answers 503 and listeners refuse new work. */
  get draining(): boolean {
    return this.stopping !== undefined;
  }

  /** The admin listener's bound address, when `admin` is configured. */
  get adminAddress(): string | undefined {
    return this.admin?.address();
  }

  /** Records a weight set through the admin API so a reload keeps it. */
  rememberWeight(cluster: string, address: string): void {
    let set = this.adminWeights.get(cluster);
    if (!set) this.adminWeights.set(cluster, (set = new Set()));
    set.add(address);
  }

  /**
   * Applies a new config without dropping traffic (DESIGN.md "Reload"): clusters take the new
   * endpoints (added ones start healthy; removed ones take no new work while theirs finishes, up to
   * `drain_timeout`), policies and health settings; listeners are reconfigured in place, or removed
   * and added when their socket changes. Throws a ConfigError, and changes nothing, when the new
   * config cannot be applied; the old one keeps serving.
   */
  async reload(next: FulcrumConfig): Promise<void> {
    if (this.draining) throw new ConfigError([{ path: "(reload)", message: "Fulcrum is stopping" }]);
    const refused = [
      ...reloadRefusals(this.current, next),
      ...unsupportedFeatures(next),
      ...next.clusters.flatMap((c, i) =>
        c.discovery === "dns" ? dnsResolverIssues(c, `clusters[${i}]`) : [],
      ),
    ];
    if (refused.length > 0) {
      this.deps.metrics.configReloads.inc({ result: "failure" });
      this.log.error(
        { errors: refused.map((i) => `${i.path}: ${i.message}`) },
        "config reload refused: old config kept",
      );
      throw new ConfigError(refused);
    }
    // Bind new sockets first: a listener that cannot bind fails the reload before anything changed.
    const keep = new Map<Listener, ListenerConfig>();
    const fresh: Listener[] = [];
    const retiring: Listener[] = [];
    for (const l of this.boundListeners) {
      const match = next.listeners.find((n) => sameSocket(l.config, n));
      if (match) keep.set(l, match);
      else retiring.push(l);
    }
    const taken = new Set([...keep.values()].map((c) => c.name));
    try {
      for (const [i, lc] of next.listeners.entries()) {
        if (taken.has(lc.name)) continue;
        // A listener moving to an address another one frees must wait for that one to let go.
        for (const old of retiring) if (old.config.listen === lc.listen) old.stopAccepting();
        const listener = this.createListener(lc);
        const { host, port } = splitAddress(lc.listen) as { host: string; port: number };
        try {
          const address = await listener.listen(host, port);
          this.log.info(
            { listener: lc.name, address, protocol: lc.protocol, cluster: lc.cluster },
            "listening",
          );
        } catch (err) {
          throw new ConfigError([
            {
              path: `listeners[${i}].listen`,
              message: `cannot bind ${lc.listen}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
            },
          ]);
        }
        fresh.push(listener);
      }
    } catch (err) {
      for (const l of fresh) {
        l.stopAccepting();
        l.closeAll();
      }
      this.deps.metrics.configReloads.inc({ result: "failure" });
      this.log.error(
        { err: err instanceof Error ? err.message : String(err) },
        "config reload failed: old config kept",
      );
      throw err;
    }
    // Clusters: the endpoint sets carry over, so health, drains, weights and counts survive.
    const retiredClusters: ClusterRuntime[] = [];
    for (const c of next.clusters) {
      const previous = this.clusters.get(c.name);
      const runtime = new ClusterRuntime(c, this.deps, previous);
      if (previous) {
        previous.retire();
        retiredClusters.push(previous);
        const discovery = this.discoveries.get(c.name);
        // A DNS cluster keeps its resolved endpoints; its discovery takes the new names below.
        runtime.setEndpoints(
          c.discovery === "dns" && discovery ? discovery.specs : c.endpoints,
          this.adminWeights.get(c.name),
        );
        const pools = this.pools.get(c.name);
        if (pools && upstreamChanged(previous.config, c)) {
          pools.retain(new Set());
          this.retiredPools.push(pools);
          this.pools.delete(c.name);
        } else {
          pools?.retain(new Set(runtime.endpoints.endpoints.map((e) => e.address)));
        }
      }
      this.clusters.set(c.name, runtime);
      runtime.start();
    }
    for (const [name, runtime] of this.clusters) {
      if (next.clusters.some((c) => c.name === name)) continue;
      runtime.setEndpoints([]);
      runtime.retire();
      retiredClusters.push(runtime);
      this.clusters.delete(name);
      const pools = this.pools.get(name);
      if (pools) {
        pools.retain(new Set());
        this.retiredPools.push(pools);
        this.pools.delete(name);
      }
    }
    await this.reconcileDiscoveries(next);
    for (const [l, lc] of keep) l.reconfigure(lc);
    for (const l of retiring) l.stopAccepting();
    this.boundListeners.splice(0, this.boundListeners.length, ...keep.keys(), ...fresh);
    const previous = this.current;
    this.current = next;
    this.deps.log.level = next.log.level;
    this.admin?.setToken(next.admin?.token ?? "");
    // Work left on removed endpoints and listeners may finish for up to drain_timeout.
    const drainMs = durationMs(next.drain_timeout);
    const timer = setTimeout(() => {
      for (const l of retiring) l.closeAll();
      for (const l of this.boundListeners) l.closeRemoved();
      for (const p of this.pools.values()) p.destroyRemoved();
      for (const p of this.retiredPools.splice(0)) p.destroy();
      for (const c of retiredClusters) c.stop();
    }, drainMs);
    timer.unref();
    this.deps.metrics.configReloads.inc({ result: "success" });
    this.log.info(
      {
        listeners: next.listeners.length,
        listeners_added: fresh.map((l) => l.config.name),
        listeners_removed: retiring.map((l) => l.config.name),
        clusters: next.clusters.map((c) => c.name),
        clusters_removed: previous.clusters
          .filter((c) => !next.clusters.some((n) => n.name === c.name))
          .map((c) => c.name),
      },
      "config reloaded",
    );
  }

  /** After a reload: DNS clusters take their new settings; added ones start, removed ones stop. */
  private async reconcileDiscoveries(next: FulcrumConfig): Promise<void> {
    for (const [name, d] of this.discoveries) {
      if (!next.clusters.some((c) => c.name === name && c.discovery === "dns")) {
        d.stop();
        this.discoveries.delete(name);
      }
    }
    for (const [i, c] of next.clusters.entries()) {
      if (c.discovery !== "dns") continue;
      const existing = this.discoveries.get(c.name);
      if (existing) {
        await existing.update(c);
        continue;
      }
      const discovery = new DnsDiscovery(c, {
        log: this.deps.log,
        cluster: () => this.clusters.get(c.name),
        adminWeights: () => this.adminWeights.get(c.name),
        retain: (addresses) => this.pools.get(c.name)?.retain(addresses),
        path: `clusters[${i}]`,
      });
      this.discoveries.set(c.name, discovery);
      await discovery.start();
    }
  }

  /** Reloads from the file Fulcrum was started with (SIGHUP, `POST /reload`). */
  async reloadFile(): Promise<{ ok: true } | { ok: false; errors: string[] }> {
    const file = this.deps.configFile;
    if (file === undefined)
      return { ok: false, errors: ["(reload): Fulcrum was not started from a config file"] };
    let next: FulcrumConfig;
    try {
      next = loadConfigFile(file);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      const errors = err.issues.map((i) => `${i.path}: ${i.message}`);
      this.deps.metrics.configReloads.inc({ result: "failure" });
      this.log.error({ config: file, errors }, "config reload rejected: old config kept");
      return { ok: false, errors };
    }
    try {
      await this.reload(next);
      return { ok: true };
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return { ok: false, errors: err.issues.map((i) => `${i.path}: ${i.message}`) };
    }
  }

  /** The bound address of the listener called `name` (`host:port`). */
  addressOf(name: string): string {
    const l = this.boundListeners.find((x) => x.config.name === name);
    if (!l) throw new Error(`no listener named ${name}`);
    return l.address();
  }

  cluster(name: string): ClusterRuntime {
    const c = this.clusters.get(name);
    if (!c) throw new Error(`no cluster named ${name}`);
    return c;
  }

  /**
   * Graceful stop: listeners stop accepting, open connections may finish for up to `drainMs`
   * (default `drain_timeout`), the rest are closed, health checking stops. Idempotent.
   */
  stop(drainMs: number = durationMs(this.config.drain_timeout)): Promise<void> {
    this.stopping ??= this.doStop(drainMs);
    return this.stopping;
  }

  /** Ends every connection now (a second signal). */
  closeNow(): void {
    for (const l of this.boundListeners) l.closeAll();
  }

  private async bind(): Promise<void> {
    for (const c of this.config.clusters) {
      const runtime = new ClusterRuntime(c, this.deps);
      this.clusters.set(c.name, runtime);
      if (c.discovery === "dns") {
        // Resolved before the listeners bind: traffic never reaches an unresolved name.
        const discovery = new DnsDiscovery(c, {
          log: this.deps.log,
          cluster: () => this.clusters.get(c.name),
          adminWeights: () => this.adminWeights.get(c.name),
          retain: (addresses) => this.pools.get(c.name)?.retain(addresses),
          path: `clusters[${this.config.clusters.indexOf(c)}]`,
        });
        this.discoveries.set(c.name, discovery);
        await discovery.start();
      }
      runtime.start();
    }
    this.removeCollector = this.deps.metrics.addCollector(() => this.collectActive());
    for (const lc of this.config.listeners) {
      const listener = this.createListener(lc);
      this.boundListeners.push(listener);
      const { host, port } = splitAddress(lc.listen) as { host: string; port: number };
      let address: string;
      try {
        address = await listener.listen(host, port);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        throw new ConfigError([
          {
            path: `listeners[${this.boundListeners.length - 1}].listen`,
            message: `cannot bind ${lc.listen}: ${code}`,
          },
        ]);
      }
      this.log.info({ listener: lc.name, address, protocol: lc.protocol, cluster: lc.cluster }, "listening");
    }
    if (this.config.admin) await this.bindAdmin(this.config.admin);
  }

  private async bindAdmin(config: NonNullable<FulcrumConfig["admin"]>): Promise<void> {
    const admin = new AdminServer(
      config,
      this,
      this.deps.metrics,
      this.deps.log.child({ component: "admin" }),
      {
        reload: this.deps.configFile !== undefined ? () => this.reloadFile() : undefined,
      },
    );
    this.admin = admin;
    const { host, port } = splitAddress(config.listen) as { host: string; port: number };
    let address: string;
    try {
      address = await admin.listen(host, port);
    } catch (err) {
      this.admin = undefined;
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new ConfigError([{ path: "admin.listen", message: `cannot bind ${config.listen}: ${code}` }]);
    }
    this.log.info({ listener: "admin", address }, "listening");
  }

  /** Copies active counts into `fulcrum_upstream_active` at scrape time (no work per stream). */
  private collectActive(): void {
    const gauge = this.deps.metrics.upstreamActive;
    for (const c of this.clusters.values()) {
      for (const e of c.endpoints.endpoints)
        gauge.set({ cluster: c.name, endpoint: e.address }, c.endpoints.activeOf(e));
    }
  }

  private createListener(lc: FulcrumConfig["listeners"][number]): Listener {
    const common = {
      log: this.deps.log,
      metrics: this.deps.metrics,
      thread: "0",
      cluster: () => this.cluster(lc.cluster),
    };
    if (lc.protocol === "tcp") return new TcpListener(lc, common);
    return new GrpcListener(lc, {
      ...common,
      pools: () => this.poolsOf(lc.cluster, sizeBytes(lc.max_header_list_size)),
    });
  }

  /** The upstream HTTP/2 pools of a cluster, shared by every gRPC listener routing to it. */
  private poolsOf(cluster: string, maxHeaderListSize: number): ClusterPools {
    let pools = this.pools.get(cluster);
    if (!pools) {
      pools = new ClusterPools(
        this.cluster(cluster).config,
        maxHeaderListSize,
        this.deps.log.child({ component: "upstream", cluster }),
      );
      this.pools.set(cluster, pools);
    }
    return pools;
  }

  private async doStop(drainMs: number): Promise<void> {
    this.log.info({ drain_timeout_ms: drainMs }, "stopping");
    for (const d of this.discoveries.values()) d.stop();
    for (const l of this.boundListeners) l.stopAccepting();
    const drained = Promise.all(this.boundListeners.map((l) => l.idle()));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), drainMs)));
    const result = await Promise.race([drained.then(() => "drained" as const), timeout]);
    clearTimeout(timer);
    if (result === "timeout") {
      const left = this.boundListeners.reduce((n, l) => n + l.active, 0);
      if (left > 0) this.log.warn({ in_flight: left }, "drain timeout: closing what is left");
      this.closeNow();
      await drained;
    }
    for (const p of this.pools.values()) p.destroy();
    for (const c of this.clusters.values()) c.stop();
    this.removeCollector?.();
    await this.admin?.close();
    this.log.info("stopped");
  }
}

/** Features of the config contract that this build does not run yet, as path-named errors. */
function unsupportedFeatures(config: FulcrumConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (config.threads !== 1) {
    issues.push({ path: "threads", message: "worker threads are not available in this version; use 1" });
  }
  config.listeners.forEach((l, i) => {
    if (l.protocol === "grpc" && l.engine !== "http2")
      issues.push({
        path: `listeners[${i}].engine`,
        message: `engine "${l.engine}" is not available in this version; use http2`,
      });
  });
  config.clusters.forEach((c, i) => {
    const type = c.health_check?.type;
    if (type === "triton" || type === "torchserve") {
      issues.push({
        path: `clusters[${i}].health_check.type`,
        message: `"${type}" health checks are not available in this version`,
      });
    }
    if (c.policy === "least_loaded")
      issues.push({
        path: `clusters[${i}].policy`,
        message: `"least_loaded" is not available in this version`,
      });
  });
  return issues;
}
