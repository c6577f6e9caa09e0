/**
 * What the status page shows of each endpoint's recent traffic, kept from the data path's outcome
 * reports (`ClusterRuntime.streamFinished`, `connectionFinished`): a latency window per endpoint
 * (latency-window.ts) and the count of every gRPC status its streams ended with. One record per
 * cluster and thread; the main thread merges the worker threads' snapshots when `/status` is read.
 * A stream costs a map lookup and a few array stores; nothing is allocated per stream.
 */
import { LatencyWindow, type WindowSnapshot } from "./latency-window.js";

/** gRPC status codes 0–16; anything else is counted as UNKNOWN (2), as the metrics do. */
const STATUS_CODES = 17;
const UNKNOWN = 2;

/** One endpoint's window and status counts as plain data (structured-clone safe). */
export interface EndpointStatsSnapshot {
  readonly window: WindowSnapshot;
  /** Streams that ended with each gRPC status code (index = code), since the endpoint joined. */
  readonly statuses: Float64Array;
}

export class EndpointStats {
  readonly window = new LatencyWindow();
  readonly statuses = new Float64Array(STATUS_CODES);

  /** A gRPC stream ended with `status` after `durationMs`, at `nowMs`. */
  stream(nowMs: number, durationMs: number, status: number): void {
    const code = Number.isInteger(status) && status >= 0 && status < STATUS_CODES ? status : UNKNOWN;
    this.statuses[code] = (this.statuses[code] ?? 0) + 1;
    this.window.record(nowMs, durationMs, code !== 0);
  }

  /** A TCP connection ended after `durationMs`, at `nowMs`. */
  connection(nowMs: number, durationMs: number): void {
    this.window.record(nowMs, durationMs, false);
  }

  snapshot(): EndpointStatsSnapshot {
    return { window: this.window.snapshot(), statuses: this.statuses.slice() };
  }

  absorb(other: EndpointStatsSnapshot): void {
    this.window.absorb(other.window);
    for (let i = 0; i < STATUS_CODES; i++)
      this.statuses[i] = (this.statuses[i] ?? 0) + (other.statuses[i] ?? 0);
  }
}

/** The endpoint stats of one cluster in one thread, by address. */
export class ClusterStats {
  private readonly byAddress = new Map<string, EndpointStats>();

  of(address: string): EndpointStats {
    let stats = this.byAddress.get(address);
    if (!stats) this.byAddress.set(address, (stats = new EndpointStats()));
    return stats;
  }

  /** Forgets endpoints that left the cluster (reload, DNS discovery). */
  keepOnly(addresses: ReadonlySet<string>): void {
    for (const address of this.byAddress.keys()) if (!addresses.has(address)) this.byAddress.delete(address);
  }

  snapshot(): [string, EndpointStatsSnapshot][] {
    return [...this.byAddress].map(([address, stats]) => [address, stats.snapshot()]);
  }
}

/** One cluster's endpoint stats as one thread reports them. */
export interface ClusterStatsReport {
  readonly name: string;
  readonly endpoints: readonly (readonly [string, EndpointStatsSnapshot])[];
  /** Calls in the cluster's queue in this thread, by priority. */
  readonly queued?: Readonly<Record<string, number>> | undefined;
}

/** Every thread's queued calls summed: cluster name → priority → calls. */
export function mergeQueueReports(
  reports: readonly ClusterStatsReport[],
): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const report of reports) {
    const sum = out.get(report.name) ?? {};
    for (const [priority, n] of Object.entries(report.queued ?? {})) sum[priority] = (sum[priority] ?? 0) + n;
    out.set(report.name, sum);
  }
  return out;
}

/** Every thread's reports merged: cluster name → address → stats. */
export function mergeStatsReports(
  reports: readonly ClusterStatsReport[],
): Map<string, Map<string, EndpointStats>> {
  const out = new Map<string, Map<string, EndpointStats>>();
  for (const report of reports) {
    let cluster = out.get(report.name);
    if (!cluster) out.set(report.name, (cluster = new Map<string, EndpointStats>()));
    for (const [address, snapshot] of report.endpoints) {
      let stats = cluster.get(address);
      if (!stats) cluster.set(address, (stats = new EndpointStats()));
      stats.absorb(snapshot);
    }
  }
  return out;
}
