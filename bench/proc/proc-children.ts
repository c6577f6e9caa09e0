/**
 * Every process the bench starts goes through `startChild`, which remembers it, so `stopAll` can end
 * all of them at the end of a run, on an error and on SIGINT/SIGTERM: SIGTERM first (Fulcrum drains
 * and writes its CPU profile), SIGKILL after a grace period. Nothing is left running.
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";

const children = new Set<ChildProcess>();

export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly name: string;
  /** Output seen so far (stdout + stderr when piped), for error messages. */
  output(): string;
  /** Resolves with the first stdout line `match` accepts; rejects on exit or after `timeoutMs`. */
  line<T>(match: (line: string) => T | undefined, timeoutMs?: number): Promise<T>;
  /** Resolves with the exit code (null when killed by a signal). */
  exited(): Promise<number | null>;
  stop(graceMs?: number): Promise<void>;
}

export function startChild(
  name: string,
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Child {
  const proc = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  children.add(proc);
  // The last 32–64 KB of output, kept as the chunks that came: a target writing access logs sends
  // megabytes a second, and decoding them all would load the cores the measurement shares.
  const tail: Buffer[] = [];
  let tailBytes = 0;
  let errors = "";
  const keep = (d: Buffer): void => {
    tail.push(d);
    tailBytes += d.length;
    while (tail.length > 1 && tailBytes - (tail[0] as Buffer).length >= 32_000)
      tailBytes -= (tail.shift() as Buffer).length;
  };
  const output = (): string => Buffer.concat(tail).toString() + errors;
  proc.stdout?.on("data", keep);
  proc.stderr?.on("data", keep);
  const exit = new Promise<number | null>((resolve) => {
    proc.once("exit", (code) => {
      children.delete(proc);
      resolve(code);
    });
    proc.once("error", (err) => {
      errors += `\n${String(err)}`;
      children.delete(proc);
      resolve(-1);
    });
  });
  const child: Child = {
    process: proc,
    pid: proc.pid ?? -1,
    name,
    output,
    exited: () => exit,
    line<T>(match: (line: string) => T | undefined, timeoutMs = 15_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        let buf = "";
        const timer = setTimeout(
          () => fail(new Error(`${name}: no ready line within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const onData = (d: Buffer): void => {
          buf += d.toString();
          const lines = buf.split("\n");
          buf = lines.pop() ?? "";
          for (const l of lines) {
            const m = match(l);
            if (m === undefined) continue;
            cleanup();
            return resolve(m);
          }
        };
        const onExit = (code: number | null): void =>
          fail(new Error(`${name} exited (${code}) before it was ready:\n${output().slice(-2000)}`));
        const cleanup = (): void => {
          clearTimeout(timer);
          proc.stdout?.off("data", onData);
          proc.off("exit", onExit);
        };
        const fail = (err: Error): void => {
          cleanup();
          reject(err);
        };
        proc.stdout?.on("data", onData);
        proc.once("exit", onExit);
      });
    },
    stop: (graceMs = 5000) => stopChild(proc, exit, graceMs),
  };
  return child;
}

async function stopChild(proc: ChildProcess, exit: Promise<unknown>, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
  await exit;
  clearTimeout(timer);
}

/** Stops every child still running (SIGTERM, then SIGKILL after `graceMs`). */
export async function stopAll(graceMs = 5000): Promise<void> {
  await Promise.all(
    [...children].map((proc) => stopChild(proc, new Promise((r) => proc.once("exit", r)), graceMs)),
  );
}

/** Synchronous last resort (process 'exit' handler): SIGKILL whatever is left. */
export function killAllNow(): void {
  for (const proc of children) proc.kill("SIGKILL");
}

/** The value of `address` in a `{"msg":"listening",...}` JSON log line. */
export function listeningAddress(line: string): string | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const j = JSON.parse(line) as { msg?: string; address?: string };
    return j.msg === "listening" ? j.address : undefined;
  } catch {
    return undefined;
  }
}

export const portOf = (address: string): number => Number(/:(\d+)$/.exec(address)?.[1]);
