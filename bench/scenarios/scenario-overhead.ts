/**
 * Scenario `overhead`: what the proxy costs. Direct vs Fulcrum vs HAProxy vs NGINX, every row measured
 * through every target in one invocation, repetitions interleaved (row by row, target by target, each
 * repetition starting one target later) so that the noise of a shared machine hits all targets
 * alike. Each measurement records throughput, p50/p99 and the proxy's CPU (its whole process tree,
 * from /proc) per unit of work; gRPC rows are checked against the worker's counters (every answer
 * h2load counted was gRPC OK at the worker).
 *
 * With `launches` above 1 the whole run is done that many times, every target started afresh each
 * time and in a turning order: a Node process settles into a JIT state of its own, and on this kind
 * of machine two launches of one build differ by more than two builds may (bench/RESULTS.md), so a
 * comparison of builds takes the launch as its unit.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { TOOLS, ensureTools, type Tool } from "../proc/proc-debian.js";
import { startTarget } from "../targets/target-start.js";
import type { ListenerSpec, RunningTarget, TargetName } from "../targets/target.js";
import { startHttpBackend } from "../targets/target-nginx.js";
import { startIperf3Server } from "../tools/tool-iperf3.js";
import { counterDelta, startWorkerPool } from "../worker/worker-pool.js";
import { OVERHEAD_ROWS, type OverheadRow } from "./overhead-rows.js";

export interface OverheadOptions {
  readonly targets: readonly TargetName[];
  /** Row ids to run (default: all). */
  readonly rows?: readonly string[] | undefined;
  readonly repeat: number;
  readonly seconds: number;
  readonly dir: string;
  readonly cpuProfDir?: string | undefined;
  readonly threads?: number | undefined;
  readonly nodeFlags?: readonly string[] | undefined;
  /** The CLI the `fulcrum-baseline` target runs. */
  readonly baselineCli?: string | undefined;
  /** Times every target is started afresh, the start order turning each time. */
  readonly launches: number;
  readonly say: (line: string) => void;
}

export interface OverheadMeasurement {
  readonly row: string;
  readonly target: TargetName;
  /** Which start of the targets (0 unless `launches` is above 1). */
  readonly launch: number;
  readonly rep: number;
  /** In the row's unit (GB/s, req/s, conn/s, msg/s). */
  readonly throughput: number;
  readonly p50Ms?: number | undefined;
  readonly p99Ms?: number | undefined;
  /** Proxy CPU per unit of work in the row's `cpuUnit`; undefined for `direct`. */
  readonly cpu?: number | undefined;
  readonly errors: number;
  readonly problems: readonly string[];
}

function toolsFor(rows: readonly OverheadRow[], targets: readonly TargetName[]): Tool[] {
  const tools: Tool[] = [];
  if (rows.some((r) => r.listener === "bulk")) tools.push(TOOLS.iperf3);
  if (rows.some((r) => r.listener === "http")) tools.push(TOOLS.wrk, TOOLS.nginx);
  if (rows.some((r) => r.listener !== "bulk" && r.listener !== "http")) tools.push(TOOLS.h2load);
  if (targets.includes("haproxy")) tools.push(TOOLS.haproxy);
  if (targets.includes("nginx")) tools.push(TOOLS.nginx, TOOLS.nginxStream);
  return tools;
}

export async function runOverhead(o: OverheadOptions): Promise<OverheadMeasurement[]> {
  const rows = OVERHEAD_ROWS.filter((r) => !o.rows || o.rows.some((id) => r.id.includes(id)));
  if (rows.length === 0)
    throw new Error(`--rows matched no row of: ${OVERHEAD_ROWS.map((r) => r.id).join(", ")}`);
  ensureTools(toolsFor(rows, o.targets));
  const used = new Set(rows.map((r) => r.listener));
  const iperf = used.has("bulk") ? await startIperf3Server() : undefined;
  const http = used.has("http") ? await startHttpBackend(o.dir) : undefined;
  const pool = used.has("grpc") ? await startWorkerPool([{ name: "echo" }]) : undefined;
  const infer =
    used.has("infer") || used.has("infer-prefix")
      ? await startWorkerPool([{ name: "triton", kind: "triton" }])
      : undefined;
  const listeners: ListenerSpec[] = [];
  if (iperf) listeners.push({ name: "bulk", protocol: "tcp", upstreams: [iperf.address] });
  if (http) listeners.push({ name: "http", protocol: "tcp", upstreams: [http.address] });
  if (pool) listeners.push({ name: "grpc", protocol: "grpc", upstreams: [pool.workers[0]?.address ?? ""] });
  if (infer) {
    const upstreams = [infer.workers[0]?.address ?? ""];
    listeners.push({ name: "infer", protocol: "grpc", upstreams, policy: "least_connections" });
    listeners.push({ name: "infer-prefix", protocol: "grpc", upstreams, prefixAffinity: true });
  }
  const results: OverheadMeasurement[] = [];
  try {
    for (let launch = 0; launch < o.launches; launch++) {
      await runLaunch(launch, launchOrder(o.targets, launch), rows, listeners, o, pool, infer, results);
    }
  } finally {
    await Promise.all([iperf?.stop(), http?.stop(), pool?.stop(), infer?.stop()]);
  }
  return results;
}

/** Launch k starts the targets from the k-th on, so that each is started first, second … in turn. */
export function launchOrder(targets: readonly TargetName[], launch: number): TargetName[] {
  return targets.map((_, i) => targets[(i + launch) % targets.length] as TargetName);
}

type WorkerPool = Awaited<ReturnType<typeof startWorkerPool>>;

/** Starts `names` in this order, runs every repetition of every row through them, and stops them. */
async function runLaunch(
  launch: number,
  names: readonly TargetName[],
  rows: readonly OverheadRow[],
  listeners: readonly ListenerSpec[],
  o: OverheadOptions,
  pool: WorkerPool | undefined,
  infer: WorkerPool | undefined,
  results: OverheadMeasurement[],
): Promise<void> {
  const running: RunningTarget[] = [];
  try {
    for (const name of names) {
      const dir = join(o.dir, name);
      mkdirSync(dir, { recursive: true });
      const start = {
        dir,
        cpuProfDir: o.cpuProfDir,
        threads: o.threads,
        nodeFlags: o.nodeFlags,
        baselineCli: o.baselineCli,
      };
      running.push(await startTarget(name, listeners, start));
    }
    // A target that does not serve a row's listener (node-net: gRPC) sits that row out.
    const serves = (t: RunningTarget, row: OverheadRow): boolean => t.port(row.listener) !== 0;
    const total =
      o.launches * o.repeat * rows.reduce((n, row) => n + running.filter((t) => serves(t, row)).length, 0);
    for (let rep = 0; rep < o.repeat; rep++) {
      // Each repetition starts one target later, so that none always runs right after the same one:
      // whatever a run leaves behind (sockets in TIME_WAIT, caches, the host's other load) falls on
      // every target in turn.
      const order = running.map((_, i) => running[(i + rep) % running.length] as RunningTarget);
      for (const row of rows) {
        for (const target of order) {
          if (!serves(target, row)) continue;
          const m = await measure(row, target, launch, rep, o, row.listener === "grpc" ? pool : infer);
          results.push(m);
          const cpu = m.cpu === undefined ? "" : `, proxy CPU ${m.cpu.toPrecision(3)} ${row.cpuUnit}`;
          const bad = m.problems.length > 0 ? `  PROBLEM: ${m.problems.join("; ")}` : "";
          o.say(
            `overhead [${results.length}/${total}] ${row.id} via ${target.name}: ` +
              `${m.throughput.toPrecision(4)} ${row.unit}${cpu}${bad}`,
          );
        }
      }
    }
  } finally {
    await Promise.all(running.map((t) => t.stop()));
  }
}

async function measure(
  row: OverheadRow,
  target: RunningTarget,
  launch: number,
  rep: number,
  o: OverheadOptions,
  pool: Awaited<ReturnType<typeof startWorkerPool>> | undefined,
): Promise<OverheadMeasurement> {
  // A first unmeasured second per row and target, so Fulcrum's JIT is warm like the C peers.
  if (rep === 0 && o.seconds > 1) await row.run(target.port(row.listener), 1, o.dir);
  const before = row.messagesPerRequest && pool ? await pool.counters() : undefined;
  const cpu0 = target.cpuSeconds();
  const r = await row.run(target.port(row.listener), o.seconds, o.dir);
  const cpuSeconds = target.cpuSeconds() - cpu0;
  const problems: string[] = [];
  let errors = r.errors;
  if (errors > 0) problems.push(`${errors} errors reported by the load generator`);
  if (before && pool && row.messagesPerRequest) {
    const d = counterDelta(before, await pool.counters());
    const calls = r.requests / row.messagesPerRequest;
    // The load generator stops with calls in flight; a proxy ends those upstream, CANCELLED or with
    // another status (as NGINX was seen to). More non-OK calls than could be in flight is a fault.
    const inFlight = row.inFlight ?? 0;
    const cut = d.failed + d.cancelled;
    if (cut > inFlight)
      problems.push(
        `${cut} calls ended with a non-OK gRPC status at the worker (${d.cancelled} CANCELLED; at most ${inFlight} in flight)`,
      );
    if (d.ok < calls) problems.push(`worker answered ${d.ok} calls OK, the load generator counted ${calls}`);
    if (d.messages < r.requests) problems.push(`worker sent ${d.messages} messages, ${r.requests} counted`);
    errors += Math.max(0, cut - inFlight) + Math.max(0, calls - d.ok);
  }
  const work = row.unit === "GB/s" ? r.bytes : r.requests;
  const throughput = row.unit === "GB/s" ? r.bytes / r.seconds / 1e9 : r.requests / r.seconds;
  if (!(throughput > 0)) problems.push("no throughput");
  const perUnit = row.unit === "GB/s" ? cpuSeconds / (work / 2 ** 30) : (cpuSeconds * 1e6) / work;
  return {
    row: row.id,
    target: target.name,
    launch,
    rep,
    throughput,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    cpu: target.name === "direct" || work === 0 ? undefined : perUnit,
    errors,
    problems,
  };
}
