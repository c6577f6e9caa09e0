/**
 * What the admin listener needs of the running process: the clusters to show and act on, the
 * listeners' activity, the merged stats and metrics, and whether a stop began. The runtime's Fulcrum
 * implements it; admin/ imports this interface, never the runtime that starts the admin listener.
 */
import type { EndpointSet } from "../balancer/endpoint-set.js";
import type { ClusterConfig } from "../config/config-schema.js";
import type { HealthChanges } from "../health/health-changes.js";
import type { ModelReadiness } from "../health/model-readiness.js";
import type { EndpointStats } from "../metrics/endpoint-stats.js";
import type { ListenerStatus } from "../net/listener.js";

/** One cluster as `/status`, `/readyz`, the runtime API and the scrape-time gauges read it. */
export interface AdminCluster {
  readonly name: string;
  /** The config in force: `policy`, and `endpoints[].name` for the names shown. */
  readonly config: ClusterConfig;
  /** Members with their health, drain, weight and counters (global across worker threads). */
  readonly endpoints: EndpointSet;
  /** Readiness of each of `clusters[].models` per endpoint. */
  readonly models: ModelReadiness;
  /** Each endpoint's last health change; the runtime API records drains in it. */
  readonly healthChanges: HealthChanges;
}

export interface AdminHost {
  /** Every cluster of the config in force, by name. */
  readonly clusters: ReadonlyMap<string, AdminCluster>;
  /** True once a stop began (`/readyz` answers 503). */
  readonly draining: boolean;
  /** Every listener with its bound address and activity, summed over worker threads. */
  listenerStatus(): Promise<readonly ListenerStatus[]>;
  /** Each cluster's endpoint stats by address, merged over worker threads. */
  endpointStats(): Promise<ReadonlyMap<string, ReadonlyMap<string, EndpointStats>>>;
  /** Each cluster's queued calls (`clusters[].queue`) by priority, summed over worker threads. */
  queueDepths(): Promise<ReadonlyMap<string, Readonly<Record<string, number>>>>;
  /** Prometheus text of the whole process. */
  metricsText(): Promise<string>;
  /** Records a weight set through the admin API, so a reload keeps it. */
  rememberWeight(cluster: string, address: string): void;
}
