/**
 * The `/status` document of docs/architecture.md: every listener with its bound address and activity, every
 * cluster with its endpoints' health, weight, drain flag and counters. Counts are read from the
 * endpoint sets (shared with worker threads), so they are global and the ones the policies see;
 * listener activity, latency windows and status counts are summed over worker threads.
 *
 * Fields are only ever added (tools outside the project read this document): the endpoint `name`,
 * `latency_ms` over the last minute, `statuses` (streams by non-OK gRPC status), the
 * `last_health_change`, `models` readiness and a 5-minute `history` per endpoint; the process's
 * `version` and `uptime_seconds`; each endpoint's `max_active` cap and each cluster's `queue`.
 */
import { readFileSync } from "node:fs";
import { durationMs } from "../config/config-units.js";
import { statusName } from "../grpc/grpc-status.js";
import type { HistoryBucket } from "../metrics/latency-window.js";
import { LatencyWindow, SUMMARY_BUCKETS, WINDOW_BUCKET_MS } from "../metrics/latency-window.js";
import type { EndpointStats } from "../metrics/endpoint-stats.js";
import type { AdminHost } from "./admin-host.js";
import { endpointNames } from "./admin-gauges.js";

export interface EndpointStatus {
  readonly address: string;
  /** The configured (or admin-set) weight. */
  readonly weight: number;
  /** The weight the policy uses now: `weight`, or less during slow start (`clusters[].slow_start`). */
  readonly effective_weight: number;
  readonly health: "healthy" | "unhealthy" | "ejected";
  readonly drained: boolean;
  readonly active: number;
  /** The endpoint's cap on active work (`max_active` or the cluster's default); 0 = none. */
  readonly max_active: number;
  readonly total: number;
  /** Data-path failures: connect failures and resets (not answers with an error status: `statuses`). */
  readonly failures: number;
  /** `endpoints[].name`, or null. */
  readonly name: string | null;
  /** Durations of the streams (grpc) or connections (tcp) that ended in the last `window_seconds`. */
  readonly latency_ms: {
    readonly p50: number | null;
    readonly p99: number | null;
    readonly calls: number;
    readonly window_seconds: number;
  };
  /** Streams that ended with each non-OK gRPC status, by status name, since the endpoint joined. */
  readonly statuses: Readonly<Record<string, number>>;
  /** The endpoint's last health change (probes, ejection, admin drain), or null when none yet. */
  readonly last_health_change: { readonly to: string; readonly reason: string; readonly at: string } | null;
  /** Readiness of each of `clusters[].models` on this endpoint (empty without models). */
  readonly models: readonly { model: string; version: string; ready: boolean }[];
  /** 10-second buckets of the last 5 minutes, oldest first. */
  readonly history: readonly HistoryBucket[];
}

export interface StatusDocument {
  readonly listeners: readonly {
    name: string;
    protocol: "tcp" | "grpc";
    address: string;
    engine: string | null;
    active: number;
  }[];
  readonly clusters: readonly {
    name: string;
    policy: string;
    /** Calls waiting for a free slot (`clusters[].queue`), in all, by priority, and the queue's bounds. */
    queue: {
      depth: number;
      by_priority: Readonly<Record<string, number>>;
      max_size: number;
      timeout_ms: number;
    };
    endpoints: readonly EndpointStatus[];
  }[];
  readonly draining: boolean;
  /** Fulcrum's version (package.json). */
  readonly version: string;
  readonly uptime_seconds: number;
  /** Width of one `history` bucket. */
  readonly history_bucket_seconds: number;
}

export async function statusOf(host: AdminHost, nowMs = Date.now()): Promise<StatusDocument> {
  const [listeners, stats, queues] = await Promise.all([
    host.listenerStatus(),
    host.endpointStats(),
    host.queueDepths(),
  ]);
  return {
    listeners: listeners.map((l) => ({
      name: l.name,
      protocol: l.protocol,
      address: l.address,
      engine: l.protocol === "grpc" ? l.engine : null,
      active: l.active,
    })),
    clusters: [...host.clusters.values()].map((c) => {
      const set = c.endpoints;
      const names = endpointNames(c);
      const clusterStats = stats.get(c.name);
      const queued = queues.get(c.name) ?? {};
      return {
        name: c.name,
        policy: c.config.policy,
        queue: {
          depth: Object.values(queued).reduce((n, x) => n + x, 0),
          by_priority: queued,
          max_size: c.config.queue.max_size,
          timeout_ms: durationMs(c.config.queue.timeout),
        },
        endpoints: set.endpoints.map((e): EndpointStatus => {
          const s = clusterStats?.get(e.address);
          const latency = s?.window.summary(nowMs);
          const change = c.healthChanges.lastOf(e.address);
          return {
            address: e.address,
            weight: e.configuredWeight,
            effective_weight: e.weight,
            health: e.health === "unhealthy" ? "unhealthy" : e.ejected ? "ejected" : "healthy",
            drained: e.drained,
            active: set.activeOf(e),
            max_active: set.capOf(e),
            total: set.totalOf(e),
            failures: set.failuresOf(e),
            name: names.get(e.address) ?? null,
            latency_ms: {
              p50: latency?.p50_ms ?? null,
              p99: latency?.p99_ms ?? null,
              calls: latency?.calls ?? 0,
              window_seconds: (SUMMARY_BUCKETS * WINDOW_BUCKET_MS) / 1000,
            },
            statuses: s ? errorStatuses(s) : {},
            last_health_change: change
              ? { to: change.to, reason: change.reason, at: new Date(change.at).toISOString() }
              : null,
            models: c.models
              .stateOf(e.address)
              .map((m) => ({ model: m.name, version: m.version, ready: m.ready })),
            history: s ? s.window.history(nowMs) : emptyHistory(nowMs),
          };
        }),
      };
    }),
    draining: host.draining,
    version: VERSION,
    uptime_seconds: Math.round(process.uptime()),
    history_bucket_seconds: WINDOW_BUCKET_MS / 1000,
  };
}

function errorStatuses(s: EndpointStats): Record<string, number> {
  const out: Record<string, number> = {};
  for (let code = 1; code < s.statuses.length; code++) {
    const n = s.statuses[code] ?? 0;
    if (n > 0) out[statusName(code)] = n;
  }
  return out;
}

/** An endpoint nothing ended on yet (in any thread) has an all-zero history. */
const EMPTY_WINDOW = new LatencyWindow();

function emptyHistory(nowMs: number): HistoryBucket[] {
  return EMPTY_WINDOW.history(nowMs);
}

/** package.json's version (dist/src/admin/ → the repository's root). */
const VERSION = ((): string => {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
      version?: unknown;
    };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
})();
