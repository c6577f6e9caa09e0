/**
 * One cluster at run time: its endpoint set and balancer, the active health checker of its
 * `health_check.type`, and passive outlier detection. Listeners ask it for an endpoint and report
 * what happened; it keeps the counters, metrics and ejections in step.
 *
 * Roles (DESIGN.md "threads"): with one thread a runtime does everything (`all`). With worker
 * threads the main thread's runtime (`control`) probes, owns membership and ejections and serves no
 * traffic, and each worker thread's runtime (`data`) serves traffic on a mirror of the main thread's
 * endpoint set, sharing its counters, and asks the main thread to eject an outlier.
 */
import { Balancer } from "../balancer/balancer.js";
import { EndpointSet, type Endpoint, type EndpointSpec } from "../balancer/endpoint-set.js";
import type { PickContext, PickResult, RandomSource } from "../balancer/picker.js";
import type { ClusterConfig } from "../config/config-schema.js";
import { durationMs } from "../config/config-units.js";
import { HealthChecker } from "../health/health-checker.js";
import { OutlierDetector } from "../health/outlier-detector.js";
import type { Prober } from "../health/prober.js";
import { TcpProber } from "../health/prober-tcp.js";
import { GrpcHealthProber } from "../health/prober-grpc-health.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import type { EndpointCounters } from "../balancer/endpoint-counters.js";

export type ClusterRole = "all" | "control" | "data";

export interface ClusterRuntimeDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly random?: RandomSource | undefined;
  /** Default `all`. */
  readonly role?: ClusterRole | undefined;
  /** Counters shared with worker threads (a new cluster's); fresh ones when absent. */
  readonly counters?: EndpointCounters | undefined;
  /** `data` role: asks the main thread to eject `address` (it applies the limits and the timer). */
  readonly requestEjection?: ((cluster: string, address: string, durationMs: number) => void) | undefined;
}

export class ClusterRuntime {
  readonly endpoints: EndpointSet;
  readonly balancer: Balancer;
  readonly connectTimeoutMs: number;
  readonly connectAttempts: number;
  readonly role: ClusterRole;
  private readonly requestEjection: ClusterRuntimeDeps["requestEjection"];
  private readonly health: HealthChecker | undefined;
  private readonly outliers: OutlierDetector;
  private readonly ejectionTimers = new Map<string, NodeJS.Timeout>();
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly pickLabels: { cluster: string; policy: string };
  private readonly maxEjectionPercent: number;

  /**
   * `previous`: the runtime this one replaces on reload; its endpoint set (health, drains, weights,
   * active counts) carries over, so work in flight is still counted against the right endpoints.
   */
  constructor(
    readonly config: ClusterConfig,
    deps: ClusterRuntimeDeps,
    previous?: ClusterRuntime,
  ) {
    this.log = deps.log.child({ component: "cluster", cluster: config.name });
    this.metrics = deps.metrics;
    this.role = deps.role ?? "all";
    this.requestEjection = deps.requestEjection;
    this.endpoints =
      previous?.endpoints ??
      new EndpointSet(config.name, this.role === "data" ? [] : config.endpoints, { counters: deps.counters });
    this.balancer = new Balancer(this.endpoints, {
      policy: config.policy === "least_loaded" ? "least_connections" : config.policy,
      affinity: config.affinity ? { balanceFactor: config.affinity.balance_factor } : undefined,
      random: deps.random ?? Math.random,
    });
    this.connectTimeoutMs = durationMs(config.connect_timeout);
    this.connectAttempts = config.connect_attempts;
    this.pickLabels = { cluster: config.name, policy: config.policy };
    const od = config.outlier_detection;
    this.maxEjectionPercent = od.max_ejection_percent;
    this.outliers = new OutlierDetector({
      consecutiveFailures: od.consecutive_failures,
      baseEjectionMs: durationMs(od.base_ejection_time),
      maxEjectionPercent: od.max_ejection_percent,
    });
    const prober = this.role === "data" ? undefined : createProber(config);
    const hc = config.health_check;
    this.health =
      prober && hc
        ? new HealthChecker(
            this.endpoints,
            prober,
            {
              intervalMs: durationMs(hc.interval),
              timeoutMs: durationMs(hc.timeout),
              healthy: hc.healthy_threshold,
              unhealthy: hc.unhealthy_threshold,
            },
            this.log.child({ component: "health" }),
            this.metrics,
          )
        : undefined;
    if (this.role === "data") return;
    for (const e of this.endpoints.endpoints) {
      this.metrics.endpointHealthy.set(
        { cluster: config.name, endpoint: e.address },
        e.health === "healthy" ? 1 : 0,
      );
    }
  }

  get name(): string {
    return this.config.name;
  }

  start(): void {
    this.health?.sync();
  }

  /**
   * Replaces the cluster's endpoints (reload, DNS discovery): kept endpoints keep their health,
   * drain flag, counters and any weight in `adminWeights`; added ones start healthy and are probed;
   * removed ones take no new work while their connections and streams finish.
   */
  setEndpoints(specs: readonly EndpointSpec[], adminWeights: ReadonlySet<string> = new Set()): void {
    const before = new Set(this.endpoints.endpoints.map((e) => e.address));
    this.endpoints.update(specs, adminWeights);
    const after = new Set(this.endpoints.endpoints.map((e) => e.address));
    for (const address of before) {
      if (!after.has(address)) this.metrics.endpointHealthy.remove({ cluster: this.name, endpoint: address });
    }
    for (const e of this.endpoints.endpoints) {
      if (!before.has(e.address))
        this.metrics.endpointHealthy.set({ cluster: this.name, endpoint: e.address }, 1);
    }
    this.health?.sync();
    const added = [...after].filter((a) => !before.has(a));
    const removed = [...before].filter((a) => !after.has(a));
    if (added.length + removed.length > 0) this.log.info({ added, removed }, "endpoints changed");
  }

  /**
   * Replaced by a reload: stops probing; ejections already running end on their own timers, since
   * the endpoint set they act on carries over to the new runtime.
   */
  retire(): void {
    this.health?.stop();
  }

  stop(): void {
    this.health?.stop();
    for (const t of this.ejectionTimers.values()) clearTimeout(t);
    this.ejectionTimers.clear();
  }

  pick(ctx: PickContext): PickResult {
    const end = this.metrics.pickDuration.startTimer(this.pickLabels);
    const result = this.balancer.pick(ctx);
    end();
    return result;
  }

  /** A connection or stream starts on `endpoint`; pair with exactly one `release`. */
  acquire(endpoint: Endpoint): void {
    this.endpoints.acquire(endpoint);
    this.metrics.upstreamRequests.inc({ cluster: this.name, endpoint: endpoint.address });
  }

  release(endpoint: Endpoint): void {
    this.endpoints.release(endpoint);
  }

  /** A data-path connect to `endpoint` failed: counted, and fed to outlier detection. */
  connectFailed(endpoint: Endpoint, reason: string): void {
    this.endpoints.recordFailure(endpoint);
    this.metrics.upstreamConnectFailures.inc({ cluster: this.name, endpoint: endpoint.address });
    this.log.debug({ endpoint: endpoint.address, reason }, "connect failed");
    this.recordOutcome(endpoint, false);
  }

  connectSucceeded(endpoint: Endpoint): void {
    this.recordOutcome(endpoint, true);
  }

  /** A gRPC stream's result on `endpoint` for outlier detection: UNAVAILABLE and resets count as failures. */
  streamResult(endpoint: Endpoint, ok: boolean): void {
    this.recordOutcome(endpoint, ok);
  }

  upstreamReset(endpoint: Endpoint): void {
    this.endpoints.recordFailure(endpoint);
    this.metrics.upstreamResets.inc({ cluster: this.name, endpoint: endpoint.address });
  }

  private recordOutcome(endpoint: Endpoint, ok: boolean): void {
    const verdict = this.outliers.record(endpoint.address, ok, Date.now(), this.endpoints.endpoints.length);
    if (verdict.kind !== "eject") return;
    if (this.role === "data") this.requestEjection?.(this.name, endpoint.address, verdict.durationMs);
    else this.eject(endpoint.address, verdict.durationMs);
  }

  /**
   * Ejects `address` for `durationMs` (outlier detection here or in a worker thread). With worker
   * threads each thread's detector sees only its share of the results, so the cluster-wide limit is
   * checked again here, on the set every thread reads.
   */
  eject(address: string, durationMs: number): void {
    const members = this.endpoints.endpoints;
    const ejected = members.filter((e) => e.ejected).length;
    const overLimit =
      ejected > 0 && ((ejected + 1) * 100) / Math.max(1, members.length) > this.maxEjectionPercent;
    if (overLimit || !this.endpoints.setEjected(address, true)) {
      if (this.role === "all") this.outliers.uneject(address);
      return;
    }
    this.metrics.outlierEjections.inc({ cluster: this.name, endpoint: address });
    this.log.warn({ endpoint: address, ejection_ms: durationMs }, "endpoint ejected");
    const timer = setTimeout(() => {
      this.ejectionTimers.delete(address);
      this.outliers.uneject(address);
      if (this.endpoints.setEjected(address, false)) {
        this.log.info({ endpoint: address }, "endpoint ejection ended");
      }
    }, durationMs);
    timer.unref();
    this.ejectionTimers.set(address, timer);
  }

  /** `data` role: an ejection ended in the main thread; this thread's detector starts afresh. */
  ejectionEnded(address: string): void {
    this.outliers.uneject(address);
  }
}

function createProber(config: ClusterConfig): Prober | undefined {
  const type = config.health_check?.type;
  switch (type) {
    case "tcp":
      return new TcpProber();
    case "grpc": {
      const tls = config.tls;
      return new GrpcHealthProber({
        service: config.health_check?.service ?? "",
        tls: tls
          ? { ca: tls.ca, serverName: tls.server_name, insecureSkipVerify: tls.insecure_skip_verify }
          : undefined,
      });
    }
    case undefined:
    case "none":
      return undefined;
    default:
      throw new Error(`health_check.type ${type} is not available yet`);
  }
}
