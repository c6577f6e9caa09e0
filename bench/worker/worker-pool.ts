/**
 * Parent side of worker-main.ts: starts the simulated workers in one child process and reads their
 * counters over IPC, so a scenario can check that every answer a load generator counted was gRPC OK
 * at a worker, and see each worker's share of the calls.
 */
import { fileURLToPath } from "node:url";
import { startChild } from "../proc/proc-children.js";
import type { WorkerCounters, WorkerSpec } from "./worker-main.js";

const MAIN = fileURLToPath(new URL("./worker-main.js", import.meta.url));

export interface WorkerPool {
  readonly pid: number;
  readonly workers: readonly { name: string; address: string }[];
  /** The port of every metrics-serving worker's queue gauge (0: none). */
  readonly metricsPort: number;
  counters(): Promise<WorkerCounters[]>;
  stop(): Promise<void>;
}

export async function startWorkerPool(specs: readonly WorkerSpec[]): Promise<WorkerPool> {
  const child = startChild("workers", process.execPath, [MAIN, JSON.stringify(specs)], {
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  const { workers, metricsPort } = await child.line((l) =>
    l.startsWith("{")
      ? (JSON.parse(l) as { workers: { name: string; address: string }[]; metricsPort: number })
      : undefined,
  );
  return {
    pid: child.pid,
    workers,
    metricsPort,
    counters: () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("workers: no counters within 10 s")), 10_000);
        child.process.once("message", (m) => {
          clearTimeout(timer);
          resolve(m as WorkerCounters[]);
        });
        child.process.send("counters");
      }),
    stop: () => child.stop(),
  };
}

/** Sums of counters taken after minus before, over all workers. */
export function counterDelta(
  before: readonly WorkerCounters[],
  after: readonly WorkerCounters[],
): {
  ok: number;
  cancelled: number;
  failed: number;
  messages: number;
  perWorker: { name: string; ok: number }[];
} {
  const perWorker = after.map((a, i) => ({ name: a.name, ok: a.ok - (before[i]?.ok ?? 0) }));
  const sum = (k: "ok" | "cancelled" | "failed" | "messages"): number =>
    after.reduce((n, a, i) => n + a[k] - (before[i]?.[k] ?? 0), 0);
  return {
    ok: sum("ok"),
    cancelled: sum("cancelled"),
    failed: sum("failed"),
    messages: sum("messages"),
    perWorker,
  };
}
