/**
 * The `policies` scenario's second part, "outside load": where `least_loaded`'s extra information
 * matters. Four equal Triton-shaped workers (4 slots, 20 ms: slow enough that the slots, not this
 * machine's CPU, are what saturates), each on its own loopback host with
 * Triton's queue gauge on one shared metrics port, as a fleet with one Triton per host. Other clients
 * (another replica, a batch job) send `OUTSIDE_SHARE` of gpu-0's capacity straight to gpu-0: this
 * proxy's in-flight counts cannot see that load; `least_loaded` sees it through `load_metrics` (the
 * queue gauge) and through its latency estimates. Through the proxy, open loop at `PROXIED_LOADS` of the
 * capacity the outside load leaves. Fulcrum `least_connections` and `least_loaded` (with
 * `load_metrics`) and HAProxy `leastconn`, interleaved; latency and shares are the proxied calls' only.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { runLoad } from "../loadgen/loadgen-run.js";
import { summarise } from "../loadgen/loadgen-windows.js";
import { startTarget } from "../targets/target-start.js";
import type { ListenerSpec, Policy, RunningTarget, TargetName } from "../targets/target.js";
import { counterDelta, startWorkerPool, type WorkerPool } from "../worker/worker-pool.js";
import {
  DEADLINE_MS,
  SLOTS,
  measureCapacity,
  pointName,
  type PolicyPoint,
} from "./scenario-policies-fleet.js";

export const OUTSIDE_WORKERS = ["gpu-0-shared", "gpu-1", "gpu-2", "gpu-3"] as const;
export const OUTSIDE_SERVICE_MS = 20;
/** The outside clients' rate, as a fraction of gpu-0's measured capacity. */
export const OUTSIDE_SHARE = 0.6;
/** Proxied load, as fractions of the capacity the outside load leaves. */
export const PROXIED_LOADS = [0.8, 0.9] as const;
/** How often Fulcrum scrapes the queue gauges. */
const SCRAPE_MS = 500;
const INFER_PATH = "/inference.GRPCInferenceService/ModelInfer";
/** A ModelInferRequest for model `simple` (field 1) with 100 bytes of raw input (field 7). */
const INFER_MESSAGE = Buffer.concat([
  Buffer.from([0x0a, 6]),
  Buffer.from("simple"),
  Buffer.from([0x3a, 100]),
  Buffer.alloc(100, "x"),
]);

const POLICIES: Partial<Record<TargetName, readonly Policy[]>> = {
  fulcrum: ["least_connections", "least_loaded"],
  haproxy: ["least_connections"],
};

export interface OutsideOptions {
  readonly targets: readonly TargetName[];
  readonly repeat: number;
  readonly seconds: number;
  readonly quick: boolean;
  readonly dir: string;
  readonly policies?: readonly string[] | undefined;
  readonly say: (line: string) => void;
}

export interface OutsideResult {
  readonly workers: typeof OUTSIDE_WORKERS;
  /** Σ of every worker's measured capacity. */
  readonly capacity: number;
  /** The outside clients' rate to gpu-0 (calls/s) and what they got back. */
  readonly outsideRate: number;
  readonly seconds: number;
  readonly points: PolicyPoint[];
  readonly problems: string[];
}

export async function runOutside(o: OutsideOptions): Promise<OutsideResult> {
  const pool = await startWorkerPool(
    OUTSIDE_WORKERS.map((name, i) => ({
      name,
      kind: "triton" as const,
      host: `127.0.0.${21 + i}`,
      metrics: true,
      baseLatencyMs: OUTSIDE_SERVICE_MS,
      slots: SLOTS,
    })),
  );
  const targets: RunningTarget[] = [];
  const running: { target: RunningTarget; policy: Policy }[] = [];
  const points: PolicyPoint[] = [];
  const problems: string[] = [];
  try {
    for (const t of o.targets) {
      const policies = (POLICIES[t] ?? []).filter(
        (p) => o.policies === undefined || o.policies.some((f) => pointName(t, p).includes(f)),
      );
      if (policies.length === 0) continue;
      const listeners: ListenerSpec[] = policies.map((p) => ({
        name: p,
        protocol: "grpc",
        upstreams: pool.workers.map((w) => w.address),
        policy: p,
        loadMetrics: { port: pool.metricsPort, intervalMs: SCRAPE_MS },
      }));
      const dir = join(o.dir, `outside-${t}`);
      mkdirSync(dir, { recursive: true });
      const target = await startTarget(t, listeners, { dir });
      targets.push(target);
      for (const p of policies) running.push({ target, policy: p });
    }
    const perWorker = await measureCapacity(pool, o.quick ? 2 : 12, INFER_PATH, INFER_MESSAGE);
    const capacity = perWorker.reduce((a, b) => a + b, 0);
    const outsideRate = OUTSIDE_SHARE * (perWorker[0] ?? 0);
    o.say(
      `outside: capacity ${capacity.toFixed(0)} calls/s, outside clients ${outsideRate.toFixed(0)} calls/s to gpu-0`,
    );
    for (let rep = 0; rep < o.repeat; rep++) {
      for (const load of PROXIED_LOADS) {
        for (const r of running) {
          const rate = load * (capacity - outsideRate);
          const point = await measure(r, pool, rate, load, rep, outsideRate, o);
          points.push(point);
          if (point.throughput <= 0) problems.push(`${point.policy} at ${point.load}: no throughput`);
          if (o.quick && point.errors > 0)
            problems.push(`${point.policy} at ${point.load}: ${point.errors} errors`);
          o.say(
            `policies ${point.load.padEnd(16)} ${point.policy.padEnd(26)} ${point.throughput.toFixed(0)} calls/s, ` +
              `p50 ${point.latency.p50Ms.toFixed(1)} ms, p99 ${point.latency.p99Ms.toFixed(1)} ms, errors ${point.errors}, ` +
              `shares ${point.shares.map((s) => (s * 100).toFixed(0)).join("/")} %`,
          );
        }
      }
    }
    return { workers: OUTSIDE_WORKERS, capacity, outsideRate, seconds: o.seconds, points, problems };
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
    await pool.stop();
  }
}

/**
 * One point: the outside clients start a second early and stop a second late, so the proxied load
 * runs wholly beside them; the proxied calls' shares are the workers' OK answers minus the outside
 * clients' (all on gpu-0).
 */
async function measure(
  r: { target: RunningTarget; policy: Policy },
  pool: WorkerPool,
  rate: number,
  load: number,
  rep: number,
  outsideRate: number,
  o: OutsideOptions,
): Promise<PolicyPoint> {
  const before = await pool.counters();
  const outside = runLoad({
    address: pool.workers[0]?.address ?? "",
    path: INFER_PATH,
    streaming: false,
    payloadBytes: 0,
    message: INFER_MESSAGE,
    metadata: {},
    deadlineMs: DEADLINE_MS,
    connections: 4,
    concurrency: 1,
    rate: outsideRate,
    durationMs: (o.seconds + 2) * 1000,
  });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const run = await runLoad({
    address: `127.0.0.1:${r.target.port(r.policy)}`,
    path: INFER_PATH,
    streaming: false,
    payloadBytes: 0,
    message: INFER_MESSAGE,
    metadata: {},
    deadlineMs: DEADLINE_MS,
    connections: 8,
    concurrency: 1,
    rate,
    durationMs: o.seconds * 1000,
  });
  const outsideOk = summarise(await outside, false).ok;
  const result = summarise(run, false);
  const d = counterDelta(before, await pool.counters());
  const proxied = d.perWorker.map((w, i) => (i === 0 ? Math.max(0, w.ok - outsideOk) : w.ok));
  const answered = proxied.reduce((n, ok) => n + ok, 0);
  return {
    policy: pointName(r.target.name, r.policy),
    load: `outside ${Math.round(load * 100)} %`,
    rep,
    offered: rate,
    throughput: result.throughput,
    latency: result.latency,
    errors: result.errors,
    shares: proxied.map((ok) => (answered > 0 ? ok / answered : 0)),
  };
}
