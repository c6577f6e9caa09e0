/**
 * A target is what the load goes through: `direct` (no proxy: the worker itself), `fulcrum` (its CLI,
 * 1 thread, the default config: gRPC on the `frames` engine), `fulcrum-http2` (the same on
 * `engine: http2`, the node:http2 fallback), `fulcrum-frames` (`engine: frames` written out),
 * `haproxy` (1 thread), `nginx` (1 worker process) or, asked for by name, `node-net` (a bare `pipe()`
 * proxy: the floor of any Node TCP relay; TCP listeners only, its port is 0 for others). Each is
 * started with one listener per `ListenerSpec` on a loopback port and stopped at the end;
 * `cpuSeconds()` is the utime + stime of its whole process tree, read from /proc around each
 * measurement.
 */
import { connect } from "node:net";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Child } from "../proc/proc-children.js";
import { treeCpuSeconds } from "../proc/proc-cpu.js";

export const TARGETS = [
  "direct",
  "fulcrum",
  "fulcrum-http2",
  "fulcrum-frames",
  "haproxy",
  "nginx",
  "node-net",
  "fulcrum-access-log",
  "fulcrum-baseline",
] as const;
export type TargetName = (typeof TARGETS)[number];

/** Fulcrum's policy names (HAProxy and NGINX get the nearest equivalent, or refuse). */
export type Policy =
  | "round_robin"
  | "weighted_round_robin"
  | "least_connections"
  | "p2c"
  | "random"
  | "ip_hash"
  | "least_loaded";

export interface ListenerSpec {
  readonly name: string;
  readonly protocol: "tcp" | "grpc";
  /** Worker addresses (`127.0.0.1:PORT`); `direct` allows exactly one. */
  readonly upstreams: readonly string[];
  readonly policy?: Policy;
  /** Fulcrum `least_loaded` only: scrape each worker's queue gauge (`load_metrics`) at this port. */
  readonly loadMetrics?: { readonly port: number; readonly intervalMs: number } | undefined;
  /** Overload control (gRPC): a cap per upstream and a queue in front of them. */
  readonly caps?: ListenerCaps | undefined;
  /** Fulcrum only: prompt-prefix affinity on Triton's `text_input` (HAProxy and NGINX have none). */
  readonly prefixAffinity?: boolean | undefined;
  /** Fulcrum only: `stream_balancing: per_request` (each request of a ModelStreamInfer stream picked on its own). */
  readonly perRequest?: boolean | undefined;
}

/**
 * At most `perEndpoint` calls at once on each upstream; the rest wait up to `queueTimeoutMs`, ordered
 * by the integer in `priorityHeader` (lower first). Fulcrum: `max_active_per_endpoint` and `queue`
 * (with `fairnessHeader` flows); HAProxy: server `maxconn`, `timeout queue` and
 * `http-request set-priority-class` (it has no fairness between flows).
 */
export interface ListenerCaps {
  readonly perEndpoint: number;
  readonly queueSize: number;
  readonly queueTimeoutMs: number;
  readonly priorityHeader: string;
  readonly fairnessHeader: string;
}

export interface StartOptions {
  /** A private temp directory for generated configs. */
  readonly dir: string;
  /** Fulcrum only: write a V8 CPU profile into this directory (`--cpu-prof`). */
  readonly cpuProfDir?: string | undefined;
  /** Threads of every proxy: Fulcrum `threads`, HAProxy `nbthread`, NGINX `worker_processes` (default 1). */
  readonly threads?: number | undefined;
  /** `fulcrum-baseline`: the CLI of another Fulcrum build (e.g. a checkout of an earlier commit's `dist/src/cli.js`). */
  readonly baselineCli?: string | undefined;
  /** Fulcrum only: Node/V8 flags before the CLI (default: the product's `NODE_FLAGS`). */
  readonly nodeFlags?: readonly string[] | undefined;
}

export interface RunningTarget {
  readonly name: TargetName;
  /** The root of the target's process tree (undefined for `direct`). */
  readonly pid: number | undefined;
  /** The loopback port of listener `name` (0: this target does not serve that listener). */
  port(listener: string): number;
  /** utime + stime of the whole process tree so far (0 for `direct`). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/**
 * A target that is one child process: its listeners at `ports`, its CPU that of the child's tree,
 * stopped by stopping the child (`stopGraceMs` before SIGKILL, the child registry's default if unset).
 */
export function childTarget(
  name: TargetName,
  child: Child,
  ports: ReadonlyMap<string, number>,
  stopGraceMs?: number,
): RunningTarget {
  return {
    name,
    pid: child.pid,
    port: (listener) => ports.get(listener) ?? 0,
    cpuSeconds: () => treeCpuSeconds(child.pid),
    stop: () => child.stop(stopGraceMs),
  };
}

/** The repository root (holds package.json), found upward from this compiled file. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("no package.json above the bench");
    dir = up;
  }
  return dir;
}

/** A template from bench/peers/ with every `{{KEY}}` replaced. */
export function peerTemplate(file: string, vars: Record<string, string | number>): string {
  const text = readFileSync(join(repoRoot(), "bench", "peers", file), "utf8");
  return text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const v = vars[key];
    if (v === undefined) throw new Error(`bench/peers/${file}: no value for {{${key}}}`);
    return String(v);
  });
}

/** Resolves once `port` accepts a TCP connection; rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: "127.0.0.1", port });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not accept within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
