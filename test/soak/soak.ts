/**
 * The soak: `npm run soak [-- --minutes 10] [--engine frames|http2] [--warmup-seconds 120]
 * [--load steady|saturate]`.
 *
 * Fulcrum runs as a child process with a TCP listener in front of two echo workers and a gRPC
 * listener in front of two gRPC workers (each worker its own process). Closed-loop TCP load (a client
 * process: connect, greeting, 1 KiB echoed, close) and unary gRPC load (grpc-js clients, 2 s deadline)
 * run the whole time, and every minute one worker is SIGKILLed and started again on its address,
 * alternating TCP and gRPC. Fulcrum's RSS and open file descriptors are sampled every 10 s.
 *
 * Passes (exit 0) when, over the samples after the warm-up, the least-squares slope of RSS
 * extrapolated over one hour is under 5 % of the mean post-warm-up RSS; the descriptor count after the
 * load stopped is back to its baseline ± 5; and no call or connection failed outside the 5 s after a
 * restart (those inside are counted and reported). Prints one JSON summary and writes it to
 * `test-artifacts/soak.json`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { sampleSum } from "../helpers/prom-text.js";
import { repoRoot } from "../helpers/repo-root.js";
import { fdsSettle, startFulcrumProcess } from "../reliability/helpers/fulcrum-process.js";
import {
  startGrpcFaultWorker,
  type GrpcFaultWorker,
} from "../reliability/helpers/grpc-fault-worker-process.js";
import { GrpcLoad, summarize } from "../reliability/helpers/grpc-load.js";
import { startLoadClient } from "../reliability/helpers/load-client-process.js";
import { startTcpWorker, type TcpWorkerProcess } from "../reliability/helpers/tcp-worker-process.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    load: { type: "string", default: "steady" },
    engine: { type: "string", default: "frames" },
    "warmup-seconds": { type: "string", default: "120" },
    "restart-every-seconds": { type: "string", default: "60" },
    "sample-every-seconds": { type: "string", default: "10" },
  },
});
const MINUTES = Number(values.minutes);
const ENGINE = values.engine;
const WARMUP_MS = Number(values["warmup-seconds"]) * 1000;
const RESTART_EVERY_MS = Number(values["restart-every-seconds"]) * 1000;
const SAMPLE_EVERY_MS = Number(values["sample-every-seconds"]) * 1000;
const RESTART_WINDOW_MS = 5000;
/**
 * `steady`: paced load, about 560 gRPC calls/s and 165 TCP connections/s on the 2-core VM, leaving
 * the cores room: a soak is about time, not saturation. `saturate`: as fast as answers come (about
 * 3,000 calls/s and 270 connections/s there), with no idle time for the collector.
 */
const LOADS = {
  steady: { tcp: { concurrency: 2, pauseMs: 10 }, grpc: { concurrency: 8, pauseMs: 10 } },
  saturate: { tcp: { concurrency: 4, pauseMs: 10 }, grpc: { concurrency: 16, pauseMs: 0 } },
} as const;
const LOAD = values.load as keyof typeof LOADS;
const SLOPE_BUDGET_PER_HOUR = 0.05;
const FD_TOLERANCE = 5;

if (
  !(MINUTES > 0) ||
  (ENGINE !== "frames" && ENGINE !== "http2") ||
  WARMUP_MS >= MINUTES * 60_000 ||
  !(LOAD in LOADS)
) {
  process.stderr.write(
    "soak: --minutes N (> warm-up), --engine frames|http2, --warmup-seconds N, --load steady|saturate\n",
  );
  process.exit(2);
}

interface Restartable {
  readonly name: string;
  readonly address: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Kills `workers[i]` with SIGKILL and puts a new one, started by `start`, on its port. */
async function restartInPlace<W extends Restartable>(
  workers: W[],
  i: number,
  start: (name: string, port: number) => Promise<W>,
): Promise<string> {
  const old = workers[i] as W;
  await old.kill("SIGKILL");
  workers[i] = await start(old.name, Number(/:(\d+)$/.exec(old.address)?.[1]));
  return old.name;
}

const tcpWorker = (name: string, port?: number): Promise<TcpWorkerProcess> =>
  startTcpWorker({ name, mode: "echo", greet: true, port });
const grpcWorker = (name: string, port?: number): Promise<GrpcFaultWorker> =>
  startGrpcFaultWorker({ name, delayMs: 2, port });

/** Least-squares slope of y over x. */
function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

async function main(): Promise<number> {
  const tcpWorkers: TcpWorkerProcess[] = [];
  const grpcWorkers: GrpcFaultWorker[] = [];
  for (const name of ["t1", "t2"]) tcpWorkers.push(await tcpWorker(name));
  for (const name of ["g1", "g2"]) grpcWorkers.push(await grpcWorker(name));
  // Restarts alternate TCP and gRPC: t1, g1, t2, g2, t1, …
  const restartOrder = [0, 1].flatMap((i) => [
    () => restartInPlace(tcpWorkers, i, tcpWorker),
    () => restartInPlace(grpcWorkers, i, grpcWorker),
  ]);
  const f = await startFulcrumProcess({
    listening: 3,
    yaml: `
admin: { listen: "127.0.0.1:0" }
drain_timeout: 2s
listeners:
  - { name: tcp, protocol: tcp, listen: "127.0.0.1:0", cluster: t, idle_timeout: 30s }
  - { name: grpc, protocol: grpc, engine: ${ENGINE}, listen: "127.0.0.1:0", cluster: g }
clusters:
  - name: t
    policy: least_connections
    connect_timeout: 1s
    health_check: { type: tcp, interval: 500ms, timeout: 300ms, healthy_threshold: 2, unhealthy_threshold: 2 }
    endpoints:
${tcpWorkers.map((w) => `      - address: "${w.address}"`).join("\n")}
  - name: g
    policy: least_connections
    connect_timeout: 1s
    health_check: { type: grpc, interval: 500ms, timeout: 300ms, healthy_threshold: 2, unhealthy_threshold: 2 }
    endpoints:
${grpcWorkers.map((w) => `      - address: "${w.address}"`).join("\n")}
`,
  });
  const durationMs = MINUTES * 60_000;
  const tcpLoad = await startLoadClient();
  const shape = LOADS[LOAD];
  const startTcp = (maxMs: number): Promise<void> =>
    tcpLoad.loop(f.target("tcp"), { ...shape.tcp, payloadBytes: 1024, maxMs });
  const startGrpc = (maxMs: number): GrpcLoad =>
    new GrpcLoad(f.target("grpc"), { ...shape.grpc, clients: 4, deadlineMs: 2000, maxMs });
  // Five seconds of the same load first, then quiet: the baseline descriptors are those of a Fulcrum
  // that has served (its upstream gRPC sessions pooled), with no client connection open.
  await startTcp(5000);
  const warm = startGrpc(5000);
  await sleep(5000);
  const warmRecords = await warm.stop();
  await tcpLoad.stop();
  await sleep(1000);
  const fdBaseline = f.openFiles();

  const started = Date.now();
  await startTcp(durationMs + 60_000);
  const grpcLoad = startGrpc(durationMs + 60_000);
  const samples: {
    t: number;
    rssKiB: number;
    fds: number;
    heapUsedMiB: number;
    heapTotalMiB: number;
    externalMiB: number;
  }[] = [];
  const restarts: { at: number; worker: string }[] = [];
  let nextSample = started;
  let nextRestart = started + RESTART_EVERY_MS;
  let restartCount = 0;
  while (Date.now() - started < durationMs) {
    const now = Date.now();
    if (now >= nextSample) {
      // The V8 heap in use (prom-client's process metrics) tells a leak of objects from a heap that
      // has not finished growing; RSS is what the verdict is on.
      const metrics = await f.metrics();
      const mib = (name: string): number => sampleSum(metrics, name, {}) / 1024 / 1024;
      const heapUsedMiB = mib("nodejs_heap_size_used_bytes");
      const heapTotalMiB = mib("nodejs_heap_size_total_bytes");
      const externalMiB = mib("nodejs_external_memory_bytes");
      samples.push({
        t: now - started,
        rssKiB: f.memory().rssKiB,
        fds: f.openFiles(),
        heapUsedMiB,
        heapTotalMiB,
        externalMiB,
      });
      const s = samples.at(-1);
      process.stderr.write(
        `soak ${((now - started) / 1000).toFixed(0)} s: rss ${((s?.rssKiB ?? 0) / 1024).toFixed(1)} MiB, ` +
          `heap used ${heapUsedMiB.toFixed(1)} / total ${heapTotalMiB.toFixed(1)} MiB, ` +
          `external ${externalMiB.toFixed(1)} MiB, fds ${s?.fds}, ` +
          `grpc calls ${grpcLoad.records.length}, tcp connections ${tcpLoad.records().length}\n`,
      );
      nextSample += SAMPLE_EVERY_MS;
    }
    if (now >= nextRestart) {
      const at = Date.now();
      const restart = restartOrder[restartCount++ % restartOrder.length] as () => Promise<string>;
      restarts.push({ at, worker: await restart() });
      process.stderr.write(`soak: restarted ${restarts.at(-1)?.worker}\n`);
      nextRestart += RESTART_EVERY_MS;
    }
    await sleep(200);
  }

  const grpcRecords = [...warmRecords, ...(await grpcLoad.stop())];
  await tcpLoad.stop();
  const tcpRecords = tcpLoad.records();
  let fdsAfter = f.openFiles();
  let fdsOk = true;
  try {
    fdsAfter = await fdsSettle(f, fdBaseline, FD_TOLERANCE, 30_000);
  } catch {
    fdsOk = false;
    fdsAfter = f.openFiles();
  }
  const inWindow = (start: number, end: number): boolean =>
    restarts.some(
      (r) =>
        (end >= r.at && end <= r.at + RESTART_WINDOW_MS) ||
        (start >= r.at && start <= r.at + RESTART_WINDOW_MS),
    );
  const grpcFailed = grpcRecords.filter((r) => r.code !== 0);
  const tcpFailed = tcpRecords.filter((r) => r.outcome !== "ok");
  const grpcOutside = grpcFailed.filter((r) => !inWindow(r.start, r.end));
  const tcpOutside = tcpFailed.filter((r) => !inWindow(r.start, r.closed));

  const post = samples.filter((s) => s.t >= WARMUP_MS);
  const perSecond = slope(post.map((s) => [s.t / 1000, s.rssKiB]));
  const meanRss = post.reduce((n, s) => n + s.rssKiB, 0) / Math.max(1, post.length);
  const growthPerHour = (perSecond * 3600) / meanRss;
  // For reading the verdict, not part of it: the same slope over the second half of the run only. A
  // V8 heap still sizing itself shortly after the warm-up shows as a step early on (and a steep
  // slope over the whole window); a leak keeps the second half rising too.
  const lastHalf = post.slice(Math.floor(post.length / 2));
  const lastHalfPerHour = (slope(lastHalf.map((s) => [s.t / 1000, s.rssKiB])) * 3600) / meanRss;
  const exitCode = await f.stop();
  await tcpLoad.kill();
  await Promise.all([...tcpWorkers, ...grpcWorkers].map((w) => w.kill()));

  const summary = {
    date: new Date(started).toISOString(),
    engine: ENGINE,
    load: LOAD,
    minutes: MINUTES,
    warmup_seconds: WARMUP_MS / 1000,
    restarts: restarts.length,
    grpc_calls: grpcRecords.length,
    grpc_failed_in_restart_windows: grpcFailed.length - grpcOutside.length,
    grpc_failed_outside: grpcOutside.length,
    grpc_outcomes: summarize(grpcRecords),
    tcp_connections: tcpRecords.length,
    tcp_failed_in_restart_windows: tcpFailed.length - tcpOutside.length,
    tcp_failed_outside: tcpOutside.length,
    rss_post_warmup_mean_mib: +(meanRss / 1024).toFixed(1),
    rss_slope_kib_per_hour: +(perSecond * 3600).toFixed(0),
    rss_growth_per_hour_percent: +(growthPerHour * 100).toFixed(2),
    rss_growth_per_hour_percent_second_half: +(lastHalfPerHour * 100).toFixed(2),
    heap_used_post_warmup_max_mib: +Math.max(...post.map((s) => s.heapUsedMiB)).toFixed(1),
    rss_samples_mib: samples.map((s) => +(s.rssKiB / 1024).toFixed(1)),
    heap_used_samples_mib: samples.map((s) => +s.heapUsedMiB.toFixed(1)),
    heap_total_samples_mib: samples.map((s) => +s.heapTotalMiB.toFixed(1)),
    external_samples_mib: samples.map((s) => +s.externalMiB.toFixed(1)),
    fds_baseline: fdBaseline,
    fds_after: fdsAfter,
    fulcrum_exit_code: exitCode,
    failures_outside_examples: [...grpcOutside.slice(0, 5), ...tcpOutside.slice(0, 5)],
  };
  const verdicts = {
    rss_slope: growthPerHour < SLOPE_BUDGET_PER_HOUR,
    fds: fdsOk,
    no_failures_outside_restart_windows: grpcOutside.length === 0 && tcpOutside.length === 0,
    clean_exit: exitCode === 0,
  };
  const out = { ...summary, verdicts, pass: Object.values(verdicts).every(Boolean) };
  const dir = join(repoRoot(), "test-artifacts");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "soak.json"), `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  return out.pass ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
