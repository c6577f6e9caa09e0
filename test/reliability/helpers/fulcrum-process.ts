/**
 * Fulcrum as the reliability tests run it: the built CLI (`cli.js run --config FILE`) in a child
 * process on the Node binary running the tests, observed from outside: its JSON log lines, its
 * memory (VmRSS, VmHWM) and file descriptors from /proc/<pid>, its listening sockets, and its admin
 * API. Admin requests go without keep-alive, so they leave no connection behind in the counts.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { NODE_FLAGS } from "../../../src/runtime/node-flags.js";
import { CLI } from "../../helpers/cli-process.js";
import { sampleSum, samples, type Sample } from "../../helpers/prom-text.js";
import { ChildChannel, spawnNode, type Message } from "./child-channel.js";
import {
  listeningSockets,
  openFiles,
  processMemory,
  resetPeakRss,
  type ProcessMemory,
} from "./proc-stats.js";

export interface HttpReply {
  readonly status: number;
  readonly text: string;
}

/** One HTTP/1.1 request with `Connection: close`, no agent, no keep-alive. */
export function httpRequest(
  address: string,
  method: "GET" | "POST",
  path: string,
  options: { headers?: Record<string, string>; body?: string } = {},
): Promise<HttpReply> {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(address);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: m?.[1],
        port: Number(m?.[2]),
        method,
        path,
        agent: false,
        headers: { connection: "close", ...options.headers },
        timeout: 10_000,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on("error", reject);
    req.end(options.body);
  });
}

export interface EndpointStatus {
  readonly address: string;
  readonly weight: number;
  readonly health: string;
  readonly drained: boolean;
  readonly active: number;
  readonly total: number;
  readonly failures: number;
}

export interface StatusDoc {
  readonly listeners: readonly { name: string; address: string; active: number }[];
  readonly clusters: readonly { name: string; policy: string; endpoints: readonly EndpointStatus[] }[];
}

export class FulcrumProcess {
  constructor(
    readonly channel: ChildChannel,
    /** The config file the process was started with; rewrite it to reload. */
    readonly configFile: string,
  ) {}

  get pid(): number {
    return this.channel.pid;
  }

  /** The JSON log lines printed so far. */
  get lines(): readonly Message[] {
    return this.channel.messages;
  }

  /** The bound `host:port` of listener `name` (`admin` for the admin listener), from its log line. */
  address(name: string): string {
    const line = this.lines.find((l) => l.msg === "listening" && l.listener === name);
    if (!line) throw new Error(`no listening line for ${name}`);
    return String(line.address);
  }

  target(name: string): { host: string; port: number } {
    const m = /^\[?(.*?)\]?:(\d+)$/.exec(this.address(name));
    return { host: m?.[1] ?? "127.0.0.1", port: Number(m?.[2]) };
  }

  memory(): ProcessMemory {
    return processMemory(this.pid);
  }

  /**
   * What is left after V8's most thorough collection, and RSS after it; needs `collectable` at start
   * (helpers/collect-on-signal.ts says why RSS alone does not tell).
   */
  async collect(timeoutMs = 10_000): Promise<{ heapUsedKiB: number; externalKiB: number; rssKiB: number }> {
    const from = this.channel.messages.length;
    this.channel.signal("SIGUSR2");
    const m = await this.channel.waitFor((l) => l.msg === "collected", timeoutMs, "collected line", from);
    return {
      heapUsedKiB: Number(m.heap_used_kib),
      externalKiB: Number(m.external_kib),
      rssKiB: this.memory().rssKiB,
    };
  }

  resetPeak(): boolean {
    return resetPeakRss(this.pid);
  }

  openFiles(): number {
    return openFiles(this.pid);
  }

  listeningSockets(): string[] {
    return listeningSockets(this.pid);
  }

  writeConfig(yaml: string): void {
    writeFileSync(this.configFile, yaml);
  }

  admin(method: "GET" | "POST", path: string, options: Parameters<typeof httpRequest>[3] = {}) {
    return httpRequest(this.address("admin"), method, path, options);
  }

  async metrics(): Promise<Sample[]> {
    const reply = await this.admin("GET", "/metrics");
    if (reply.status !== 200) throw new Error(`/metrics answered ${reply.status}`);
    return samples(reply.text);
  }

  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return sampleSum(await this.metrics(), name, labels);
  }

  async status(): Promise<StatusDoc> {
    const reply = await this.admin("GET", "/status");
    if (reply.status !== 200) throw new Error(`/status answered ${reply.status}`);
    return JSON.parse(reply.text) as StatusDoc;
  }

  /**
   * SIGTERM (a drain of at most the config's drain_timeout), then the exit code; SIGKILL after
   * `timeoutMs`. Removes the config's temporary directory.
   */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    this.channel.signal("SIGTERM");
    const timer = setTimeout(() => this.channel.signal("SIGKILL"), timeoutMs);
    const { code } = await this.channel.exit;
    clearTimeout(timer);
    rmSync(dirname(this.configFile), { recursive: true, force: true });
    return code;
  }
}

export interface FulcrumProcessOptions {
  /** The config, written to a fresh temporary directory (relative paths resolve there). */
  readonly yaml: string;
  /** How many `listening` lines mean started: one per listener, plus one for admin. */
  readonly listening: number;
  /** More CLI arguments, e.g. `["--log-level", "debug"]`. */
  readonly args?: readonly string[];
  /** Raise the soft open-files limit of the process to this. */
  readonly openFiles?: number;
  readonly timeoutMs?: number;
  /** Start with helpers/collect-on-signal.ts preloaded, for `collect()`. */
  readonly collectable?: boolean;
}

const COLLECT_FLAGS = ["--expose-gc", `--import=${new URL("./collect-on-signal.js", import.meta.url).href}`];

export async function startFulcrumProcess(options: FulcrumProcessOptions): Promise<FulcrumProcess> {
  const dir = mkdtempSync(join(tmpdir(), "fulcrum-reliability-"));
  const configFile = join(dir, "fulcrum.yaml");
  writeFileSync(configFile, options.yaml);
  const channel = new ChildChannel(
    spawnNode(CLI, ["run", "--config", configFile, ...(options.args ?? [])], {
      openFiles: options.openFiles,
      nodeFlags: options.collectable ? [...NODE_FLAGS, ...COLLECT_FLAGS] : NODE_FLAGS,
    }),
    "fulcrum",
  );
  try {
    await channel.waitFor(
      () => channel.messages.filter((l) => l.msg === "listening").length >= options.listening,
      options.timeoutMs ?? 20_000,
      `${options.listening} listening lines`,
    );
  } catch (err) {
    await channel.kill();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\nstderr: ${channel.stderrText()}`);
  }
  return new FulcrumProcess(channel, configFile);
}

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs the CLI to completion (e.g. `check --config FILE`); kills it after `timeoutMs`. */
export function runFulcrum(args: readonly string[], timeoutMs = 20_000): Promise<CliResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [...NODE_FLAGS, CLI, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Reads `read()` every `everyMs` for `ms`; resolves with every reading, in order. */
export async function samplesOver(read: () => Promise<number>, ms: number, everyMs = 100): Promise<number[]> {
  const samples: number[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    samples.push(await read());
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return samples;
}

/** Polls `predicate` every `everyMs` until it holds; rejects after `timeoutMs` saying `what`. */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  everyMs = 50,
): Promise<number> {
  const started = Date.now();
  while (!(await predicate())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return Date.now() - started;
}

/**
 * Waits until the process holds `baseline ± tolerance` file descriptors (closes are asynchronous:
 * a socket's fd goes when its close callback ran); resolves with the count, rejects with the last one.
 */
export async function fdsSettle(
  f: FulcrumProcess,
  baseline: number,
  tolerance = 5,
  timeoutMs = 15_000,
): Promise<number> {
  let last = f.openFiles();
  try {
    await until(
      () => Math.abs((last = f.openFiles()) - baseline) <= tolerance,
      timeoutMs,
      "file descriptors back to baseline",
    );
  } catch {
    throw new Error(`fulcrum holds ${last} file descriptors, baseline ${baseline} ± ${tolerance}`);
  }
  return last;
}
