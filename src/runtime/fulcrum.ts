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
import { TcpListener } from "../tcp/tcp-listener.js";
import { ClusterRuntime } from "./cluster-runtime.js";

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
}

export class Fulcrum {
  readonly clusters = new Map<string, ClusterRuntime>();
  private readonly tcpListeners: TcpListener[] = [];
  private readonly log: Logger;
  private stopping: Promise<void> | undefined;

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
    return this.tcpListeners.map((l) => ({ name: l.config.name, protocol: "tcp", address: l.address() }));
  }

  /** The bound address of the listener called `name` (`host:port`). */
  addressOf(name: string): string {
    const l = this.tcpListeners.find((x) => x.config.name === name);
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
    for (const l of this.tcpListeners) l.closeAll();
  }

  private async bind(): Promise<void> {
    for (const c of this.config.clusters) {
      const runtime = new ClusterRuntime(c, this.deps);
      this.clusters.set(c.name, runtime);
      runtime.start();
    }
    for (const lc of this.config.listeners) {
      const listener = new TcpListener(lc, {
        log: this.deps.log,
        metrics: this.deps.metrics,
        thread: "0",
        cluster: () => this.cluster(lc.cluster),
      });
      this.tcpListeners.push(listener);
      const { host, port } = splitAddress(lc.listen) as { host: string; port: number };
      let address: string;
      try {
        address = await listener.listen(host, port);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        throw new ConfigError([
          {
            path: `listeners[${this.tcpListeners.length - 1}].listen`,
            message: `cannot bind ${lc.listen}: ${code}`,
          },
        ]);
      }
      this.log.info({ listener: lc.name, address, protocol: lc.protocol, cluster: lc.cluster }, "listening");
    }
  }

  private async doStop(drainMs: number): Promise<void> {
    this.log.info({ drain_timeout_ms: drainMs }, "stopping");
    for (const l of this.tcpListeners) l.stopAccepting();
    const drained = Promise.all(this.tcpListeners.map((l) => l.idle()));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), drainMs)));
    const result = await Promise.race([drained.then(() => "drained" as const), timeout]);
    clearTimeout(timer);
    if (result === "timeout") {
      const left = this.tcpListeners.reduce((n, l) => n + l.active, 0);
      this.log.warn({ connections: left }, "drain timeout: closing remaining connections");
      this.closeNow();
      await drained;
    }
    for (const c of this.clusters.values()) c.stop();
    this.log.info("stopped");
  }
}

/** Features of the config contract that this build does not run yet, as path-named errors. */
function unsupportedFeatures(config: FulcrumConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (config.admin)
    issues.push({ path: "admin", message: "the admin listener is not available in this version" });
  if (config.threads !== 1) {
    issues.push({ path: "threads", message: "worker threads are not available in this version; use 1" });
  }
  config.listeners.forEach((l, i) => {
    if (l.protocol !== "tcp")
      issues.push({
        path: `listeners[${i}].protocol`,
        message: `"${l.protocol}" listeners are not available in this version`,
      });
  });
  config.clusters.forEach((c, i) => {
    const type = c.health_check?.type;
    if (type !== undefined && type !== "tcp" && type !== "none") {
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
