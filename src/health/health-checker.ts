/**
 * Schedules active probes for one cluster's endpoints and applies the thresholds. Probes run every
 * `interval` (up to 10 % jitter, so probes of many endpoints do not fire in lockstep) with a deadline
 * of `timeout`; a probe never overlaps the previous one to the same endpoint. State changes go to the
 * endpoint set, one log line at info and the health metrics. Per-model results (triton) go to the
 * cluster's model readiness record, counted with the same thresholds.
 *
 * With `watch` (grpc.health.v1 `Watch`) an endpoint gets one stream instead of polls: each update is
 * one result through the same thresholds; a stream that fails or ends is one failed result and is
 * reopened after `interval`; a worker without `Watch` (UNIMPLEMENTED) is polled with `Check`.
 */
import type { EndpointSet, Endpoint } from "../balancer/endpoint-set.js";
import type { ModelReadiness } from "./model-readiness.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import { probeReason, type HealthChanges } from "./health-changes.js";
import { HealthThresholds, type Thresholds } from "./health-thresholds.js";
import type { ProbeOutcome, Prober, WatchStream } from "./prober.js";

export interface HealthCheckSettings extends Thresholds {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Stream results with the prober's `watch` where it has one (default false: poll `probe`). */
  readonly watch?: boolean | undefined;
}

interface Schedule {
  readonly thresholds: HealthThresholds;
  timer: NodeJS.Timeout | undefined;
  running: boolean;
  stopped: boolean;
  /** The open watch stream (watch mode; undefined between a stream's end and its reopening). */
  stream: WatchStream | undefined;
  /** Watch mode: counts the last status again every interval while the stream stays quiet. */
  repeat: NodeJS.Timeout | undefined;
}

const JITTER = 0.1;

export class HealthChecker {
  private readonly schedules = new Map<string, Schedule>();
  private stopped = false;
  /** The fallback from Watch to Check polling is logged once per cluster, not once per endpoint. */
  private fallbackLogged = false;

  constructor(
    private readonly endpoints: EndpointSet,
    private readonly prober: Prober,
    private readonly settings: HealthCheckSettings,
    /** Carries the cluster's name (`child({ component, cluster })`): lines name only the endpoint. */
    private readonly log: Logger,
    private readonly metrics: Metrics,
    /** Where per-model probe results are counted; absent: they are ignored. */
    private readonly models?: ModelReadiness,
    /** Where each transition is recorded with its reason (the status page); absent: nowhere. */
    private readonly changes?: HealthChanges,
  ) {}

  /** Starts probing every current endpoint; call again after membership changes. */
  sync(): void {
    if (this.stopped) return;
    const current = new Set<string>();
    for (const e of this.endpoints.endpoints) {
      current.add(e.address);
      if (!this.schedules.has(e.address)) this.start(e);
    }
    for (const [address, s] of this.schedules) {
      if (!current.has(address)) {
        this.cancel(s);
        this.schedules.delete(address);
        this.metrics.endpointHealthy.remove(this.endpoints.cluster, address);
      }
    }
    this.models?.syncEndpoints(current);
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.schedules.values()) this.cancel(s);
    this.schedules.clear();
    this.prober.close();
  }

  private start(e: Endpoint): void {
    const s: Schedule = {
      thresholds: new HealthThresholds(this.settings, e.health),
      timer: undefined,
      running: false,
      stopped: false,
      stream: undefined,
      repeat: undefined,
    };
    this.schedules.set(e.address, s);
    this.metrics.endpointHealthy.set(
      { cluster: this.endpoints.cluster, endpoint: e.address },
      e.health === "healthy" ? 1 : 0,
    );
    if (this.settings.watch === true && this.prober.watch) return this.openWatch(e, s);
    // The first probe goes out within one interval, spread so endpoints are not probed in lockstep.
    this.arm(e, s, Math.random() * this.settings.intervalMs);
  }

  /**
   * Watch mode. A worker sends its status when the stream opens and then only when it changes, so
   * the last status counts again every interval while the stream is quiet: the thresholds keep their
   * Check meaning (N results ≈ N intervals) instead of waiting for N changes that never come. A
   * stream with no first answer within `timeout` is a failed result, closed and reopened after
   * `interval`, as a Check without an answer would be.
   */
  private openWatch(e: Endpoint, s: Schedule): void {
    if (s.stopped || !this.prober.watch) return;
    let answered = false;
    s.timer = setTimeout(() => {
      if (s.stopped || answered) return;
      s.stream?.close();
      s.stream = undefined;
      this.record(e, s, { result: "failure", reason: "no Watch answer within timeout" });
      this.reopenWatch(e, s);
    }, this.settings.timeoutMs);
    s.timer.unref();
    s.stream = this.prober.watch(e, {
      result: (outcome) => {
        if (s.stopped) return;
        if (!answered) {
          answered = true;
          if (s.timer) clearTimeout(s.timer);
          s.timer = undefined;
        }
        this.record(e, s, outcome);
        this.repeatWatch(e, s, outcome);
      },
      ended: (end) => {
        s.stream = undefined;
        if (s.timer) clearTimeout(s.timer);
        s.timer = undefined;
        this.stopRepeat(s);
        if (s.stopped) return;
        if (end.unimplemented) {
          if (!this.fallbackLogged) {
            this.fallbackLogged = true;
            this.log.warn({ endpoint: e.address }, "grpc health Watch unimplemented: polling Check instead");
          }
          return this.arm(e, s, 0);
        }
        this.record(e, s, { result: "failure", reason: end.reason });
        this.reopenWatch(e, s);
      },
    });
  }

  private reopenWatch(e: Endpoint, s: Schedule): void {
    this.stopRepeat(s);
    s.timer = setTimeout(() => this.openWatch(e, s), this.settings.intervalMs);
    s.timer.unref();
  }

  private repeatWatch(e: Endpoint, s: Schedule, last: ProbeOutcome): void {
    this.stopRepeat(s);
    s.repeat = setTimeout(() => {
      s.repeat = undefined;
      if (s.stopped || !s.stream) return;
      this.record(e, s, last);
      this.repeatWatch(e, s, last);
    }, this.settings.intervalMs);
    s.repeat.unref();
  }

  private stopRepeat(s: Schedule): void {
    if (s.repeat) clearTimeout(s.repeat);
    s.repeat = undefined;
  }

  private arm(e: Endpoint, s: Schedule, delayMs: number): void {
    if (s.stopped) return;
    s.timer = setTimeout(() => void this.run(e, s), delayMs);
    s.timer.unref();
  }

  private async run(e: Endpoint, s: Schedule): Promise<void> {
    if (s.stopped || s.running) return;
    s.running = true;
    const started = Date.now();
    const outcome = await this.prober.probe(e, this.settings.timeoutMs);
    s.running = false;
    if (s.stopped) return;
    this.record(e, s, outcome);
    const interval = this.settings.intervalMs * (1 - JITTER * Math.random());
    this.arm(e, s, Math.max(0, started + interval - Date.now()));
  }

  /** One probe result through the thresholds: a transition, its log line and metrics. */
  private record(e: Endpoint, s: Schedule, outcome: ProbeOutcome): void {
    const transition = s.thresholds.observe(outcome.result);
    if (outcome.models) this.observeModels(e, outcome);
    if (transition.kind === "changed") {
      this.endpoints.setHealth(e.address, transition.to);
      const labels = { cluster: this.endpoints.cluster, endpoint: e.address };
      this.metrics.healthTransitions.inc({ ...labels, to: transition.to });
      this.metrics.endpointHealthy.set(labels, transition.to === "healthy" ? 1 : 0);
      const threshold = transition.to === "healthy" ? this.settings.healthy : this.settings.unhealthy;
      this.changes?.record(
        e.address,
        transition.to,
        probeReason(transition.to, threshold, outcome.reason),
        Date.now(),
      );
      const line = {
        endpoint: e.address,
        to: transition.to,
        reason: outcome.reason,
      };
      if (transition.to === "healthy") this.log.info(line, "endpoint healthy");
      else this.log.warn(line, "endpoint unhealthy");
    } else if (outcome.result === "failure") {
      this.log.debug({ endpoint: e.address, reason: outcome.reason }, "probe failed");
    }
  }

  private observeModels(e: Endpoint, outcome: ProbeOutcome): void {
    for (const m of outcome.models ?? []) {
      const t = this.models?.observe(e.address, m.model, m.result);
      if (t?.kind !== "changed") continue;
      const line = {
        endpoint: e.address,
        model: m.model.name,
        model_version: m.model.version,
        to: t.to === "healthy" ? "ready" : "not_ready",
        reason: m.reason,
      };
      if (t.to === "healthy") this.log.info(line, "model ready");
      else this.log.warn(line, "model not ready");
    }
  }

  private cancel(s: Schedule): void {
    s.stopped = true;
    if (s.timer) clearTimeout(s.timer);
    this.stopRepeat(s);
    s.stream?.close();
    s.stream = undefined;
  }
}
