/**
 * The `overhead` report: one Markdown table (every row × target: median throughput, p50, p99, proxy CPU
 * per unit of work, with min–max over repetitions), the Fulcrum/HAProxy ratios per row, and the chart
 * of latency percentiles per target.
 */
import { OVERHEAD_ROWS } from "../scenarios/overhead-rows.js";
import type { OverheadMeasurement } from "../scenarios/scenario-overhead.js";
import type { TargetName } from "../targets/target.js";
import { fmtSpread, mdTable, num, spread } from "./report-stats.js";
import { latencyChartSvg } from "./report-svg.js";

type Key = "throughput" | "p50Ms" | "p99Ms" | "cpu";

function pick(ms: readonly OverheadMeasurement[], row: string, target: TargetName, key: Key): number[] {
  return ms.filter((m) => m.row === row && m.target === target).map((m) => m[key] ?? NaN);
}

function targetsOf(ms: readonly OverheadMeasurement[]): TargetName[] {
  return [...new Set(ms.map((m) => m.target))];
}

function rowsOf(ms: readonly OverheadMeasurement[]): typeof OVERHEAD_ROWS {
  return OVERHEAD_ROWS.filter((r) => ms.some((m) => m.row === r.id));
}

export function overheadMarkdown(ms: readonly OverheadMeasurement[]): string {
  const targets = targetsOf(ms);
  const table: string[][] = [];
  for (const row of rowsOf(ms)) {
    const direct = spread(pick(ms, row.id, "direct", "throughput"))?.median;
    for (const t of targets) {
      if (!ms.some((m) => m.row === row.id && m.target === t)) continue; // node-net: no gRPC rows
      const tput = spread(pick(ms, row.id, t, "throughput"));
      const errors = ms.filter((m) => m.row === row.id && m.target === t).reduce((n, m) => n + m.errors, 0);
      table.push([
        row.id,
        t,
        `${fmtSpread(tput)} ${row.unit}`,
        direct && tput && t !== "direct" ? num(tput.median / direct) : "–",
        fmtSpread(spread(pick(ms, row.id, t, "p50Ms"))),
        fmtSpread(spread(pick(ms, row.id, t, "p99Ms"))),
        t === "direct" ? "–" : `${fmtSpread(spread(pick(ms, row.id, t, "cpu")))} ${row.cpuUnit}`,
        String(errors),
      ]);
    }
  }
  const parts = [
    mdTable(["row", "target", "throughput", "vs direct", "p50 ms", "p99 ms", "proxy CPU", "errors"], table),
  ];
  for (const fulcrum of ["fulcrum", "fulcrum-http2", "fulcrum-frames"] as const) {
    if (!targets.includes(fulcrum) || !targets.includes("haproxy")) continue;
    const ratios = rowsOf(ms).map((row) => {
      const r = (key: Key): string => {
        const f = spread(pick(ms, row.id, fulcrum, key))?.median;
        const h = spread(pick(ms, row.id, "haproxy", key))?.median;
        return f !== undefined && h !== undefined && h > 0 ? num(f / h) : "–";
      };
      return [row.id, r("throughput"), r("p50Ms"), r("p99Ms"), r("cpu")];
    });
    parts.push(
      `${fulcrum} / HAProxy (throughput above 1 and latency or CPU below 1 favour Fulcrum):`,
      mdTable(["row", "throughput", "p50", "p99", "CPU per unit"], ratios),
    );
  }
  if (targets.includes("fulcrum") && targets.includes("fulcrum-baseline")) {
    // Per repetition, the two builds ran back to back: the median of those pairs' ratios.
    const ratios = rowsOf(ms).map((row) => {
      const r = (key: Key): string => fmtSpread(spread(baselineRatios(ms, row.id, key)));
      return [row.id, r("throughput"), r("p50Ms"), r("p99Ms"), r("cpu")];
    });
    parts.push(
      "fulcrum / fulcrum-baseline (the build under test over `--baseline`; median and min–max of the per-repetition ratios):",
      mdTable(["row", "throughput", "p50", "p99", "CPU per unit"], ratios),
    );
    const launches = [...new Set(ms.map((m) => m.launch))];
    if (launches.length > 1) {
      // One figure per launch (the median of its pairs), then their mean: the launch is the unit.
      const perLaunch = rowsOf(ms).map((row) => {
        const r = (key: Key): string => {
          const medians = launches.flatMap((l) => {
            const median = spread(baselineRatios(ms, row.id, key, l))?.median;
            return median === undefined ? [] : [median];
          });
          const mean = medians.reduce((a, b) => a + b, 0) / medians.length;
          return medians.length === 0 ? "–" : `${num(mean)} (${medians.map(num).join(", ")})`;
        };
        return [row.id, r("throughput"), r("cpu")];
      });
      parts.push(
        `fulcrum / fulcrum-baseline per launch (${launches.length} launches, the start order turning; mean, then each launch's median ratio):`,
        mdTable(["row", "throughput", "CPU per unit"], perLaunch),
      );
    }
  }
  const plain = spread(pick(ms, "grpc-infer-8x16", "fulcrum", "cpu"))?.median;
  const prefix = spread(pick(ms, "grpc-infer-prefix-8x16", "fulcrum", "cpu"))?.median;
  if (plain !== undefined && prefix !== undefined && plain > 0)
    parts.push(
      `Prompt-prefix affinity: Fulcrum's CPU per ModelInfer ×${num(prefix / plain)} of the same call without it ` +
        "(grpc-infer-prefix-8x16 over grpc-infer-8x16, medians).",
    );
  parts.push(
    "Rows: " +
      rowsOf(ms)
        .map((r) => `\`${r.id}\` = ${r.title}`)
        .join("; ") +
      ".",
  );
  return `${parts.join("\n\n")}\n`;
}

/** fulcrum ÷ fulcrum-baseline of `key`, one ratio per repetition both ran (of one launch, if given). */
function baselineRatios(
  ms: readonly OverheadMeasurement[],
  row: string,
  key: Key,
  launch?: number,
): number[] {
  return ms
    .filter((m) => m.row === row && m.target === "fulcrum" && (launch === undefined || m.launch === launch))
    .flatMap((m) => {
      const b = ms.find(
        (x) => x.row === row && x.target === "fulcrum-baseline" && x.launch === m.launch && x.rep === m.rep,
      );
      const f = m[key];
      const base = b?.[key];
      return f !== undefined && base !== undefined && base > 0 ? [f / base] : [];
    });
}

export function overheadSvg(ms: readonly OverheadMeasurement[]): string {
  const rows = rowsOf(ms).filter((r) => ms.some((m) => m.row === r.id && m.p50Ms !== undefined));
  return latencyChartSvg({
    title: "overhead: latency per target (p50, p99)",
    groups: rows.map((r) => r.id),
    series: targetsOf(ms).map((t) => ({
      name: t,
      values: rows.map((r) => {
        const p50 = spread(pick(ms, r.id, t, "p50Ms"))?.median;
        const p99 = spread(pick(ms, r.id, t, "p99Ms"))?.median;
        return p50 !== undefined && p99 !== undefined ? { p50Ms: p50, p99Ms: p99 } : undefined;
      }),
    })),
  });
}
