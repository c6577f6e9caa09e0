/** The load generator's reports: JSON (every figure) and Markdown (one table row per sweep point). */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { mdTable, num } from "../report/report-stats.js";
import type { LoadResult } from "./loadgen-windows.js";

export interface LoadPoint {
  /** e.g. `concurrency 8` or `rate 500/s`. */
  readonly label: string;
  readonly result: LoadResult;
}

export function loadMarkdown(title: string, points: readonly LoadPoint[]): string {
  const rows = points.map(({ label, result: r }) => [
    label,
    num(r.throughput),
    num(r.latency.p50Ms),
    num(r.latency.p90Ms),
    num(r.latency.p99Ms),
    num(r.latency.p999Ms),
    num(r.latency.maxMs),
    String(r.errors),
    Object.entries(r.statuses)
      .map(([code, n]) => `${code}: ${n}`)
      .join(", "),
    `${r.windows}${r.stable ? "" : " (unstable)"}`,
  ]);
  const header = [
    "point",
    "OK/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "p99.9 ms",
    "max ms",
    "errors",
    "statuses",
    "windows",
  ];
  return `## ${title}\n\n${mdTable(header, rows)}\n`;
}

export function writeLoadReports(
  dir: string,
  title: string,
  spec: unknown,
  points: readonly LoadPoint[],
): string[] {
  const json = join(dir, "load.json");
  const md = join(dir, "load.md");
  writeFileSync(json, JSON.stringify({ title, spec, points }, null, 2));
  writeFileSync(md, loadMarkdown(title, points));
  return [json, md];
}
