/**
 * The `http2` engine's session pools of one cluster, one per endpoint, created on first use and
 * shared by every gRPC listener that routes to the cluster.
 */
import type { ClusterConfig } from "../../config/config-schema.js";
import { durationMs } from "../../config/config-units.js";
import type { Logger } from "../../log/logger.js";
import { ClusterPoolSet } from "../cluster-pool-set.js";
import { UpstreamPool } from "./upstream-pool.js";

export class ClusterPools extends ClusterPoolSet<UpstreamPool> {
  constructor(config: ClusterConfig, maxHeaderListSize: number, log: Logger) {
    const connectTimeoutMs = durationMs(config.connect_timeout);
    super(
      config,
      (endpoint, tls) => new UpstreamPool(endpoint, { connectTimeoutMs, maxHeaderListSize, tls, log }),
    );
  }
}
