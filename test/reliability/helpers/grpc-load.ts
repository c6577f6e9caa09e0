/**
 * Closed-loop unary gRPC load through grpc-js clients for the reliability tests: `concurrency` calls in
 * flight over `clients` channels (one HTTP/2 connection each), every call with its own deadline, every
 * outcome recorded with when it started and ended and which worker answered. Bounded: it stops by
 * itself after `maxMs`, and `stop()` waits for the calls in flight.
 */
import * as grpc from "@grpc/grpc-js";
import { echoClient, startUnary } from "../../helpers/grpc-client.js";
import { ECHO } from "../../helpers/grpc-test-worker.js";

export interface CallRecord {
  /** Date.now() when the call was started and when its outcome arrived. */
  readonly start: number;
  readonly end: number;
  /** 0 for OK, else the gRPC status code. */
  readonly code: number;
  /** The worker that answered (OK calls only). */
  readonly worker: string | undefined;
  readonly details: string;
}

export interface GrpcLoadOptions {
  readonly clients?: number;
  readonly concurrency?: number;
  readonly deadlineMs?: number;
  /** Stop by itself after this long. Default 60 s. */
  readonly maxMs?: number;
  /** Pause after a failed call, so a fast failure does not spin. Default 10 ms. */
  readonly pauseAfterFailureMs?: number;
  /** Pause after every call (paced load rather than as fast as answers come). Default 0. */
  readonly pauseMs?: number;
}

export class GrpcLoad {
  readonly records: CallRecord[] = [];
  private stopping = false;
  private readonly loops: Promise<void>[] = [];
  private readonly clients: grpc.Client[];
  private readonly timer: NodeJS.Timeout;

  constructor(
    target: { host: string; port: number },
    private readonly options: GrpcLoadOptions = {},
  ) {
    this.clients = Array.from({ length: options.clients ?? 2 }, () => echoClient(target));
    for (let i = 0; i < (options.concurrency ?? 8); i++)
      this.loops.push(this.loop(this.clients[i % this.clients.length] as grpc.Client));
    this.timer = setTimeout(() => (this.stopping = true), options.maxMs ?? 60_000);
  }

  private async loop(client: grpc.Client): Promise<void> {
    while (!this.stopping) {
      const start = Date.now();
      const o = await startUnary(client, ECHO.unary, undefined, {
        deadlineMs: this.options.deadlineMs ?? 2000,
      }).outcome;
      this.records.push({
        start,
        end: Date.now(),
        code: o.ok ? 0 : o.code,
        worker: o.ok ? o.value.toString("utf8") : undefined,
        details: o.ok ? "" : o.details,
      });
      const pause = o.ok ? (this.options.pauseMs ?? 0) : (this.options.pauseAfterFailureMs ?? 10);
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
    }
  }

  /** Stops starting calls, waits for those in flight, closes the clients; resolves with the records. */
  async stop(): Promise<CallRecord[]> {
    this.stopping = true;
    clearTimeout(this.timer);
    await Promise.all(this.loops);
    for (const c of this.clients) c.close();
    return this.records;
  }
}

/** Counts per `worker` (OK calls) and per status name (failures). */
export function summarize(records: readonly CallRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) {
    const key = r.code === 0 ? (r.worker ?? "?") : `!${grpc.status[r.code] ?? r.code}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}
