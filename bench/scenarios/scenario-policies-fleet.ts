/**
 * What the `policies` scenario and its outside-load part (scenario-outside.ts) share: the simulated
 * fleet (four workers, 4 slots each, 10 ms service time, one 3× slower), the deadline, a point's
 * result, the direct capacity measurement, and the names of the policies in the report.
 */
import type { LatencySummary } from "../loadgen/loadgen-histogram.js";
import { runLoad } from "../loadgen/loadgen-run.js";
import { stableWhen, summarise } from "../loadgen/loadgen-windows.js";
import type { Policy, TargetName } from "../targets/target.js";
import type { WorkerPool } from "../worker/worker-pool.js";

export const POLICY_WORKERS = [
  { name: "gpu-0", speed: 1 },
  { name: "gpu-1", speed: 1 },
  { name: "gpu-2", speed: 1 },
  { name: "gpu-3-slow", speed: 3 },
] as const;
export const SLOTS = 4;
export const SERVICE_MS = 10;
export const CAPACITY = POLICY_WORKERS.reduce((n, w) => n + (SLOTS * 1000) / (SERVICE_MS * w.speed), 0);
export const LOADS = [0.5, 0.8, 0.95] as const;
/** A call not answered within this is DEADLINE_EXCEEDED and counted (at this latency) as an error. */
export const DEADLINE_MS = 2000;

const HAPROXY_NAMES: Partial<Record<Policy, string>> = {
  round_robin: "roundrobin",
  least_connections: "leastconn",
};

export interface PolicyPoint {
  /** e.g. `fulcrum round_robin`, `haproxy leastconn`. */
  readonly policy: string;
  /** `50 %`, `80 %`, `95 %` of capacity, `closed 32`, or `outside 80 %` (scenario-outside.ts). */
  readonly load: string;
  readonly rep: number;
  readonly offered: number | undefined;
  readonly throughput: number;
  readonly latency: LatencySummary;
  readonly errors: number;
  /** Share of the calls each worker answered OK, in the order of the scenario's workers. */
  readonly shares: readonly number[];
}

/**
 * Every worker saturated directly at once (twice its slots in flight): each one's OK answers per
 * second, in 1 s windows until the last three agree within 10 % (at most `seconds`), so the
 * first cold second does not count.
 */
export async function measureCapacity(
  pool: WorkerPool,
  seconds: number,
  path = "/fulcrum.sim.Worker/Infer",
  message?: Buffer,
): Promise<number[]> {
  return Promise.all(
    pool.workers.map(async (w) => {
      const run = await runLoad({
        address: w.address,
        path,
        streaming: false,
        payloadBytes: 100,
        message,
        metadata: {},
        deadlineMs: DEADLINE_MS,
        connections: 1,
        concurrency: 2 * SLOTS,
        durationMs: seconds * 1000,
        windowMs: Math.min(1000, (seconds * 1000) / 4),
        isStable: stableWhen({ windows: 3, tolerance: 0.1 }),
      });
      return summarise(run, true).throughput;
    }),
  );
}

export function pointName(target: TargetName, policy: Policy): string {
  return target === "haproxy" ? `haproxy ${HAPROXY_NAMES[policy] ?? policy}` : `fulcrum ${policy}`;
}
