/**
 * TLS towards a cluster's endpoints, for both engines: the cluster's `tls` block as the pools use it,
 * and the options of one connection (ALPN h2, the cluster's CA, SNI by name only).
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { ConnectionOptions } from "node:tls";
import type { ClusterConfig } from "../config/config-schema.js";

export interface UpstreamTls {
  readonly ca?: string | undefined;
  readonly serverName?: string | undefined;
  readonly insecureSkipVerify: boolean;
}

/** The cluster's `tls` block, or undefined for cleartext (h2c) upstreams. */
export function upstreamTlsOf(config: ClusterConfig): UpstreamTls | undefined {
  const tls = config.tls;
  if (!tls) return undefined;
  return { ca: tls.ca, serverName: tls.server_name, insecureSkipVerify: tls.insecure_skip_verify };
}

/** The options of a TLS connection to `host`. */
export function tlsOptionsOf(tls: UpstreamTls, host: string): ConnectionOptions {
  // SNI carries names, never IP addresses (RFC 6066); the certificate is still checked against the IP.
  const servername = tls.serverName ?? (isIP(host) ? "" : host);
  return {
    ALPNProtocols: ["h2"],
    ...(tls.ca !== undefined ? { ca: readFileSync(tls.ca) } : {}),
    servername,
    rejectUnauthorized: !tls.insecureSkipVerify,
    ...(tls.insecureSkipVerify ? { checkServerIdentity: () => undefined } : {}),
  };
}
