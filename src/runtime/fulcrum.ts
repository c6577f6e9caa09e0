/**
 * A running Fulcrum: clusters (balancer, health, outlier detection) and the listeners in front of
 * them, started from a validated config and stopped with a drain. The CLI, the demo and the tests all
 * start Fulcrum through this one class.
 */
import { splitAddress } from "../balancer/endpoint-set.js";
import type { RandomSource } from "../balancer/picker.js";
import { ConfigError, type ConfigIssue } from "../config/config-error.js";
import type { FulcrumConfig } from "../config/config-schema.js";
import { durationMs } from "../config/config-units.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import { ClusterPools } from "../grpc/cluster-pools.js";
import { GrpcListener } from "../grpc/grpc-listener.js";
import { TcpListener } from "../tcp/tcp-listener.js";
import { sizeBytes } from "../config/config-units.js";
import type { Listener } from "./listener.js";
import { ClusterRuntime } from "./cluster-runtime.js";
import { AdminServer } from "../admin/admin-server.js";

export interface FulcrumDeps {
  readonly log: Logger;
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
  private readonly log: Logger;
  private stopping: Promise<void> | undefined;
  private admin: AdminServer | undefined;
  private removeCollector: (() => void) | undefined;
  /** Weights set through the admin API, per cluster: they survive a reload while the endpoint exists. */
  private readonly adminWeights = new Map<string, Set<string>>();

  private constructor(
    readonly config: FulcrumConfig,
    private readonly deps: FulcrumDeps,
  ) {
    this.log = deps.log.child({ component: "fulcrum" });
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
    if (c.discovery !== "static")
      issues.push({
        path: `clusters[${i}].discovery`,
        message: `"${c.discovery}" discovery is not available in this version`,
      });
    if (c.policy === "least_loaded")
      issues.push({
        path: `clusters[${i}].policy`,
        message: `"least_loaded" is not available in this version`,
      });
  });
  return issues;
}
