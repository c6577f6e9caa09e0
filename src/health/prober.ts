/**
 * A prober runs one health check against one endpoint and reports success or failure within its
 * timeout. It never throws: every failure is a result with a short reason for the debug log.
 */
import type { ModelRef } from "./model-readiness.js";
import type { ProbeResult } from "./health-thresholds.js";

export interface ProbeOutcome {
  readonly result: ProbeResult;
  /** Why it failed (e.g. "ECONNREFUSED", "timeout", "NOT_SERVING"); absent on success. */
  readonly reason?: string | undefined;
  /**
   * Per-model readiness, from probers that can ask about models (triton: `ModelReady` for each of
   * `clusters[].models`). Absent when the prober cannot tell, or when the whole server failed and the
   * models were not asked about; the models' state then stays as it was.
   */
  readonly models?: readonly ModelProbeOutcome[] | undefined;
}

/** One model's probe result on the probed endpoint. */
export interface ModelProbeOutcome {
  readonly model: ModelRef;
  readonly result: ProbeResult;
  /** Why it failed ("not ready", "DEADLINE_EXCEEDED", …); absent on success. */
  readonly reason?: string | undefined;
}

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
}

export interface Prober {
  probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome>;
  /**
   * Probers that can also stream results (grpc.health.v1 `Watch`): opens one stream to `target`;
   * every update it brings is one result, and it ends exactly once (`listener.ended`) unless closed.
   */
  watch?(target: ProbeTarget, listener: WatchListener): WatchStream;
  /** Releases pooled resources (gRPC channels). */
  close(): void;
}

/** What an open watch reports: each update one result; then, once, how the stream ended. */
export interface WatchListener {
  result(outcome: ProbeOutcome): void;
  /** The stream failed or ended; `unimplemented`: the worker has no `Watch` (poll `Check` instead). */
  ended(end: { readonly reason: string; readonly unimplemented: boolean }): void;
}

export interface WatchStream {
  /** Ends the stream; `ended` is not called afterwards. */
  close(): void;
}
