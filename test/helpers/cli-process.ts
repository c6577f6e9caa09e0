/**
 * The built `fulcrum` CLI as a child process, as outside tools run it: start it, read its JSON log
 * lines, find the bound addresses, send signals, wait for the exit.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { NODE_FLAGS } from "../../src/runtime/node-flags.js";
import { repoRoot } from "./repo-root.js";

export const CLI = join(repoRoot(), "dist/src/cli.js");

export interface CliProcess {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[];
  stderr(): string;
  /** The address of the listener called `name` ("admin" for the admin listener). */
  address(name: string): string;
  /** Resolves with the exit code. */
  exited(): Promise<number | null>;
  /** Resolves when a log line matches, or rejects after `timeoutMs`. */
  waitForLine(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<Record<string, unknown>>;
}

export function startCli(args: string[], listening: number): Promise<CliProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, CLI, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines: Record<string, unknown>[] = [];
    const waiters: (() => void)[] = [];
    let buf = "";
    let err = "";
    let done = false;
    const exit = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const proc: CliProcess = {
      child,
      lines,
      stderr: () => err,
      address(name) {
        const line = lines.find((l) => l.msg === "listening" && l.listener === name);
        if (!line) throw new Error(`no listening line for ${name}`);
        return String(line.address);
      },
      exited: () => exit,
      waitForLine(match, timeoutMs) {
        return new Promise((res, rej) => {
          const check = (): boolean => {
            const found = lines.find(match);
            if (found) res(found);
            return found !== undefined;
          };
          if (check()) return;
          const timer = setTimeout(
            () => rej(new Error(`no matching log line within ${timeoutMs} ms`)),
            timeoutMs,
          );
          waiters.push(() => {
            if (check()) clearTimeout(timer);
          });
        });
      },
    };
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          continue;
        }
        for (const w of waiters) w();
        if (!done && lines.filter((l) => l.msg === "listening").length === listening) {
          done = true;
          resolve(proc);
        }
      }
    });
    void exit.then((code) => {
      if (!done) reject(new Error(`fulcrum exited ${code} before listening: ${err}`));
    });
  });
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built CLI to its end (killed after `timeoutMs`). */
export function runCli(args: string[], timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, CLI, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
