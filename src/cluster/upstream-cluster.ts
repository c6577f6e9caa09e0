/**
 * What a transport (the tcp listener, either gRPC engine) needs of a cluster: pick an endpoint,
 * count the work placed on it, and report what happened there. The runtime's ClusterRuntime
 * implements it; transports import this interface, never the runtime, so the runtime can import the
 * transports it starts without a cycle.
 *
 * Every report is cheap and never throws (the data path calls them per connection and per stream).
 */
import type { Endpoint, EndpointSet } from "../balancer/endpoint-set.js";
import type { PickContext, PickResult } from "../balancer/picker.js";
import type { SequencePins } from "../balancer/sequence-pins.js";
import type { ClusterConfig } from "../config/config-schema.js";
import type { ModelReadiness } from "../health/model-readiness.js";
import type { RetryBudget } from "./retry-budget.js";
import type { WorkQueue } from "./work-queue.js";

/**
 * Why an inference-aware stream went where it went (`fulcrum_route_decisions_total`'s `reason`):
 * affinity, model, cost or policy, and for prompt-prefix affinity prefix, prefix_least_loaded or
 * prompt_not_found / prompt_short / prompt_too_large / prompt_unread.
 */
export type RouteDecision =
  | "affinity"
  | "model"
  | "cost"
  | "policy"
  | "prefix"
  | "prefix_least_loaded"
  | "prompt_not_found"
  | "prompt_short"
  | "prompt_too_large"
  | "prompt_unread";

export interface UpstreamCluster {
  /** `clusters[].name`. */
  readonly name: string;
  /** The cluster's config at this reload (policy, affinity, models, explain, peek_max_bytes…). */
  readonly config: ClusterConfig;
  /** The members, their health, drain and active counts (shared by every worker thread). */
  readonly endpoints: EndpointSet;
  /** Which endpoints have which of `clusters[].models` ready (models start ready). */
  readonly models: ModelReadiness;
  /** Triton sequence pins, when `affinity.key` is `triton_sequence`; otherwise undefined. */
  readonly pins: SequencePins | undefined;
  /** `connect_timeout` in milliseconds. */
  readonly connectTimeoutMs: number;
  /** `connect_attempts`: total tries on distinct endpoints before giving up. */
  readonly connectAttempts: number;

  /** Picks an endpoint for new work (synchronous; a failure is a reason, never a throw). */
  pick(ctx: PickContext): PickResult;
  /** Counts a routing decision of an inference-aware cluster; other clusters ignore it. */
  routeDecided(reason: RouteDecision): void;
  /** Calls waiting for a free slot when every endpoint is at its cap (`clusters[].queue`). */
  readonly queue: WorkQueue;

  /** Retries running at once (`retry_budget_percent` of active streams, at least the minimum). */
  readonly retryBudget: RetryBudget;
  /**
   * How long a stream on `endpoint` takes, from its recent OK answers (an EWMA, this thread's; 0
   * before any, and always 0 in a cluster without caps, which does not need it): a queued call with
   * less of its deadline left is not sent, and an abandoned call keeps its slot that long.
   */
  serviceEstimateMs(endpoint: Endpoint): number;
  /** Work active on every endpoint of the cluster now (all threads). */
  activeWork(): number;
  /** A stream is retried elsewhere after `status` (e.g. "unavailable"), or was not for want of budget. */
  retried(reason: string): void;
  retryBudgetExhausted(): void;

  /** A connection or stream starts on `endpoint`; pair with exactly one `release`. */
  acquire(endpoint: Endpoint): void;
  /** `acquire` unless `endpoint` is at its cap (`max_active`, exact across threads); false: not counted. */
  tryAcquire(endpoint: Endpoint): boolean;
  /** The work on `endpoint` ended: its slot is free for a queued call. */
  release(endpoint: Endpoint): void;
  /** A data-path connect to `endpoint` failed (`reason` is for the debug log): fed to outlier detection. */
  connectFailed(endpoint: Endpoint, reason: string): void;
  connectSucceeded(endpoint: Endpoint): void;
  /** A gRPC stream's result on `endpoint` for outlier detection (UNAVAILABLE and resets are failures). */
  streamResult(endpoint: Endpoint, ok: boolean): void;
  /** A gRPC stream on `endpoint` ended with `grpcStatus` after `latencyMs` (from its start upstream). */
  streamFinished(endpoint: Endpoint, latencyMs: number, grpcStatus: number): void;
  /** A TCP connection relayed to `endpoint` closed after `durationMs`. */
  connectionFinished(endpoint: Endpoint, durationMs: number): void;
  /** An upstream connection or stream to `endpoint` was reset. */
  upstreamReset(endpoint: Endpoint): void;
}
