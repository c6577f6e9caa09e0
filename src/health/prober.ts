/**
 * A prober runs one health check against one endpoint and reports success or failure within its
 * timeout. It never throws: every failure is a result with a short reason for the debug log.
 */
import type { ProbeResult } from "./health-thresholds.js";

export interface ProbeOutcome {
  readonly result: ProbeResult;
  /** Why it failed (e.g. "ECONNREFUSED", "timeout", "NOT_SERVING"); absent on success. */
  readonly reason?: string | undefined;
}

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
}

export interface Prober {
  probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome>;
  /** Releases pooled resources (gRPC channels). */
  close(): void;
}
