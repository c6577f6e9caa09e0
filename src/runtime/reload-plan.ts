/**
 * What a reload may change and how (docs/architecture.md "Reload"): `threads` and `admin.listen` cannot change;
 * a listener whose socket-level settings changed (`listen`, `protocol`, and for grpc `engine`, `tls`,
 * `max_header_list_size`) is removed and added; any other listener change applies in place.
 */
import type { ConfigIssue } from "../config/config-error.js";
import type { ClusterConfig, FulcrumConfig, ListenerConfig } from "../config/config-schema.js";

export function reloadRefusals(current: FulcrumConfig, next: FulcrumConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (current.threads !== next.threads) {
    issues.push({
      path: "threads",
      message: `cannot change on reload (${String(current.threads)} → ${String(next.threads)}); restart Fulcrum`,
    });
  }
  const before = current.admin?.listen;
  const after = next.admin?.listen;
  if (before !== after) {
    issues.push({
      path: "admin.listen",
      message: `cannot change on reload (${before ?? "none"} → ${after ?? "none"}); restart Fulcrum`,
    });
  }
  return issues;
}

/** True when `next` can take over `current`'s bound socket (same name and socket-level settings). */
export function sameSocket(current: ListenerConfig, next: ListenerConfig): boolean {
  return (
    current.name === next.name &&
    current.listen === next.listen &&
    current.protocol === next.protocol &&
    current.engine === next.engine &&
    current.max_header_list_size === next.max_header_list_size &&
    JSON.stringify(current.tls) === JSON.stringify(next.tls)
  );
}

/** True when the upstream session settings of a cluster changed, so its pools must be replaced. */
export function upstreamChanged(current: ClusterConfig, next: ClusterConfig): boolean {
  return (
    current.connect_timeout !== next.connect_timeout ||
    JSON.stringify(current.tls) !== JSON.stringify(next.tls)
  );
}
