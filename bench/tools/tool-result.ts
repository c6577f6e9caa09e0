/**
 * What one run of a C load generator reports, in one shape for every tool: work done, how long it
 * took, latency percentiles when the tool gives them, and errors of any kind.
 */
export interface ToolResult {
  /** Requests (wrk, h2load) or messages (h2load streaming) completed; 0 for iperf3. */
  readonly requests: number;
  /** Payload bytes moved (iperf3), else 0. */
  readonly bytes: number;
  readonly seconds: number;
  readonly p50Ms?: number | undefined;
  readonly p99Ms?: number | undefined;
  /** Failed, errored, timed out or non-2xx requests; socket errors. Must be 0 in a clean run. */
  readonly errors: number;
}
