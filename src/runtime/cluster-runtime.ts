/**
 * One cluster at run time: its endpoint set and balancer, the active health checker of its
 * `health_check.type`, and passive outlier detection. Listeners ask it for an endpoint and report
 * what happened; it keeps the counters, metrics and ejections in step.
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

export interface ClusterRuntimeDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly random?: RandomSource | undefined;
}

export class ClusterRuntime {
  readonly endpoints: EndpointSet;
  readonly balancer: Balancer;
  readonly connectTimeoutMs: number;
  readonly connectAttempts: number;
  private readonly health: HealthChecker | undefined;
  private readonly outliers: OutlierDetector;
  private readonly ejectionTimers = new Map<string, NodeJS.Timeout>();
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly pickLabels: { cluster: string; policy: string };

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
    this.endpoints = previous?.endpoints ?? new EndpointSet(config.name, config.endpoints);
    this.balancer = new Balancer(this.endpoints, {
      policy: config.policy === "least_loaded" ? "least_connections" : config.policy,
      affinity: config.affinity ? { balanceFactor: config.affinity.balance_factor } : undefined,
      random: deps.random ?? Math.random,
    });
    this.connectTimeoutMs = durationMs(config.connect_timeout);
    this.connectAttempts = config.connect_attempts;
    this.pickLabels = { cluster: config.name, policy: config.policy };
    const od = config.outlier_detection;
    this.outliers = new OutlierDetector({
      consecutiveFailures: od.consecutive_failures,
      baseEjectionMs: durationMs(od.base_ejection_time),
      maxEjectionPercent: od.max_ejection_percent,
    });
    const prober = createProber(config);
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
    if (!this.endpoints.setEjected(endpoint.address, true)) return;
    this.metrics.outlierEjections.inc({ cluster: this.name, endpoint: endpoint.address });
    this.log.warn(
      { endpoint: endpoint.address, ejection_ms: verdict.durationMs, ejections: verdict.ejections },
      "endpoint ejected",
    );
    const timer = setTimeout(() => {
      this.ejectionTimers.delete(endpoint.address);
      this.outliers.uneject(endpoint.address);
      if (this.endpoints.setEjected(endpoint.address, false)) {
        this.log.info({ endpoint: endpoint.address }, "endpoint ejection ended");
      }
    }, verdict.durationMs);
    timer.unref();
    this.ejectionTimers.set(endpoint.address, timer);
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
