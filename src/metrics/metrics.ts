/**
 * Every Fulcrum metric, defined once against an injected prom-client Registry (tests get their own).
 * Names and labels follow docs/architecture.md's table: `fulcrum_` prefix, bounded labels, names never renamed.
 */
import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from "prom-client";
import { TalliedHistogram, TallyBook, type CounterTally } from "./metrics-tally.js";

export interface Metrics {
  readonly registry: Registry;
  /** Runs `fn` before every scrape, to copy state (active counts) into gauges; returns an undo. */
  addCollector(fn: () => void): () => void;
  readonly downstreamConnectionsActive: Gauge<"listener" | "thread">;
  readonly downstreamConnectionsTotal: Counter<"listener" | "thread">;
  readonly downstreamConnectionsRefused: Counter<"listener" | "reason">;
  readonly upstreamActive: Gauge<"cluster" | "endpoint">;
  readonly upstreamRequests: Counter<"cluster" | "endpoint">;
  readonly upstreamConnectFailures: Counter<"cluster" | "endpoint">;
  readonly upstreamResets: Counter<"cluster" | "endpoint">;
  readonly grpcStreams: Counter<"listener" | "cluster" | "grpc_code">;
  /** Tallied (metrics-tally.ts): hot paths observe through `streamDuration.tally(labels)`. */
  readonly streamDuration: TalliedHistogram<"listener" | "cluster">;
  readonly bytes: Counter<"listener" | "direction">;
  readonly pickDuration: TalliedHistogram<"cluster" | "policy">;
  readonly endpointHealthy: Gauge<"cluster" | "endpoint">;
  readonly healthTransitions: Counter<"cluster" | "endpoint" | "to">;
  readonly outlierEjections: Counter<"cluster" | "endpoint">;
  readonly configReloads: Counter<"result">;
  readonly routeDecisions: Counter<"cluster" | "reason">;
  /** Always 1: joins `endpoints[].name` onto the address-labelled series (filled at scrape time). */
  readonly endpointInfo: Gauge<"cluster" | "endpoint" | "name">;
  /** 1 when the model (`clusters[].models`) is ready on the endpoint, else 0 (filled at scrape time). */
  readonly modelReady: Gauge<"cluster" | "endpoint" | "model" | "version">;
  /** Calls waiting in a cluster's queue for a free slot (`clusters[].queue`), by priority. */
  readonly queueDepth: Gauge<"cluster" | "priority">;
  /** Time a call waited in the queue before it was bound to an endpoint or timed out. */
  readonly queueWait: Histogram<"cluster">;
  /** Calls shed by overload control, by reason (queue_full, queue_timeout, evicted, sheddable, no_queue). */
  readonly shed: Counter<"cluster" | "reason">;
  /** Streams retried on another endpoint after a retryable status (`clusters[].retry_on`), by status. */
  readonly retries: Counter<"cluster" | "reason">;
  /** Retryable answers passed through because the retry budget was spent. */
  readonly retryBudgetExhausted: Counter<"cluster">;
  /** Hot-path handles of `upstreamRequests`, `grpcStreams` and `bytes` (see metrics-tally.ts). */
  upstreamRequestsTally(labels: { cluster: string; endpoint: string }): CounterTally<"cluster" | "endpoint">;
  grpcStreamsTally(labels: {
    listener: string;
    cluster: string;
    grpc_code: string;
  }): CounterTally<"listener" | "cluster" | "grpc_code">;
  bytesTally(labels: { listener: string; direction: "in" | "out" }): CounterTally<"listener" | "direction">;
  routeDecisionsTally(labels: { cluster: string; reason: string }): CounterTally<"cluster" | "reason">;
}

export function createMetrics(registry: Registry, options: { processMetrics?: boolean } = {}): Metrics {
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const r = [registry];
  const collectors = new Set<() => void>();
  const requestsBook = new TallyBook<"cluster" | "endpoint">();
  const streamsBook = new TallyBook<"listener" | "cluster" | "grpc_code">();
  const bytesBook = new TallyBook<"listener" | "direction">();
  const routeBook = new TallyBook<"cluster" | "reason">();
  const metrics: Metrics = {
    registry,
    addCollector(fn) {
      collectors.add(fn);
      return () => collectors.delete(fn);
    },
    downstreamConnectionsActive: new Gauge({
      name: "fulcrum_downstream_connections_active",
      help: "Downstream connections open now.",
      labelNames: ["listener", "thread"],
      registers: r,
    }),
    downstreamConnectionsTotal: new Counter({
      name: "fulcrum_downstream_connections_total",
      help: "Downstream connections accepted.",
      labelNames: ["listener", "thread"],
      registers: r,
    }),
    downstreamConnectionsRefused: new Counter({
      name: "fulcrum_downstream_connections_refused_total",
      help: "Downstream connections closed without being served, by reason.",
      labelNames: ["listener", "reason"],
      registers: r,
    }),
    upstreamActive: new Gauge({
      name: "fulcrum_upstream_active",
      help: "Active upstream work per endpoint (tcp: connections; grpc: streams).",
      labelNames: ["cluster", "endpoint"],
      registers: r,
      collect() {
        // The scrape-time gauges registered after this one are refilled by the same collectors.
        this.reset();
        metrics.endpointInfo.reset();
        metrics.modelReady.reset();
        for (const fn of collectors) fn();
      },
    }),
    upstreamRequests: new Counter({
      name: "fulcrum_upstream_requests_total",
      help: "Connections (tcp) or streams (grpc) sent to an endpoint.",
      labelNames: ["cluster", "endpoint"],
      registers: r,
      collect: () => requestsBook.flush(),
    }),
    upstreamConnectFailures: new Counter({
      name: "fulcrum_upstream_connect_failures_total",
      help: "Failed connection attempts to an endpoint.",
      labelNames: ["cluster", "endpoint"],
      registers: r,
    }),
    upstreamResets: new Counter({
      name: "fulcrum_upstream_resets_total",
      help: "Upstream connections or streams reset by the endpoint.",
      labelNames: ["cluster", "endpoint"],
      registers: r,
    }),
    grpcStreams: new Counter({
      name: "fulcrum_grpc_streams_total",
      help: "gRPC streams finished, by status code.",
      labelNames: ["listener", "cluster", "grpc_code"],
      registers: r,
      collect: () => streamsBook.flush(),
    }),
    streamDuration: new TalliedHistogram({
      name: "fulcrum_stream_duration_seconds",
      help: "Duration of proxied streams (grpc) and connections (tcp).",
      labelNames: ["listener", "cluster"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: r,
    }),
    bytes: new Counter({
      name: "fulcrum_bytes_total",
      help: "Bytes proxied; in = from clients, out = to clients.",
      labelNames: ["listener", "direction"],
      registers: r,
      collect: () => bytesBook.flush(),
    }),
    pickDuration: new TalliedHistogram({
      name: "fulcrum_pick_duration_seconds",
      help: "Time spent choosing an endpoint.",
      labelNames: ["cluster", "policy"],
      buckets: [1e-7, 5e-7, 1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 1e-3],
      registers: r,
    }),
    endpointHealthy: new Gauge({
      name: "fulcrum_endpoint_healthy",
      help: "1 when the endpoint's active health is healthy, else 0.",
      labelNames: ["cluster", "endpoint"],
      registers: r,
    }),
    healthTransitions: new Counter({
      name: "fulcrum_health_transitions_total",
      help: "Active health state changes, by the state entered.",
      labelNames: ["cluster", "endpoint", "to"],
      registers: r,
    }),
    outlierEjections: new Counter({
      name: "fulcrum_outlier_ejections_total",
      help: "Endpoints ejected by passive outlier detection.",
      labelNames: ["cluster", "endpoint"],
      registers: r,
    }),
    configReloads: new Counter({
      name: "fulcrum_config_reloads_total",
      help: "Configuration reloads, by result.",
      labelNames: ["result"],
      registers: r,
    }),
    routeDecisions: new Counter({
      name: "fulcrum_route_decisions_total",
      help: "Inference-aware routing decisions, by reason.",
      labelNames: ["cluster", "reason"],
      registers: r,
      collect: () => routeBook.flush(),
    }),
    endpointInfo: new Gauge({
      name: "fulcrum_endpoint_info",
      help: "Always 1 for an endpoint with a name (endpoints[].name): join it onto endpoint-labelled series.",
      labelNames: ["cluster", "endpoint", "name"],
      registers: r,
    }),
    modelReady: new Gauge({
      name: "fulcrum_model_ready",
      help: "1 when a configured model (clusters[].models) is ready on the endpoint, else 0.",
      labelNames: ["cluster", "endpoint", "model", "version"],
      registers: r,
    }),
    queueDepth: new Gauge({
      name: "fulcrum_queue_depth",
      help: "Calls waiting in the cluster's queue for a free endpoint slot, by priority (the demand signal for autoscaling).",
      labelNames: ["cluster", "priority"],
      registers: r,
    }),
    queueWait: new Histogram({
      name: "fulcrum_queue_wait_seconds",
      help: "Time calls waited in the cluster's queue, until bound to an endpoint or shed.",
      labelNames: ["cluster"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    }),
    shed: new Counter({
      name: "fulcrum_shed_total",
      help: "Calls shed by overload control (RESOURCE_EXHAUSTED), by reason.",
      labelNames: ["cluster", "reason"],
      registers: r,
    }),
    retries: new Counter({
      name: "fulcrum_retries_total",
      help: "Streams retried on another endpoint after a retryable trailers-only status (retry_on), by status.",
      labelNames: ["cluster", "reason"],
      registers: r,
    }),
    retryBudgetExhausted: new Counter({
      name: "fulcrum_retry_budget_exhausted_total",
      help: "Retryable answers passed through to the client because the cluster's retry budget was spent.",
      labelNames: ["cluster"],
      registers: r,
    }),
    upstreamRequestsTally: (labels) => requestsBook.tally(labels),
    grpcStreamsTally: (labels) => streamsBook.tally(labels),
    bytesTally: (labels) => bytesBook.tally(labels),
    routeDecisionsTally: (labels) => routeBook.tally(labels),
  };
  requestsBook.counter = metrics.upstreamRequests;
  streamsBook.counter = metrics.grpcStreams;
  bytesBook.counter = metrics.bytes;
  routeBook.counter = metrics.routeDecisions;
  return metrics;
}
