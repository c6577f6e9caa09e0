/**
 * A running Fulcrum: clusters (balancer, health, outlier detection) and the listeners in front of
 * them, started from a validated config and stopped with a drain. The CLI, the demo and the tests all
 * start Fulcrum through this one class.
 */
import { availableParallelism } from "node:os";
import { AggregatorRegistry } from "prom-client";
import { EndpointCounters } from "../balancer/endpoint-counters.js";
import { splitAddress } from "../balancer/endpoint-set.js";
import type { RandomSource } from "../balancer/picker.js";
import { ConfigError } from "../config/config-error.js";
import type { FulcrumConfig, ListenerConfig } from "../config/config-schema.js";
import { durationMs } from "../config/config-units.js";
import type { AccessLogSink } from "../access-log/access-log.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import { mergeQueueReports, mergeStatsReports, type EndpointStats } from "../metrics/endpoint-stats.js";
import { collectEndpointGauges } from "../admin/admin-gauges.js";
import type { ListenerStatus } from "../net/listener.js";
import { DataPlane, type DataPlaneHost } from "./data-plane.js";
import { bindFailureMessage, bindIssue } from "./bind-issue.js";
import { ThreadsHost } from "./threads-host.js";
import { unreadableFiles } from "../config/config-files.js";
import { ClusterRuntime } from "./cluster-runtime.js";
import type { AdminHost } from "../admin/admin-host.js";
import { AdminServer } from "../admin/admin-server.js";
import { ClusterDiscoveries } from "./fulcrum-discoveries.js";
import {
  reloadFromFile,
  reloadIssues,
  reloadSummary,
  swapClusters,
  type ReloadAnswer,
} from "./fulcrum-reload.js";

export interface FulcrumDeps {
  readonly log: Logger;
  /** The file the config came from, for reloads (absent: `reloadFile` is unavailable). */
  readonly configFile?: string | undefined;
  readonly metrics: Metrics;
  /** Seeded in tests; Math.random otherwise. */
  readonly random?: RandomSource | undefined;
  /** Access-log output of the listeners without worker threads (tests); default stdout. */
  readonly accessLog?: AccessLogSink | undefined;
}

export interface BoundListener {
  readonly name: string;
  readonly protocol: "tcp" | "grpc";
  readonly address: string;
  readonly engine: "http2" | "frames";
}

/** Counter slots per cluster: the most endpoints one cluster can have at once. */
const MAX_ENDPOINTS_PER_CLUSTER = 1024;

export class Fulcrum implements AdminHost {
  readonly clusters = new Map<string, ClusterRuntime>();
  /** Where the listeners run: this thread (`threads: 1`) or the worker threads. */
  private readonly plane: DataPlaneHost;
  private readonly threads: number;
  /** Every listener of the config in force with its bound address. */
  private bound: { config: ListenerConfig; address: string }[] = [];
  private readonly log: Logger;
  private stopping: Promise<void> | undefined;
  private admin: AdminServer | undefined;
  private removeCollector: (() => void) | undefined;
  /** Weights set through the admin API, per cluster: they survive a reload while the endpoint exists. */
  private readonly adminWeights = new Map<string, Set<string>>();
  /** DNS discovery of each `discovery: dns` cluster. */
  private readonly discoveries: ClusterDiscoveries;

  private constructor(
    private current: FulcrumConfig,
    private readonly deps: FulcrumDeps,
  ) {
    this.log = deps.log.child({ component: "fulcrum" });
    this.threads = threadCount(current.threads);
    this.discoveries = new ClusterDiscoveries({
      log: deps.log,
      cluster: (name) => this.clusters.get(name),
      adminWeights: (name) => this.adminWeights.get(name),
    });
    this.plane =
      this.threads === 1
        ? new DataPlane(current, {
            log: deps.log,
            metrics: deps.metrics,
            thread: "0",
            reusePort: false,
            cluster: (name) => this.cluster(name),
            accessLog: deps.accessLog,
          })
        : new ThreadsHost(current, {
            log: deps.log,
            threads: this.threads,
            clusters: this.clusters,
            eject: (cluster, address, ms) => this.clusters.get(cluster)?.eject(address, ms),
          });
  }

  /** The config in force (the last one a reload accepted). */
  get config(): FulcrumConfig {
    return this.current;
  }

  /** Starts every cluster and binds every listener; throws ConfigError for anything it cannot run. */
  static async start(config: FulcrumConfig, deps: FulcrumDeps): Promise<Fulcrum> {
    const unreadable = unreadableFiles(config);
    if (unreadable.length > 0) throw new ConfigError(unreadable);
    const f = new Fulcrum(config, deps);
    try {
      await f.bind();
    } catch (err) {
      await f.stop(0);
      throw err;
    }
    return f;
  }

  /** Every listener with its bound address (the same in every worker thread). */
  get listeners(): readonly BoundListener[] {
    return this.bound.map((b) => ({
      engine: b.config.engine,
      name: b.config.name,
      protocol: b.config.protocol,
      address: b.address,
    }));
  }

  /** Every listener with its activity, summed over worker threads. */
  async listenerStatus(): Promise<ListenerStatus[]> {
    return this.plane.status();
  }

  /** Prometheus text of this process: with worker threads, their registries summed with this one's. */
  async metricsText(): Promise<string> {
    if (this.plane instanceof ThreadsHost) {
      const own = await this.deps.metrics.registry.getMetricsAsJSON();
      const theirs = await this.plane.metricsJson();
      return AggregatorRegistry.aggregate([own, ...theirs]).metrics();
    }
    return this.deps.metrics.registry.metrics();
  }

  /** Each cluster's endpoint stats (latency windows, status counts), merged over worker threads. */
  async endpointStats(): Promise<Map<string, Map<string, EndpointStats>>> {
    if (this.plane instanceof ThreadsHost)
      return mergeStatsReports((await this.plane.endpointStats()).flat());
    return mergeStatsReports(
      [...this.clusters.values()].map((c) => ({ name: c.name, endpoints: c.statsSnapshot() })),
    );
  }

  /** Each cluster's queued calls by priority, summed over worker threads. */
  async queueDepths(): Promise<Map<string, Record<string, number>>> {
    if (this.plane instanceof ThreadsHost)
      return mergeQueueReports((await this.plane.endpointStats()).flat());
    return new Map([...this.clusters.values()].map((c) => [c.name, c.queue.depthByPriority()]));
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
   * Applies a new config without dropping traffic (docs/architecture.md "Reload"): clusters take the new
   * endpoints (added ones start healthy; removed ones take no new work while theirs finishes, up to
   * `drain_timeout`), policies and health settings; listeners are reconfigured in place, or removed
   * and added when their socket changes. Throws a ConfigError, and changes nothing, when the new
   * config cannot be applied; the old one keeps serving.
   */
  async reload(next: FulcrumConfig): Promise<void> {
    if (this.draining) throw new ConfigError([{ path: "(reload)", message: "Fulcrum is stopping" }]);
    const refused = reloadIssues(this.current, next);
    if (refused.length > 0) {
      this.deps.metrics.configReloads.inc({ result: "failure" });
      this.log.error(
        { errors: refused.map((i) => `${i.path}: ${i.message}`) },
        "config reload refused: old config kept",
      );
      throw new ConfigError(refused);
    }
    // Bind new sockets first: a listener that cannot bind fails the reload before anything changed.
    let added: (string | undefined)[];
    try {
      added = await this.plane.prepare(next);
    } catch (err) {
      this.deps.metrics.configReloads.inc({ result: "failure" });
      const issue = bindIssue(err, next);
      this.log.error({ err: `${issue.path}: ${issue.message}` }, "config reload failed: old config kept");
      throw new ConfigError([issue]);
    }
    const retiredClusters = swapClusters(
      {
        clusters: this.clusters,
        create: (c, previous) => this.createCluster(c, previous),
        discovered: (name) => this.discoveries.specsOf(name),
        adminWeights: (name) => this.adminWeights.get(name),
      },
      next,
    );
    await this.discoveries.reconcile(next);
    this.plane.commit(next);
    const previous = this.current;
    this.current = next;
    this.bound = next.listeners.map((lc, i) => ({
      config: lc,
      address: added[i] ?? this.bound.find((b) => b.config.name === lc.name)?.address ?? "",
    }));
    this.deps.log.level = next.log.level;
    this.admin?.setToken(next.admin?.token ?? "");
    // Ejection timers of replaced runtimes act on the carried-over sets until drain_timeout.
    const timer = setTimeout(() => {
      for (const c of retiredClusters) c.stop();
    }, durationMs(next.drain_timeout));
    timer.unref();
    this.deps.metrics.configReloads.inc({ result: "success" });
    this.log.info(reloadSummary(previous, next, added), "config reloaded");
  }

  /** Reloads from the file Fulcrum was started with (SIGHUP, `POST /reload`). */
  async reloadFile(): Promise<ReloadAnswer> {
    const file = this.deps.configFile;
    if (file === undefined)
      return { ok: false, errors: ["(reload): Fulcrum was not started from a config file"] };
    return reloadFromFile(file, (next) => this.reload(next), { log: this.log, metrics: this.deps.metrics });
  }

  /** The bound address of the listener called `name` (`host:port`). */
  addressOf(name: string): string {
    const l = this.bound.find((x) => x.config.name === name);
    if (!l) throw new Error(`no listener named ${name}`);
    return l.address;
  }

  /** Upstream sessions open to `address` of `cluster` (tests; `threads: 1` only). */
  sessionsTo(cluster: string, address: string): number {
    return this.plane instanceof DataPlane ? this.plane.sessionsTo(cluster, address) : 0;
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
    this.plane.closeNow();
  }

  private async bind(): Promise<void> {
    for (const [i, c] of this.config.clusters.entries()) {
      const runtime = this.createCluster(c, undefined);
      this.clusters.set(c.name, runtime);
      // Resolved before the listeners bind: traffic never reaches an unresolved name.
      if (c.discovery === "dns") await this.discoveries.start(c, i);
      runtime.start();
    }
    this.removeCollector = this.deps.metrics.addCollector(() => this.collectActive());
    let addresses: string[];
    try {
      addresses = await this.plane.start();
    } catch (err) {
      throw new ConfigError([bindIssue(err, this.config)]);
    }
    this.bound = this.config.listeners.map((lc, i) => ({ config: lc, address: addresses[i] ?? "" }));
    const admin = this.config.admin ? await this.bindAdmin(this.config.admin) : undefined;
    // Only now that every socket is bound: a tool waiting for these lines never sees a start that fails.
    for (const [i, lc] of this.config.listeners.entries()) {
      this.log.info(
        {
          listener: lc.name,
          address: addresses[i],
          protocol: lc.protocol,
          ...(lc.protocol === "grpc" ? { engine: lc.engine } : {}),
          cluster: lc.cluster,
          threads: this.threads,
        },
        "listening",
      );
    }
    if (admin !== undefined) this.log.info({ listener: "admin", address: admin }, "listening");
  }

  /**
   * A cluster runtime: with worker threads, the main thread's one probes and owns membership and
   * ejections (`control`) and shares its counters with the threads; otherwise it does everything.
   */
  private createCluster(
    c: FulcrumConfig["clusters"][number],
    previous: ClusterRuntime | undefined,
  ): ClusterRuntime {
    const threaded = this.threads > 1;
    return new ClusterRuntime(
      c,
      {
        ...this.deps,
        role: threaded ? "control" : "all",
        counters: previous ? undefined : EndpointCounters.create(MAX_ENDPOINTS_PER_CLUSTER, this.threads),
      },
      previous,
    );
  }

  /** Binds the admin listener; resolves with its address, throws a ConfigError naming `admin.listen`. */
  private async bindAdmin(config: NonNullable<FulcrumConfig["admin"]>): Promise<string> {
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
    try {
      return await admin.listen(host, port);
    } catch (err) {
      this.admin = undefined;
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new ConfigError([{ path: "admin.listen", message: bindFailureMessage(config.listen, code) }]);
    }
  }

  /** Copies active counts into `fulcrum_upstream_active` at scrape time (no work per stream). */
  private collectActive(): void {
    const gauge = this.deps.metrics.upstreamActive;
    for (const c of this.clusters.values()) {
      for (const e of c.endpoints.endpoints)
        gauge.set({ cluster: c.name, endpoint: e.address }, c.endpoints.activeOf(e));
    }
    collectEndpointGauges(this.deps.metrics, this.clusters.values());
  }

  private async doStop(drainMs: number): Promise<void> {
    this.log.info({ drain_timeout_ms: drainMs }, "stopping");
    this.discoveries.stop();
    await this.plane.stop(drainMs);
    for (const c of this.clusters.values()) c.stop();
    this.removeCollector?.();
    await this.admin?.close();
    this.log.info("stopped");
  }
}

/** `threads: auto` is one worker thread per core. */
export function threadCount(threads: FulcrumConfig["threads"]): number {
  return threads === "auto" ? availableParallelism() : threads;
}
