/**
 * The DNS discovery of every `discovery: dns` cluster of a running Fulcrum, by cluster name: each
 * resolves its names once before the listeners bind (traffic never reaches an unresolved name), a
 * reload hands each its new settings and starts or stops the ones the config added or removed, and
 * all stop with Fulcrum.
 */
import type { EndpointSpec } from "../balancer/endpoint-set.js";
import type { ConfigIssue } from "../config/config-error.js";
import type { ClusterConfig, FulcrumConfig } from "../config/config-schema.js";
import { DnsDiscovery, dnsResolverIssues, type DiscoveredCluster } from "../discovery/dns-discovery.js";
import type { Logger } from "../log/logger.js";

export interface ClusterDiscoveriesDeps {
  readonly log: Logger;
  /** The cluster called `name` now (a reload may have replaced it); undefined once it is gone. */
  readonly cluster: (name: string) => DiscoveredCluster | undefined;
  /** Endpoints of `name` whose weight was set through the admin API (it survives a change). */
  readonly adminWeights: (name: string) => ReadonlySet<string> | undefined;
}

export class ClusterDiscoveries {
  private readonly byName = new Map<string, DnsDiscovery>();

  constructor(private readonly deps: ClusterDiscoveriesDeps) {}

  /** Starts discovering `config` (`clusters[index]`); resolves once its names were resolved a first time. */
  async start(config: ClusterConfig, index: number): Promise<void> {
    const discovery = new DnsDiscovery(config, {
      log: this.deps.log,
      cluster: () => this.deps.cluster(config.name),
      adminWeights: () => this.deps.adminWeights(config.name),
      path: `clusters[${index}]`,
    });
    this.byName.set(config.name, discovery);
    await discovery.start();
  }

  /** The endpoints last resolved for cluster `name`; undefined when it is not discovered. */
  specsOf(name: string): readonly EndpointSpec[] | undefined {
    return this.byName.get(name)?.specs;
  }

  /** After a reload: DNS clusters take their new settings; added ones start, removed ones stop. */
  async reconcile(next: FulcrumConfig): Promise<void> {
    for (const [name, d] of this.byName) {
      if (!next.clusters.some((c) => c.name === name && c.discovery === "dns")) {
        d.stop();
        this.byName.delete(name);
      }
    }
    for (const [i, c] of next.clusters.entries()) {
      if (c.discovery !== "dns") continue;
      const existing = this.byName.get(c.name);
      if (existing) await existing.update(c);
      else await this.start(c, i);
    }
  }

  stop(): void {
    for (const d of this.byName.values()) d.stop();
  }
}

/** What a config's DNS clusters would refuse to run with (resolver addresses), by config path. */
export function discoveryIssues(config: FulcrumConfig): ConfigIssue[] {
  return config.clusters.flatMap((c, i) =>
    c.discovery === "dns" ? dnsResolverIssues(c, `clusters[${i}]`) : [],
  );
}
