/**
 * Scenario `overload`: goodput of a GPU fleet offered more than it can serve. The `policies` fleet
 * (four simulated workers of 4 slots, one 3× slower) at a 20 ms service time, workers that serve a call
 * whose client has gone anyway (as Triton does; counted as wasted work). Capacity is measured first
 * (each worker saturated directly). Open loop at 0.8×, 1.5× and 2× of it with a 1 s deadline, in two
 * priority classes (20 % of calls `x-priority: 0`, 80 % `x-priority: 10`) and two tenants
 * (`x-tenant: a|b`), through: HAProxy `leastconn` without caps, HAProxy `leastconn` with `maxconn 4`
 * per server and `timeout queue 1s` (priority class from the header), Fulcrum `least_loaded` without
 * caps, and Fulcrum with `max_active_per_endpoint: 4` and a 1 s queue (priority and fairness headers).
 * Goodput is the calls answered OK (within their deadline) per second, as a fraction of capacity.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { TOOLS, ensureTools } from "../proc/proc-debian.js";
import { LatencyHistogram, type LatencySummary } from "../loadgen/loadgen-histogram.js";
import { runLoad, type LoadRun } from "../loadgen/loadgen-run.js";
import { startTarget } from "../targets/target-start.js";
import type { ListenerCaps, ListenerSpec, Policy, RunningTarget, TargetName } from "../targets/target.js";
import { startWorkerPool, type WorkerPool } from "../worker/worker-pool.js";
import { POLICY_WORKERS, SLOTS, measureCapacity } from "./scenario-policies-fleet.js";

export const OVERLOAD_SERVICE_MS = 20;
export const OVERLOAD_LOADS = [0.8, 1.5, 2] as const;
export const OVERLOAD_DEADLINE_MS = 1000;
/** The two priority classes and their shares of the offered calls. */
export const CLASSES = [
  { priority: 0, share: 0.2 },
  { priority: 10, share: 0.8 },
] as const;
export const TENANTS = ["a", "b"] as const;

const CAPS: ListenerCaps = {
  perEndpoint: SLOTS,
  queueSize: 100_000,
  queueTimeoutMs: 1000,
  priorityHeader: "x-priority",
  fairnessHeader: "x-tenant",
};

/** One way through, named as the report shows it. */
interface Variant {
  readonly name: string;
  readonly target: TargetName;
  readonly policy: Policy;
  readonly caps?: ListenerCaps | undefined;
}

const VARIANTS: readonly Variant[] = [
  { name: "haproxy leastconn", target: "haproxy", policy: "least_connections" },
  { name: "haproxy leastconn maxconn 4 + queue", target: "haproxy", policy: "least_connections", caps: CAPS },
  { name: "fulcrum least_loaded", target: "fulcrum", policy: "least_loaded" },
  { name: "fulcrum caps + queue", target: "fulcrum", policy: "least_connections", caps: CAPS },
];

export interface OverloadOptions {
  readonly targets: readonly TargetName[];
  readonly repeat: number;
  readonly seconds: number;
  readonly quick: boolean;
  readonly dir: string;
  /** Only the variants whose name contains one of these. */
  readonly variants?: readonly string[] | undefined;
  readonly say: (line: string) => void;
}

export interface ClassResult {
  readonly priority: number;
  readonly offered: number;
  readonly ok: number;
  /** OK calls only. */
  readonly latency: LatencySummary;
  /** Calls by final gRPC status (-1: the stream failed below gRPC). */
  readonly statuses: Record<string, number>;
}

export interface OverloadPoint {
  readonly variant: string;
  /** Fraction of the measured capacity offered. */
  readonly load: number;
  readonly rep: number;
  readonly offered: number;
  /** OK calls per second over the capacity. */
  readonly goodput: number;
  readonly okPerSecond: number;
  readonly classes: readonly ClassResult[];
  /** Calls the workers served for clients that had gone, and as a share of the calls offered. */
  readonly wasted: number;
  readonly wastedShare: number;
}

export interface OverloadResult {
  readonly capacity: number;
  readonly nominalCapacity: number;
  readonly seconds: number;
  readonly points: OverloadPoint[];
  readonly problems: string[];
}

export const NOMINAL_CAPACITY = POLICY_WORKERS.reduce(
  (n, w) => n + (SLOTS * 1000) / (OVERLOAD_SERVICE_MS * w.speed),
  0,
);

export async function runOverload(o: OverloadOptions): Promise<OverloadResult> {
  const variants = VARIANTS.filter(
    (v) => o.targets.includes(v.target) && (!o.variants || o.variants.some((f) => v.name.includes(f))),
  );
  if (variants.length === 0) throw new Error("overload: --targets/--policies left no variant");
  if (variants.some((v) => v.target === "haproxy")) ensureTools([TOOLS.haproxy]);
  const pool = await startWorkerPool(
    POLICY_WORKERS.map((w) => ({
      name: w.name,
      baseLatencyMs: OVERLOAD_SERVICE_MS,
      slots: SLOTS,
      speed: w.speed,
      finishCancelled: true,
    })),
  );
  const running: { variant: Variant; target: RunningTarget; listener: string }[] = [];
  const points: OverloadPoint[] = [];
  const problems: string[] = [];
  let capacity = NOMINAL_CAPACITY;
  try {
    for (const target of [...new Set(variants.map((v) => v.target))]) {
      const mine = variants.filter((v) => v.target === target);
      const listeners: ListenerSpec[] = mine.map((v, i) => ({
        name: `v${i}`,
        protocol: "grpc",
        upstreams: pool.workers.map((w) => w.address),
        policy: v.policy,
        caps: v.caps,
      }));
      const dir = join(o.dir, `overload-${target}`);
      mkdirSync(dir, { recursive: true });
      const t = await startTarget(target, listeners, { dir });
      mine.forEach((v, i) => running.push({ variant: v, target: t, listener: `v${i}` }));
    }
    capacity = (await measureCapacity(pool, o.quick ? 2 : 10)).reduce((a, b) => a + b, 0);
    o.say(
      `overload: capacity measured ${capacity.toFixed(0)} calls/s (nominal ${NOMINAL_CAPACITY.toFixed(0)})`,
    );
    // Unmeasured: 2 s at half capacity through every variant, so Fulcrum's JIT is warm like HAProxy.
    if (!o.quick) for (const r of running) await measure(r, 0.5, -1, pool, capacity, 2);
    for (let rep = 0; rep < o.repeat; rep++) {
      for (const load of OVERLOAD_LOADS) {
        for (const r of running) {
          const p = await measure(r, load, rep, pool, capacity, o.seconds);
          points.push(p);
          if (p.okPerSecond <= 0) problems.push(`${p.variant} at ${load}×: no call answered OK`);
          const byClass = p.classes
            .map((c) => `p${c.priority} ${c.ok} OK, p99 ${c.latency.p99Ms.toFixed(0)} ms`)
            .join("; ");
          o.say(
            `overload ${`${load}×`.padEnd(5)} ${p.variant.padEnd(36)} goodput ${(p.goodput * 100).toFixed(0)} % ` +
              `(${p.okPerSecond.toFixed(0)} OK/s), ${byClass}, wasted ${p.wasted}`,
          );
        }
      }
    }
  } finally {
    await Promise.all([...new Set(running.map((r) => r.target))].map((t) => t.stop()));
    await pool.stop();
  }
  return { capacity, nominalCapacity: NOMINAL_CAPACITY, seconds: o.seconds, points, problems };
}

/** One point: four open-loop runs at once (two classes × two tenants), their rates summing to `load`. */
async function measure(
  r: { variant: Variant; target: RunningTarget; listener: string },
  load: number,
  rep: number,
  pool: WorkerPool,
  capacity: number,
  seconds: number,
): Promise<OverloadPoint> {
  const before = await pool.counters();
  const offered = load * capacity;
  const address = `127.0.0.1:${r.target.port(r.listener)}`;
  const lanes = CLASSES.flatMap((c) => TENANTS.map((tenant) => ({ c, tenant })));
  const runs: LoadRun[] = await Promise.all(
    lanes.map(({ c, tenant }) =>
      runLoad({
        address,
        path: "/fulcrum.sim.Worker/Infer",
        streaming: false,
        payloadBytes: 100,
        metadata: { "x-priority": String(c.priority), "x-tenant": tenant },
        deadlineMs: OVERLOAD_DEADLINE_MS,
        connections: 2,
        concurrency: 1,
        rate: (offered * c.share) / TENANTS.length,
        durationMs: seconds * 1000,
      }),
    ),
  );
  // The workers finish what the clients gave up on (a variant without caps leaves thousands of
  // calls in their queues): count the waste once they are idle, so the next point starts clean.
  const after = await idle(pool, 120_000);
  const wasted = after.reduce((n, w, i) => n + w.wasted - (before[i]?.wasted ?? 0), 0);
  const classes = CLASSES.map((c) => {
    const mine = runs.filter((_, i) => lanes[i]?.c === c);
    const histogram = new LatencyHistogram();
    const statuses: Record<string, number> = {};
    let ok = 0;
    let requests = 0;
    for (const run of mine)
      for (const w of run.windows) {
        histogram.add(w.okHistogram);
        ok += w.ok;
        requests += w.requests;
        for (const [k, v] of Object.entries(w.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
      }
    return { priority: c.priority, offered: requests, ok, latency: histogram.summary(), statuses };
  });
  const ok = classes.reduce((n, c) => n + c.ok, 0);
  const sent = classes.reduce((n, c) => n + c.offered, 0);
  const okPerSecond = ok / seconds;
  return {
    variant: r.variant.name,
    load,
    rep,
    offered,
    goodput: okPerSecond / capacity,
    okPerSecond,
    classes,
    wasted,
    wastedShare: sent > 0 ? wasted / sent : 0,
  };
}

/** The workers' counters once none of them has a call in service or waiting (at most `limitMs`). */
async function idle(pool: WorkerPool, limitMs: number): Promise<Awaited<ReturnType<WorkerPool["counters"]>>> {
  const until = performance.now() + limitMs;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const counters = await pool.counters();
    if (counters.every((c) => c.busy === 0) || performance.now() > until) return counters;
  }
}
