/**
 * One cluster at run time: its endpoint set and balancer, the active health checker of its
 * `health_check.type`, and passive outlier detection. Listeners ask it for an endpoint and report
 * what happened; it keeps the counters, metrics and ejections in step.
 *
 * Roles (docs/architecture.md "threads"): with one thread a runtime does everything (`all`). With worker
 * threads the main thread's runtime (`control`) probes, owns membership and ejections and serves no
 * traffic, and each worker thread's runtime (`data`) serves traffic on a mirror of the main thread's
 * endpoint set, sharing its counters, and asks the main thread to eject an outlier.
 *
 * Inference awareness: `models` records which endpoints have which of `clusters[].models` ready
 * (fed by the triton prober; main thread only); `least_loaded` keeps latency estimates per thread
 * (`streamFinished`) and reads queue depths that the main thread's load-metrics scraper stores in the
 * shared counters.
 */
import { performance } from "node:perf_hooks";
import { Balancer } from "../balancer/balancer.js";
import { EndpointSet, type Endpoint, type EndpointSpec } from "../balancer/endpoint-set.js";
import type { PickContext, PickResult, RandomSource } from "../balancer/picker.js";
import type { ClusterConfig } from "../config/config-schema.js";
import { durationMs } from "../config/config-units.js";
import { HealthChecker } from "../health/health-checker.js";
import { OutlierDetector } from "../health/outlier-detector.js";
import { createProber } from "./cluster-prober.js";
import { LoadMetricsScraper } from "../health/load-metrics-scraper.js";
import { ModelReadiness } from "../health/model-readiness.js";
import { LoadCosts, type LoadCostOptions } from "../balancer/load-cost.js";
import { PrefixIndex } from "../balancer/prefix-index.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import type { CounterTally, HistogramTally } from "../metrics/metrics-tally.js";
import type { EndpointCounters } from "../balancer/endpoint-counters.js";
import { SequencePins, type SequencePinBuffers } from "../balancer/sequence-pins.js";
import { ClusterStats } from "../metrics/endpoint-stats.js";
import { coarseNow } from "../metrics/coarse-clock.js";
import { HealthChanges } from "../health/health-changes.js";
import type { RouteDecision, UpstreamCluster } from "../cluster/upstream-cluster.js";
import { WorkQueue, type WorkQueueSettings } from "../cluster/work-queue.js";
import { RetryBudget } from "../cluster/retry-budget.js";

export type ClusterRole = "all" | "control" | "data";

export interface ClusterRuntimeDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly random?: RandomSource | undefined;
  /** Default `all`. */
  readonly role?: ClusterRole | undefined;
  /** Counters shared with worker threads (a new cluster's); fresh ones when absent. */
  readonly counters?: EndpointCounters | undefined;
  /** Sequence pins shared with worker threads (a new cluster's); fresh ones when absent. */
  readonly pins?: SequencePinBuffers | undefined;
  /** `data` role: asks the main thread to eject `address` (it applies the limits and the timer). */
  readonly requestEjection?: ((cluster: string, address: string, durationMs: number) => void) | undefined;
}

export class ClusterRuntime implements UpstreamCluster {
  readonly endpoints: EndpointSet;
  readonly balancer: Balancer;
  readonly connectTimeoutMs: number;
  readonly connectAttempts: number;
  readonly role: ClusterRole;
  /**
   * Which endpoints have which of `clusters[].models` ready (triton health checks; models start
   * ready). Kept across reloads. With worker threads only the main thread's record is fed.
   */
  readonly models: ModelReadiness;
  /** Triton sequence pins (`affinity.key: triton_sequence`), shared by every worker thread. */
  readonly pins: SequencePins | undefined;
  /** `least_loaded` only: this thread's latency estimates and the shared queue depths. */
  readonly costs: LoadCosts | undefined;
  /** `affinity.key: prompt_prefix`: which prompt blocks this thread routed to which endpoint. */
  readonly prefixIndex: PrefixIndex | undefined;
  /**
   * This thread's per-endpoint latency windows and status counts (the status page), from the
   * outcome reports below; kept across reloads. With worker threads the main thread's stay empty.
   */
  readonly stats: ClusterStats;
  /** Each endpoint's last health change and why (main thread only); kept across reloads. */
  readonly healthChanges: HealthChanges;
  /** Calls waiting for a slot (caps); carried across reloads with the calls in it. */
  readonly queue: WorkQueue;
  readonly retryBudget: RetryBudget;
  /** Per endpoint, an EWMA of the latency of OK streams (serviceEstimateMs); kept across reloads. */
  private readonly serviceEstimates: Map<string, number>;
  private readonly scraper: LoadMetricsScraper | undefined;
  private readonly requestEjection: ClusterRuntimeDeps["requestEjection"];
  private readonly health: HealthChecker | undefined;
  private readonly outliers: OutlierDetector;
  private readonly ejectionTimers = new Map<string, NodeJS.Timeout>();
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly pickTally: HistogramTally<"cluster" | "policy">;
  /** `fulcrum_upstream_requests_total` handles per endpoint (an endpoint object lives while it is a member). */
  private readonly requestTallies = new WeakMap<Endpoint, CounterTally<"cluster" | "endpoint">>();
  private readonly routeTallies = new Map<string, CounterTally<"cluster" | "reason">>();

  /**
   * `previous`: the runtime this one replaces on reload; its endpoint set (health, drains, weights,
   * active counts) carries over, so work in flight is still counted against the right endpoints.
   */
  constructor(
    readonly config: ClusterConfig,
    deps: ClusterRuntimeDeps,
    previous?: ClusterRuntime,
  ) {
    // Each component's logger is a child of the root one: a child of this one would repeat its keys.
    this.log = deps.log.child({ component: "cluster", cluster: config.name });
    this.metrics = deps.metrics;
    this.role = deps.role ?? "all";
    this.requestEjection = deps.requestEjection;
    this.endpoints =
      previous?.endpoints ??
      new EndpointSet(config.name, this.role === "data" ? [] : config.endpoints, { counters: deps.counters });
    const hc = config.health_check;
    const thresholds = {
      healthy: hc?.healthy_threshold ?? 2,
      unhealthy: hc?.unhealthy_threshold ?? 3,
    };
    this.models = previous?.models ?? new ModelReadiness(thresholds, config.models);
    this.stats = previous?.stats ?? new ClusterStats();
    this.healthChanges = previous?.healthChanges ?? new HealthChanges();
    this.pins = sequencePinsOf(config, previous?.pins?.buffers ?? deps.pins);
    this.endpoints.setSlowStart(durationMs(config.slow_start));
    this.endpoints.setCaps(
      new Map(config.endpoints.filter((e) => e.max_active > 0).map((e) => [e.address, e.max_active])),
      config.max_active_per_endpoint,
    );
    this.queue = previous?.queue ?? this.newQueue(config);
    this.queue.configure(queueSettings(config));
    this.queue.retry(); // caps may have been raised
    this.serviceEstimates = previous?.serviceEstimates ?? new Map<string, number>();
    this.retryBudget = new RetryBudget(config.retry_budget_percent, config.retry_budget_min_concurrency);
    if (previous) this.models.configure(config.models, thresholds);
    this.costs = config.policy === "least_loaded" ? this.loadCosts(previous) : undefined;
    this.prefixIndex = prefixIndexFor(config, previous?.prefixIndex);
    this.balancer = new Balancer(this.endpoints, {
      policy: config.policy,
      affinity: config.affinity ? { balanceFactor: config.affinity.balance_factor } : undefined,
      prefix: this.prefixIndex,
      random: deps.random ?? Math.random,
      costs: this.costs,
    });
    this.connectTimeoutMs = durationMs(config.connect_timeout);
    this.connectAttempts = config.connect_attempts;
    this.pickTally = this.metrics.pickDuration.tally({ cluster: config.name, policy: config.policy });
    const od = config.outlier_detection;
    this.outliers = new OutlierDetector({
      consecutiveFailures: od.consecutive_failures,
      baseEjectionMs: durationMs(od.base_ejection_time),
      maxEjectionPercent: od.max_ejection_percent,
    });
    const prober = this.role === "data" ? undefined : createProber(config);
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
              watch: hc.watch,
            },
            deps.log.child({ component: "health", cluster: config.name }),
            this.metrics,
            this.models,
            this.healthChanges,
          )
        : undefined;
    const lm = config.load_metrics;
    this.scraper =
      this.role !== "data" && this.costs && lm
        ? new LoadMetricsScraper(
            this.endpoints,
            {
              port: lm.port,
              path: lm.path,
              series: lm.metrics ?? [{ name: lm.metric, weight: 1, labels: {} }],
              intervalMs: durationMs(lm.interval),
            },
            deps.log.child({ component: "load-metrics", cluster: config.name }),
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
    this.scraper?.start();
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
    this.healthChanges.keepOnly(after);
    this.stats.keepOnly(after); // bounded without a /status reader (DNS discovery churns addresses)
    for (const address of this.serviceEstimates.keys())
      if (!after.has(address)) this.serviceEstimates.delete(address);
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
    this.scraper?.stop();
  }

  stop(): void {
    this.health?.stop();
    this.scraper?.stop();
    for (const t of this.ejectionTimers.values()) clearTimeout(t);
    this.ejectionTimers.clear();
  }

  pick(ctx: PickContext): PickResult {
    const started = performance.now();
    const result = this.balancer.pick(ctx);
    this.pickTally.observe((performance.now() - started) / 1000);
    return result;
  }

  /**
   * Counts a routing decision of an inference-aware cluster (models, `explain` or prompt_prefix) in
   * `fulcrum_route_decisions_total`; other clusters skip it.
   */
  routeDecided(reason: RouteDecision): void {
    const prefix = this.config.affinity?.key === "prompt_prefix";
    if (this.config.models.length === 0 && !this.config.explain && !prefix) return;
    let tally = this.routeTallies.get(reason);
    if (!tally) {
      tally = this.metrics.routeDecisionsTally({ cluster: this.name, reason });
      this.routeTallies.set(reason, tally);
    }
    tally.add(1);
  }

  /** A connection or stream starts on `endpoint`; pair with exactly one `release`. */
  acquire(endpoint: Endpoint): void {
    this.endpoints.acquire(endpoint);
    this.countRequest(endpoint);
  }

  private countRequest(endpoint: Endpoint): void {
    let tally = this.requestTallies.get(endpoint);
    if (!tally) {
      tally = this.metrics.upstreamRequestsTally({ cluster: this.name, endpoint: endpoint.address });
      this.requestTallies.set(endpoint, tally);
    }
    tally.add(1);
  }

  serviceEstimateMs(endpoint: Endpoint): number {
    if (!this.endpoints.hasCaps) return 0;
    return this.serviceEstimates.get(endpoint.address) ?? 0;
  }

  activeWork(): number {
    let n = 0;
    for (const e of this.endpoints.endpoints) n += this.endpoints.activeOf(e);
    return n;
  }

  retried(reason: string): void {
    this.metrics.retries.inc({ cluster: this.name, reason });
  }

  retryBudgetExhausted(): void {
    this.metrics.retryBudgetExhausted.inc({ cluster: this.name });
  }

  tryAcquire(endpoint: Endpoint): boolean {
    if (!this.endpoints.tryAcquire(endpoint)) return false;
    this.countRequest(endpoint);
    return true;
  }

  release(endpoint: Endpoint): void {
    this.endpoints.release(endpoint);
    this.queue.slotFreed(endpoint);
  }

  private newQueue(config: ClusterConfig): WorkQueue {
    const cluster = config.name;
    const m = this.metrics;
    const counters = this.endpoints.counters;
    const queue = new WorkQueue(
      queueSettings(config),
      {
        depthChanged: (priority, delta) => m.queueDepth.inc({ cluster, priority: String(priority) }, delta),
        waited: (seconds) => m.queueWait.observe({ cluster }, seconds),
        shed: (reason) => m.shed.inc({ cluster, reason }),
      },
      undefined,
      // A worker thread's queued calls also take slots that other threads free.
      this.role === "data" ? () => counters.waitForRelease(OTHER_THREADS_WAIT_MS) : undefined,
    );
    // Once per cluster (the set and the queue are carried across reloads): an endpoint that comes
    // back, or a new one, is capacity without a release.
    this.endpoints.onChange(() => queue.retry());
    return queue;
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

  /**
   * A gRPC stream on `endpoint` ended with `grpcStatus` after `latencyMs` (from its start upstream):
   * a latency sample for `least_loaded` (fast UNAVAILABLE / RESOURCE_EXHAUSTED count as expensive,
   * CANCELLED not at all). Other policies ignore it.
   */
  streamFinished(endpoint: Endpoint, latencyMs: number, grpcStatus: number): void {
    this.costs?.record(endpoint.address, latencyMs, grpcStatus);
    // The estimate serves caps only (deadline-aware binding, abandoned calls' slots).
    if (grpcStatus === 0 && this.endpoints.hasCaps) {
      const before = this.serviceEstimates.get(endpoint.address);
      const next = before === undefined ? latencyMs : before + SERVICE_EWMA_WEIGHT * (latencyMs - before);
      this.serviceEstimates.set(endpoint.address, next);
    }
    this.stats.of(endpoint.address).stream(coarseNow(), latencyMs, grpcStatus);
  }

  /** This thread's endpoint stats of the current members, for `/status` (endpoints that left are forgotten). */
  statsSnapshot(): ReturnType<ClusterStats["snapshot"]> {
    this.stats.keepOnly(new Set(this.endpoints.endpoints.map((e) => e.address)));
    return this.stats.snapshot();
  }

  /** A TCP connection relayed to `endpoint` closed after `durationMs` (the status page's latency). */
  connectionFinished(endpoint: Endpoint, durationMs: number): void {
    this.stats.of(endpoint.address).connection(coarseNow(), durationMs);
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
    const overLimit = !this.outliers.mayEjectAnother(ejected, members.length);
    if (overLimit || !this.endpoints.setEjected(address, true)) {
      if (this.role === "all") this.outliers.uneject(address);
      return;
    }
    this.metrics.outlierEjections.inc({ cluster: this.name, endpoint: address });
    this.log.warn({ endpoint: address, ejection_ms: durationMs }, "endpoint ejected");
    const failures = this.config.outlier_detection.consecutive_failures;
    this.healthChanges.record(
      address,
      "ejected",
      `${failures} consecutive failures (for ${Math.round(durationMs / 1000)}s)`,
      Date.now(),
    );
    const timer = setTimeout(() => {
      this.ejectionTimers.delete(address);
      this.outliers.uneject(address);
      if (this.endpoints.setEjected(address, false)) {
        this.log.info({ endpoint: address }, "endpoint ejection ended");
        const health = this.endpoints.get(address)?.health ?? "healthy";
        this.healthChanges.record(address, health, "ejection ended", Date.now());
      }
    }, durationMs);
    timer.unref();
    this.ejectionTimers.set(address, timer);
  }

  /**
   * The latency estimates of `least_loaded`, carried over from `previous` on reload; queue depths
   * come from the shared counters when the cluster has `load_metrics`.
   */
  private loadCosts(previous: ClusterRuntime | undefined): LoadCosts {
    const lm = this.config.load_metrics;
    const counters = this.endpoints.counters;
    const queue: LoadCostOptions["queue"] = lm
      ? {
          view: {
            queueDepthOf: (e) => counters.queueDepthOf(e.slot),
            queueScrapedAtOf: (e) => counters.queueScrapedAtOf(e.slot),
          },
          intervalMs: durationMs(lm.interval),
          staleMs: durationMs(lm.stale_after),
        }
      : undefined;
    const costs = previous?.costs ?? new LoadCosts({ now: Date.now, load: this.endpoints, queue });
    costs.setQueue(queue);
    return costs;
  }

  /** `data` role: an ejection ended in the main thread; this thread's detector starts afresh. */
  ejectionEnded(address: string): void {
    this.outliers.uneject(address);
  }
}

/** A worker thread's queue looks again at least this often when no release woke it. */
const OTHER_THREADS_WAIT_MS = 250;

/** Weight of a new sample in the service-time EWMA (about the last ten answers). */
const SERVICE_EWMA_WEIGHT = 0.1;

function queueSettings(config: ClusterConfig): WorkQueueSettings {
  return { maxSize: config.queue.max_size, timeoutMs: durationMs(config.queue.timeout) };
}

/** Live sequences one cluster can pin at once (a power of two; 64 Ki entries, 1 MiB of shared memory). */
const SEQUENCE_PIN_CAPACITY = 65_536;

/** The cluster's sequence pins when it routes by `triton_sequence`; kept across reloads. */
function sequencePinsOf(
  config: ClusterConfig,
  buffers: SequencePinBuffers | undefined,
): SequencePins | undefined {
  const affinity = config.affinity;
  if (affinity?.key !== "triton_sequence") return undefined;
  const idleSeconds = Math.max(1, Math.ceil(durationMs(affinity.sequence_idle_timeout) / 1000));
  return buffers
    ? new SequencePins(buffers, idleSeconds)
    : SequencePins.create(SEQUENCE_PIN_CAPACITY, idleSeconds);
}

/**
 * The prefix index of a `prompt_prefix` cluster: the previous one across a reload that keeps its
 * block size, index size and rule settings (what the workers cache does not change with a reload),
 * else a new one.
 */
function prefixIndexFor(config: ClusterConfig, previous: PrefixIndex | undefined): PrefixIndex | undefined {
  const affinity = config.affinity;
  if (affinity?.key !== "prompt_prefix") return undefined;
  if (
    previous !== undefined &&
    previous.blocksPerEndpoint === affinity.index_blocks &&
    previous.balanceFactor === affinity.balance_factor &&
    previous.balanceSlack === affinity.balance_slack &&
    previous.minMatch === affinity.min_match &&
    previous.blockBytes === affinity.block_bytes
  )
    return previous;
  return new PrefixIndex(
    affinity.index_blocks,
    affinity.balance_factor,
    affinity.block_bytes,
    affinity.balance_slack,
    affinity.min_match,
  );
}
