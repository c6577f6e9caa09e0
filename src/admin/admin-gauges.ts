/**
 * The scrape-time gauges of endpoint names and model readiness: `fulcrum_endpoint_info{cluster,
 * endpoint, name} 1` for every endpoint with a `name` (the Prometheus info-metric idiom, so the
 * address-labelled series keep their labels and a query joins the name on), and
 * `fulcrum_model_ready{cluster, endpoint, model, version}` 1/0 for every configured model of every
 * endpoint (labels bounded by `clusters[].models`). Filled from the main thread's records, which
 * probe and own the config; the gauges are reset before each fill (metrics.ts).
 */
import type { Metrics } from "../metrics/metrics.js";
import type { AdminCluster } from "./admin-host.js";

export function collectEndpointGauges(metrics: Metrics, clusters: Iterable<AdminCluster>): void {
  for (const c of clusters) {
    const names = endpointNames(c);
    for (const e of c.endpoints.endpoints) {
      const name = names.get(e.address);
      if (name !== undefined) metrics.endpointInfo.set({ cluster: c.name, endpoint: e.address, name }, 1);
      for (const m of c.models.stateOf(e.address)) {
        metrics.modelReady.set(
          { cluster: c.name, endpoint: e.address, model: m.name, version: m.version },
          m.ready ? 1 : 0,
        );
      }
    }
  }
}

/** `endpoints[].name` by address (endpoints without a name are absent). */
export function endpointNames(c: AdminCluster): Map<string, string> {
  const names = new Map<string, string>();
  for (const e of c.config.endpoints) if (e.name !== undefined) names.set(e.address, e.name);
  return names;
}
