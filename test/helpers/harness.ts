/**
 * Test harness: Fulcrum in-process from a YAML string (ports 0), simulated workers, and small
 * clients. Each test owns what it starts and closes it with `closeAll`, which waits until every
 * socket is gone so a leaking test fails instead of passing.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Registry } from "prom-client";
import { seededRandom } from "../../src/balancer/random-seeded.js";
import { parseConfig } from "../../src/config/config-load.js";
import { AccessLogSink } from "../../src/access-log/access-log.js";
import { createLogger, type Logger } from "../../src/log/logger.js";
import { createMetrics, type Metrics } from "../../src/metrics/metrics.js";
import { Fulcrum } from "../../src/runtime/fulcrum.js";
import { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";

/** A pino logger that keeps JSON lines in memory (assert on them only when logging is the behaviour). */
export function memoryLogger(level: "debug" | "info" | "warn" = "info"): { log: Logger; lines: unknown[] } {
  const lines: unknown[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) lines.push(JSON.parse(line));
      cb();
    },
  });
  return { log: createLogger({ level, destination: sink }), lines };
}

export interface StartedFulcrum {
  readonly fulcrum: Fulcrum;
  readonly metrics: Metrics;
  readonly registry: Registry;
  readonly lines: unknown[];
  /** Access-log lines of the listeners, parsed (in-process: never on stdout). */
  readonly accessLines: Record<string, unknown>[];
  /** The file the config was written to; rewrite it and call `fulcrum.reloadFile()` to reload. */
  readonly configFile: string;
  /** `{ host, port }` of the listener called `name` (default: the first). */
  target(name?: string): { host: string; port: number };
}

export async function startFulcrum(
  yaml: string,
  options: { seed?: number; processMetrics?: boolean } = {},
): Promise<StartedFulcrum> {
  // The config lives in a file, as in production, so `POST /reload` and `reloadFile()` work.
  const configFile = join(mkdtempSync(join(tmpdir(), "fulcrum-test-")), "fulcrum.yaml");
  writeFileSync(configFile, yaml);
  const config = parseConfig(yaml, { baseDir: process.cwd() });
  const registry = new Registry();
  const metrics = createMetrics(registry, { processMetrics: options.processMetrics ?? false });
  const { log, lines } = memoryLogger();
  const accessLines: Record<string, unknown>[] = [];
  const accessLog = new AccessLogSink({
    write: (line: string) => accessLines.push(JSON.parse(line) as Record<string, unknown>),
  });
  const fulcrum = await Fulcrum.start(config, {
    log,
    metrics,
    random: options.seed === undefined ? undefined : seededRandom(options.seed),
    configFile,
    accessLog,
  });
  return {
    fulcrum,
    metrics,
    registry,
    lines,
    accessLines,
    configFile,
    target(name) {
      const listener = name ?? config.listeners[0]?.name ?? "";
      const address = fulcrum.addressOf(listener);
      const m = /^\[?(.*?)\]?:(\d+)$/.exec(address);
      return { host: m?.[1] ?? "127.0.0.1", port: Number(m?.[2]) };
    },
  };
}

export async function startWorkers(names: readonly string[]): Promise<SimTcpWorker[]> {
  const workers = names.map((name) => new SimTcpWorker({ name }));
  await Promise.all(workers.map((w) => w.listen("127.0.0.1", 0)));
  return workers;
}

export function endpointsYaml(workers: readonly SimTcpWorker[], weights?: readonly number[]): string {
  return workers
    .map(
      (w, i) => `      - address: 127.0.0.1:${w.port}` + (weights ? `\n        weight: ${weights[i]}` : ""),
    )
    .join("\n");
}

/** Connects and resolves with the socket once the worker's greeting line arrived. */
export function connectAndGreet(
  port: number,
  options: { host?: string; localAddress?: string; timeoutMs?: number } = {},
): Promise<{ socket: Socket; worker: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: options.host ?? "127.0.0.1", port, localAddress: options.localAddress });
    let buffered = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("no greeting within timeout"));
    }, options.timeoutMs ?? 5000);
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString("utf8");
      const nl = buffered.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.pause();
      resolve({ socket, worker: buffered.slice(0, nl) });
    };
    socket.on("data", onData);
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once("close", () => {
      clearTimeout(timer);
      reject(new Error(`closed before greeting (got ${JSON.stringify(buffered)})`));
    });
  });
}

/** Connects, reads the greeting, closes; resolves with the worker's name. */
export async function whoAnswers(port: number, options: { localAddress?: string } = {}): Promise<string> {
  const { socket, worker } = await connectAndGreet(port, options);
  await closeSocket(socket);
  return worker;
}

export function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed && socket.closed) return resolve();
    socket.once("close", () => resolve());
    socket.destroy();
  });
}

/** Resolves when `predicate` holds, polling every `everyMs`; rejects after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what = "condition",
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The value of a counter or gauge sample with exactly these labels (0 when absent). */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const data = await metric.get();
  const match = data.values.find((v) =>
    Object.entries(labels).every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val),
  );
  return match?.value ?? 0;
}

/** The sum of every sample of a counter or gauge. */
export async function metricSum(registry: Registry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const data = await metric.get();
  return data.values.reduce((n, v) => n + v.value, 0);
}

export async function closeAll(
  started: StartedFulcrum | undefined,
  workers: readonly SimTcpWorker[],
): Promise<void> {
  await started?.fulcrum.stop(0);
  await Promise.all(workers.map((w) => w.close()));
}
