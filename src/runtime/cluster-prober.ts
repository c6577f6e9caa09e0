/**
 * The prober of a cluster's `health_check.type`: tcp connect, grpc.health.v1, Triton's readiness
 * RPCs or TorchServe's Ping, each over the cluster's upstream TLS when it has one; none for `none` or
 * no health check. The one place that maps the config's health check to a prober.
 */
import type { ClusterConfig } from "../config/config-schema.js";
import type { Prober } from "../health/prober.js";
import { GrpcHealthProber } from "../health/prober-grpc-health.js";
import type { GrpcProbeTls } from "../health/prober-grpc-pool.js";
import { TcpProber } from "../health/prober-tcp.js";
import { TorchServeProber } from "../health/prober-torchserve.js";
import { TritonProber } from "../health/prober-triton.js";

/** Throws (control plane) when a proto or a CA file cannot be read. */
export function createProber(config: ClusterConfig): Prober | undefined {
  const type = config.health_check?.type;
  switch (type) {
    case "tcp":
      return new TcpProber();
    case "grpc":
      return new GrpcHealthProber({ service: config.health_check?.service ?? "", tls: proberTls(config) });
    case "triton":
      return new TritonProber({ models: config.models, tls: proberTls(config) });
    case "torchserve":
      return new TorchServeProber({ tls: proberTls(config) });
    case undefined:
    case "none":
      return undefined;
  }
}

/** The cluster's upstream TLS (`clusters[].tls`) as every gRPC prober takes it. */
function proberTls(config: ClusterConfig): GrpcProbeTls {
  const tls = config.tls;
  return tls
    ? { ca: tls.ca, serverName: tls.server_name, insecureSkipVerify: tls.insecure_skip_verify }
    : undefined;
}
