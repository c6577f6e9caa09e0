/**
 * The README's "A 5-minute tour", run verbatim: every command between `<!-- tour:start -->` and
 * `<!-- tour:end -->` in a ```sh block runs in bash from the repository root (a line ending in `&`
 * in the background, in a process group of its own, awaited until it logs `listening`); the ```text
 * block after a command is its expected output, matched line by line with numbers free (timings,
 * counts) and `...` standing for any lines; then the statuses must all be OK, both workers must
 * have answered, and /status must count every call. Whatever started is killed by process group,
 * pass or fail. The tour's ports are fixed (127.0.0.1:18100–18190), as the README prints them.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { repoRoot } from "../helpers/repo-root.js";

interface Step {
  readonly command: string;
  readonly background: boolean;
  /** The ```text block after a foreground command, if any. */
  expected?: string[];
}

/** The steps of the tour, in order. */
function tourSteps(readme: string): Step[] {
  const start = readme.indexOf("<!-- tour:start -->");
  const end = readme.indexOf("<!-- tour:end -->");
  assert.ok(start >= 0 && end > start, "the README has the tour markers");
  const steps: Step[] = [];
  const fence = /```(\w+)\n([\s\S]*?)```/g;
  for (const m of readme.slice(start, end).matchAll(fence)) {
    const [, lang, body = ""] = m;
    const lines = body.split("\n").filter((l) => l.trim() !== "" && !l.trim().startsWith("#"));
    if (lang === "sh") {
      for (const line of lines) {
        const background = /&\s*$/.test(line);
        steps.push({ command: background ? line.replace(/&\s*$/, "").trim() : line.trim(), background });
      }
    } else if (lang === "text") {
      const last = steps.at(-1);
      assert.ok(last && !last.background, "a text block follows a foreground command");
      last.expected = lines;
    }
  }
  return steps;
}

/** Expected line → pattern: digits run free, the rest literal. */
function linePattern(line: string): RegExp {
  const parts = line.split(/\d+/).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join("\\d+")}$`);
}

/** Matches `actual` against `expected`, where a `...` line stands for any number of lines. */
function matchesOutput(expected: readonly string[], actual: readonly string[]): boolean {
  const [head, ...rest] = expected;
  if (head === undefined) return actual.length === 0;
  if (head === "...") {
    for (let skip = 0; skip <= actual.length; skip++) {
      if (matchesOutput(rest, actual.slice(skip))) return true;
    }
    return false;
  }
  const [first, ...others] = actual;
  return first !== undefined && linePattern(head).test(first) && matchesOutput(rest, others);
}

function sh(command: string, detached: boolean): ChildProcess {
  return spawn("bash", ["-c", command], { cwd: repoRoot(), detached, stdio: ["ignore", "pipe", "pipe"] });
}

function waitForListening(child: ChildProcess, command: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(
      () => reject(new Error(`${command}: no listening line in ${timeoutMs} ms\n${err}`)),
      timeoutMs,
    );
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes('"msg":"listening"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${command}: exited ${code} before listening\n${err}`));
    });
  });
}

function runToEnd(
  command: string,
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = sh(command, true);
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), timeoutMs);
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is gone already
  }
}

function groupAlive(child: ChildProcess): boolean {
  if (child.pid === undefined) return false;
  try {
    process.kill(-child.pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("README tour", { timeout: 120_000 }, () => {
  const background: ChildProcess[] = [];
  after(async () => {
    for (const child of background) killGroup(child, "SIGTERM");
    const deadline = Date.now() + 5000;
    while (background.some(groupAlive) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const child of background) killGroup(child, "SIGKILL");
  });

  it("runs verbatim and prints what the README shows", async () => {
    const readme = readFileSync(join(repoRoot(), "README.md"), "utf8");
    const steps = tourSteps(readme);
    assert.ok(steps.filter((s) => s.background).length >= 3, "workers and Fulcrum start in the background");
    const outputs: string[][] = [];
    for (const step of steps) {
      if (step.background) {
        const child = sh(step.command, true);
        background.push(child);
        await waitForListening(child, step.command, 30_000);
        continue;
      }
      const r = await runToEnd(step.command, 60_000);
      assert.equal(r.code, 0, `${step.command}\n${r.stdout}${r.stderr}`);
      const lines = r.stdout.trimEnd().split("\n");
      outputs.push(lines);
      if (step.expected) {
        assert.ok(
          matchesOutput(step.expected, lines),
          `${step.command} printed\n${r.stdout}\nbut the README shows\n${step.expected.join("\n")}`,
        );
      }
    }
    assert.ok(outputs.length >= 1, "the tour makes calls");
    let calls = 0;
    for (const lines of outputs) {
      const summary = lines.find((l) => /^\d+ calls: /.test(l)) ?? "";
      const m = /^(\d+) calls: OK (\d+)$/.exec(summary);
      assert.ok(m && m[1] === m[2], `every call OK: ${summary}`);
      calls += Number(m[1]);
      const byWorker = lines.find((l) => l.startsWith("by worker: ")) ?? "";
      assert.match(byWorker, /gpu-0 \d+/);
      assert.match(byWorker, /gpu-1 \d+/);
    }
    const tour = readme.slice(readme.indexOf("<!-- tour:start -->"), readme.indexOf("<!-- tour:end -->"));
    const admin = /admin listener on `([\d.:]+)`/.exec(tour)?.[1];
    assert.ok(admin, "the tour names its admin listener");
    const status = (await (await fetch(`http://${admin}/status`)).json()) as {
      clusters: { endpoints: { total: number }[] }[];
    };
    const totals = status.clusters.flatMap((c) => c.endpoints.map((e) => e.total));
    assert.equal(totals.length, 2);
    assert.ok(
      totals.every((t) => t > 0),
      `both endpoints served: ${totals.join(", ")}`,
    );
    assert.equal(
      totals.reduce((a, b) => a + b, 0),
      calls,
    );
    assert.ok(
      readme.includes(`the ${calls}\ncalls`) || readme.includes(`the ${calls} calls`),
      "the README's count of calls",
    );
  });
});
