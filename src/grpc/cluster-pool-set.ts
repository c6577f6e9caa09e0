/**
 * The upstream pools of one cluster, one per endpoint, for either engine: created on first use,
 * shared by every gRPC listener that routes to the cluster, retired on reload when their endpoint
 * leaves (no new streams; what runs on them finishes, or is ended at drain_timeout).
 */
import type { Endpoint } from "../balancer/endpoint-set.js";
import type { ClusterConfig } from "../config/config-schema.js";
import { upstreamTlsOf, type UpstreamTls } from "./upstream-tls.js";

/** What the set needs of one endpoint's pool. */
export interface EndpointPool {
  /** Connections open to the endpoint (status and tests). */
  readonly connectionCount: number;
  /** No new streams; connections close when their streams end. */
  close(): void;
  /** Ends every connection now. */
  destroy(): void;
}

export class ClusterPoolSet<P extends EndpointPool> {
  private readonly pools = new Map<string, P>();
  private readonly retired: P[] = [];
  /** The cluster's upstream TLS, or undefined for cleartext (h2c). */
  readonly tls: UpstreamTls | undefined;

  constructor(
    config: ClusterConfig,
    private readonly create: (endpoint: Endpoint, tls: UpstreamTls | undefined) => P,
  ) {
    this.tls = upstreamTlsOf(config);
  }

  /** The upstream `:scheme`. */
  get scheme(): "http" | "https" {
    return this.tls ? "https" : "http";
  }

  get(endpoint: Endpoint): P {
    let pool = this.pools.get(endpoint.address);
    if (!pool) {
      pool = this.create(endpoint, this.tls);
      this.pools.set(endpoint.address, pool);
    }
    return pool;
  }

  /** Connections open to `address` (for tests and status). */
  sessionsTo(address: string): number {
    return this.pools.get(address)?.connectionCount ?? 0;
  }

  /**
   * After a reload: pools of endpoints no longer in `addresses` take no new streams and close when
   * their streams end; `destroyRemoved` (at drain_timeout) ends what is still running on them.
   * Returns how many pools it retired.
   */
  retain(addresses: ReadonlySet<string>): number {
    let retired = 0;
    for (const [address, pool] of this.pools) {
      if (addresses.has(address)) continue;
      pool.close();
      this.retired.push(pool);
      this.pools.delete(address);
      retired++;
    }
    return retired;
  }

  destroyRemoved(): void {
    for (const pool of this.retired.splice(0)) pool.destroy();
  }

  /** GOAWAY-style close: no new streams; connections close when their streams end. */
  close(): void {
    for (const p of this.pools.values()) p.close();
  }

  destroy(): void {
    this.destroyRemoved();
    for (const p of this.pools.values()) p.destroy();
    this.pools.clear();
  }
}
