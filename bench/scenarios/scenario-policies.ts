/**
 * Scenario `policies`: which policy gives the best latency over unequal GPU workers. Four simulated
 * workers with 4 slots each and a 10 ms service time, one 3× slower (capacity = Σ slots ÷ service
 * time = 3 × 400 + 133 = 1,333 calls/s, low enough that no proxy is the bottleneck). Timers fire a
 * little late, so the capacity the loads are based on is measured first: each worker saturated
 * directly (closed loop, twice its slots in flight) in windows until stable, the answers per second summed.
 * Open-loop load from one client address at 50 %, 80 % and 95 % of it through each of Fulcrum's policies and
 * HAProxy's `roundrobin` and `leastconn`, then the closed-loop form (one connection, 32 calls in flight).
 * Interleaved: each load level runs every policy before the next level. Then the outside-load part
 * (scenario-outside.ts): equal workers, one of them also loaded by clients that bypass the proxy.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { TOOLS, ensureTools } from "../proc/proc-debian.js";
import { runLoad } from "../loadgen/loadgen-run.js";
import { summarise } from "../loadgen/loadgen-windows.js";
import { startTarget } from "../targets/target-start.js";
import type { ListenerSpec, Policy, RunningTarget, TargetName } from "../targets/target.js";
import { counterDelta, startWorkerPool, type WorkerPool } from "../worker/worker-pool.js";
import { runOutside, type OutsideResult } from "./scenario-outside.js";
import {
  CAPACITY,
  DEADLINE_MS,
  LOADS,
  POLICY_WORKERS,
  SERVICE_MS,
  SLOTS,
  measureCapacity,
  pointName,
  type PolicyPoint,
} from "./scenario-policies-fleet.js";

const POLICIES: Record<string, readonly Policy[]> = {
  fulcrum: ["round_robin", "least_connections", "p2c", "random", "least_loaded"],
  haproxy: ["round_robin", "least_connections"],
};

export interface PoliciesOptions {
  readonly targets: readonly TargetName[];
  readonly repeat: number;
  readonly seconds: number;
  readonly quick: boolean;
  readonly dir: string;
  readonly cpuProfDir?: string | undefined;
  /** Only the load forms whose label (`50 %`, `95 %`, `closed 32`) contains one of these. */
  readonly loads?: readonly string[] | undefined;
  /** Only the policies whose name (`fulcrum least_loaded`, `haproxy leastconn`) contains one of these. */
  readonly policies?: readonly string[] | undefined;
  readonly say: (line: string) => void;
}

export interface PoliciesResult {
  /** Σ slots ÷ service time. */
  readonly nominalCapacity: number;
  /** Measured before the run; the loads are fractions of it. */
  readonly capacity: number;
  readonly workers: typeof POLICY_WORKERS;
  readonly seconds: number;
  readonly points: PolicyPoint[];
  readonly problems: string[];
  /** The outside-load part, unless `--rows` left it out. */
  readonly outside?: OutsideResult | undefined;
}

export async function runPolicies(o: PoliciesOptions): Promise<PoliciesResult> {
  const targets = o.targets.filter((t) => POLICIES[t]);
  if (targets.length === 0) throw new Error("policies: --targets must include fulcrum or haproxy");
  if (targets.includes("haproxy")) ensureTools([TOOLS.haproxy]);
  const forms = [...LOADS, undefined].filter((load) => matches(o.loads, loadLabel(load)));
  const main =
    forms.length > 0
      ? await runUnequal(o, targets, forms)
      : { capacity: CAPACITY, points: [], problems: [] as string[] };
  const outside = matches(o.loads, "outside")
    ? await runOutside({ ...o, targets, policies: o.policies })
    : undefined;
  return {
    nominalCapacity: CAPACITY,
    workers: POLICY_WORKERS,
    seconds: o.seconds,
    ...main,
    problems: [...main.problems, ...(outside?.problems ?? [])],
    outside,
  };
}

/** The unequal workers at every load form of `forms` (a fraction of capacity, or closed loop). */
async function runUnequal(
  o: PoliciesOptions,
  targets: readonly TargetName[],
  forms: readonly (number | undefined)[],
): Promise<{ capacity: number; points: PolicyPoint[]; problems: string[] }> {
  const pool = await startWorkerPool(
    POLICY_WORKERS.map((w) => ({ name: w.name, baseLatencyMs: SERVICE_MS, slots: SLOTS, speed: w.speed })),
  );
  const running: { target: RunningTarget; policy: Policy }[] = [];
  const points: PolicyPoint[] = [];
  const problems: string[] = [];
  let capacity = CAPACITY;
  try {
    for (const t of targets) {
      const policies = (POLICIES[t] ?? []).filter((p) => matches(o.policies, pointName(t, p)));
      if (policies.length === 0) continue;
      const listeners: ListenerSpec[] = policies.map((p) => ({
        name: p,
        protocol: "grpc",
        upstreams: pool.workers.map((w) => w.address),
        policy: p,
      }));
      const dir = join(o.dir, `policies-${t}`);
      mkdirSync(dir, { recursive: true });
      const target = await startTarget(t, listeners, { dir, cpuProfDir: o.cpuProfDir });
      for (const p of policies) running.push({ target, policy: p });
    }
    capacity = (await measureCapacity(pool, o.quick ? 2 : 12)).reduce((a, b) => a + b, 0);
    o.say(`policies: capacity measured ${capacity.toFixed(0)} calls/s (nominal ${CAPACITY.toFixed(0)})`);
    const at = { ...o, capacity };
    // Unmeasured: 2 s at 50 % through every policy, so Fulcrum's JIT is warm like HAProxy.
    if (!o.quick)
      for (const r of running) await measure(r.target, r.policy, 0.5, -1, pool, { ...at, seconds: 2 });
    for (let rep = 0; rep < o.repeat; rep++) {
      for (const load of forms) {
        for (const r of running) {
          const point = await measure(r.target, r.policy, load, rep, pool, at);
          points.push(point);
          if (point.throughput <= 0) problems.push(`${point.policy} at ${point.load}: no throughput`);
          if (o.quick && point.errors > 0)
            problems.push(`${point.policy} at ${point.load}: ${point.errors} errors`);
          o.say(
            `policies ${point.load.padEnd(9)} ${point.policy.padEnd(28)} ${point.throughput.toFixed(0)} calls/s, ` +
              `p50 ${point.latency.p50Ms.toFixed(1)} ms, p99 ${point.latency.p99Ms.toFixed(1)} ms, errors ${point.errors}, ` +
              `shares ${point.shares.map((s) => (s * 100).toFixed(0)).join("/")} %`,
          );
        }
      }
    }
  } finally {
    await Promise.all([...new Set(running.map((r) => r.target))].map((t) => t.stop()));
    await pool.stop();
  }
  return { capacity, points, problems };
}

function loadLabel(load: number | undefined): string {
  return load === undefined ? "closed 32" : `${Math.round(load * 100)} %`;
}

/** No filter, or `name` contains one of its entries. */
function matches(filter: readonly string[] | undefined, name: string): boolean {
  return filter === undefined || filter.some((f) => name.includes(f));
}

async function measure(
  target: RunningTarget,
  policy: Policy,
  load: number | undefined,
  rep: number,
  pool: WorkerPool,
  o: PoliciesOptions & { readonly capacity: number },
): Promise<PolicyPoint> {
  const before = await pool.counters();
  const closed = load === undefined;
  const run = await runLoad({
    address: `127.0.0.1:${target.port(policy)}`,
    path: "/fulcrum.sim.Worker/Infer",
    streaming: false,
    payloadBytes: 100,
    metadata: {},
    deadlineMs: DEADLINE_MS,
    connections: closed ? 1 : 8,
    concurrency: closed ? 32 : 1,
    rate: closed ? undefined : load * o.capacity,
    durationMs: (closed ? Math.max(1, o.seconds / 2) : o.seconds) * 1000,
  });
  const result = summarise(run, false);
  const d = counterDelta(before, await pool.counters());
  const answered = d.perWorker.reduce((n, w) => n + w.ok, 0);
  return {
    policy: pointName(target.name, policy),
    load: loadLabel(load),
    rep,
    offered: closed ? undefined : load * o.capacity,
    throughput: result.throughput,
    latency: result.latency,
    errors: result.errors,
    shares: d.perWorker.map((w) => (answered > 0 ? w.ok / answered : 0)),
  };
}
