/** docs/architecture.md's metric table: the names outside tools rely on (may be added to, never renamed). */
export const CONTRACT_METRICS = [
  "fulcrum_downstream_connections_active",
  "fulcrum_downstream_connections_total",
  "fulcrum_downstream_connections_refused_total",
  "fulcrum_upstream_active",
  "fulcrum_upstream_requests_total",
  "fulcrum_upstream_connect_failures_total",
  "fulcrum_upstream_resets_total",
  "fulcrum_grpc_streams_total",
  "fulcrum_stream_duration_seconds",
  "fulcrum_bytes_total",
  "fulcrum_pick_duration_seconds",
  "fulcrum_endpoint_healthy",
  "fulcrum_health_transitions_total",
  "fulcrum_outlier_ejections_total",
  "fulcrum_config_reloads_total",
  "fulcrum_route_decisions_total",
] as const;
