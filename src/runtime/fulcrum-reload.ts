/**
 * The steps of a reload that do not need the running Fulcrum's own state (docs/architecture.md
 * "Reload"): what refuses a new config, how the clusters of the new config take over from the running
 * ones, what the "config reloaded" line says, and reading the config file again. Fulcrum.reload runs
 * them in order: refuse, bind new sockets, swap clusters, reconcile DNS discovery, commit listeners.
 */
import type { EndpointSpec } from "../balancer/endpoint-set.js";
import { ConfigError, type ConfigIssue } from "../config/config-error.js";
import { unreadableFiles } from "../config/config-files.js";
import { loadConfigFile } from "../config/config-load.js";
import type { ClusterConfig, FulcrumConfig } from "../config/config-schema.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import type { ClusterRuntime } from "./cluster-runtime.js";
import { discoveryIssues } from "./fulcrum-discoveries.js";
import { reloadRefusals, sameSocket } from "./reload-plan.js";

/** What refuses `next` before anything changed: immutable settings, unreadable files, bad resolvers. */
export function reloadIssues(current: FulcrumConfig, next: FulcrumConfig): ConfigIssue[] {
  return [...reloadRefusals(current, next), ...unreadableFiles(next), ...discoveryIssues(next)];
}

export interface ClusterSwap {
  /** The running clusters by name; updated in place. */
  readonly clusters: Map<string, ClusterRuntime>;
  /** A runtime for `config`, carrying over `previous`'s endpoint set when there is one. */
  readonly create: (config: ClusterConfig, previous: ClusterRuntime | undefined) => ClusterRuntime;
  /** The endpoints DNS discovery resolved last for cluster `name`, when it is discovered. */
  readonly discovered: (name: string) => readonly EndpointSpec[] | undefined;
  /** Endpoints of `name` whose weight was set through the admin API. */
  readonly adminWeights: (name: string) => ReadonlySet<string> | undefined;
}

/**
 * The clusters of `next` take over: each gets a new runtime over the old one's endpoint set (so
 * health, drains, admin weights and active counts survive) with the new endpoints applied, and starts;
 * a cluster `next` no longer has loses its endpoints and stops probing. Returns the runtimes replaced
 * or removed, whose ejection timers still act on the carried-over sets until they are stopped.
 */
export function swapClusters(swap: ClusterSwap, next: FulcrumConfig): ClusterRuntime[] {
  const retired: ClusterRuntime[] = [];
  for (const c of next.clusters) {
    const previous = swap.clusters.get(c.name);
    const runtime = swap.create(c, previous);
    if (previous) {
      previous.retire();
      retired.push(previous);
      // A DNS cluster keeps its resolved endpoints; its discovery takes the new names afterwards.
      const discovered = c.discovery === "dns" ? swap.discovered(c.name) : undefined;
      runtime.setEndpoints(discovered ?? c.endpoints, swap.adminWeights(c.name));
    }
    swap.clusters.set(c.name, runtime);
    runtime.start();
  }
  for (const [name, runtime] of swap.clusters) {
    if (next.clusters.some((c) => c.name === name)) continue;
    runtime.setEndpoints([]);
    runtime.retire();
    retired.push(runtime);
    swap.clusters.delete(name);
  }
  return retired;
}

/**
 * The fields of the "config reloaded" line: listeners and clusters now, and which were added or
 * removed (`added[i]`: the address a new socket of `next.listeners[i]` was bound to).
 */
export function reloadSummary(
  previous: FulcrumConfig,
  next: FulcrumConfig,
  added: readonly (string | undefined)[],
): Record<string, unknown> {
  return {
    listeners: next.listeners.length,
    listeners_added: next.listeners.filter((_, i) => added[i] !== undefined).map((l) => l.name),
    listeners_removed: previous.listeners
      .filter((pl) => !next.listeners.some((nl, i) => added[i] === undefined && sameSocket(pl, nl)))
      .map((l) => l.name),
    clusters: next.clusters.map((c) => c.name),
    clusters_removed: previous.clusters
      .filter((c) => !next.clusters.some((n) => n.name === c.name))
      .map((c) => c.name),
  };
}

export type ReloadAnswer = { ok: true } | { ok: false; errors: string[] };

/**
 * Reads `file` again and hands the config to `reload` (SIGHUP, `POST /reload`). An invalid file is
 * counted and logged here and changes nothing; the errors come back as `path: message` lines.
 */
export async function reloadFromFile(
  file: string,
  reload: (next: FulcrumConfig) => Promise<void>,
  deps: { readonly log: Logger; readonly metrics: Metrics },
): Promise<ReloadAnswer> {
  let next: FulcrumConfig;
  try {
    next = loadConfigFile(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const errors = issueLines(err);
    deps.metrics.configReloads.inc({ result: "failure" });
    deps.log.error({ config: file, errors }, "config reload rejected: old config kept");
    return { ok: false, errors };
  }
  try {
    await reload(next);
    return { ok: true };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { ok: false, errors: issueLines(err) };
  }
}

function issueLines(err: ConfigError): string[] {
  return err.issues.map((i) => `${i.path}: ${i.message}`);
}
