/**
 * The upstream session pools of one cluster, one per endpoint, created on first use and shared by
 * every gRPC listener that routes to the cluster.
 */
import type { Endpoint } from "../../balancer/endpoint-set.js";
import type { ClusterConfig } from "../../config/config-schema.js";
import { durationMs } from "../../config/config-units.js";
import type { Logger } from "../../log/logger.js";
import { UpstreamPool } from "./upstream-pool.js";
import { upstreamTlsOf, type UpstreamTls } from "../upstream-tls.js";

export class ClusterPools {
  private readonly pools = new Map<string, UpstreamPool>();
  private readonly retired: UpstreamPool[] = [];
  private readonly tls: UpstreamTls | undefined;
  private readonly connectTimeoutMs: number;

  constructor(
    config: ClusterConfig,
    private readonly maxHeaderListSize: number,
    private readonly log: Logger,
  ) {
    this.connectTimeoutMs = durationMs(config.connect_timeout);
    this.tls = upstreamTlsOf(config);
  }

  get scheme(): "http" | "https" {
    return this.tls ? "https" : "http";
  }

  get(endpoint: Endpoint): UpstreamPool {
    let pool = this.pools.get(endpoint.address);
    if (!pool) {
      pool = new UpstreamPool(endpoint, {
        connectTimeoutMs: this.connectTimeoutMs,
        maxHeaderListSize: this.maxHeaderListSize,
        tls: this.tls,
        log: this.log,
      });
      this.pools.set(endpoint.address, pool);
    }
    return pool;
  }

  /** Sessions open to `address` (for tests and status). */
  sessionsTo(address: string): number {
    return this.pools.get(address)?.sessionCount ?? 0;
  }

  /**
   * After a reload: pools of endpoints no longer in `addresses` take no new streams and close when
   * their streams end; `destroyRemoved` (at drain_timeout) ends what is still running on them.
   * Returns how many pools it retired.
   */
  retain(addresses: ReadonlySet<string>): number {
    let retired = 0;
    for (const [address, pool] of this.pools) {
      if (!addresses.has(address)) {
        pool.close();
        this.retired.push(pool);
        this.pools.delete(address);
        retired++;
      }
    }
    return retired;
  }

  destroyRemoved(): void {
    for (const pool of this.retired) pool.destroy();
    this.retired.length = 0;
  }

  /** GOAWAY-style close: no new streams; sessions close when their streams end. */
  close(): void {
    for (const p of this.pools.values()) p.close();
  }

  destroy(): void {
    this.destroyRemoved();
    for (const p of this.pools.values()) p.destroy();
    this.pools.clear();
  }
}
