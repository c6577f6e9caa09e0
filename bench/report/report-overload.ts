/**
 * The `overload` report: per load level, one row per variant with goodput (OK calls per second as a
 * fraction of capacity), latency percentiles of the OK calls per priority class, what the other calls
 * ended with, and the work the workers did for clients that had gone (medians over repetitions, with
 * min–max); and the chart of each class's OK latency per variant and load.
 */
import {
  CLASSES,
  OVERLOAD_DEADLINE_MS,
  OVERLOAD_SERVICE_MS,
  type OverloadPoint,
  type OverloadResult,
} from "../scenarios/scenario-overload.js";
import { POLICY_WORKERS, SLOTS } from "../scenarios/scenario-policies-fleet.js";
import { fmtSpread, mdTable, num, spread } from "./report-stats.js";
import { latencyChartSvg } from "./report-svg.js";

const uniq = <T>(xs: readonly T[]): T[] => [...new Set(xs)];

/** gRPC status names the table shows (the rest by number). */
const STATUS_NAMES: Record<string, string> = {
  "-1": "reset",
  "1": "CANCELLED",
  "4": "DEADLINE_EXCEEDED",
  "8": "RESOURCE_EXHAUSTED",
  "13": "INTERNAL",
  "14": "UNAVAILABLE",
};

function median(xs: readonly number[]): number {
  return spread(xs)?.median ?? 0;
}

function failures(ps: readonly OverloadPoint[]): string {
  const codes = uniq(ps.flatMap((p) => p.classes.flatMap((c) => Object.keys(c.statuses)))).filter(
    (k) => k !== "0",
  );
  const parts = codes.map((code) => {
    const n = median(ps.map((p) => p.classes.reduce((s, c) => s + (c.statuses[code] ?? 0), 0)));
    return `${STATUS_NAMES[code] ?? code} ${num(n)}`;
  });
  return parts.length > 0 ? parts.join(", ") : "–";
}

export function overloadMarkdown(r: OverloadResult): string {
  const parts = [
    `Workers: ${POLICY_WORKERS.map((w) => `${w.name} (${SLOTS} slots, ${OVERLOAD_SERVICE_MS * w.speed} ms)`).join(", ")}, ` +
      `each serving a call whose client has gone anyway (as Triton does); capacity ${num(r.nominalCapacity)} calls/s ` +
      `nominal, ${num(r.capacity)} measured. Open loop, ${r.seconds} s per point, deadline ${OVERLOAD_DEADLINE_MS} ms; ` +
      `${CLASSES.map((c) => `${Math.round(c.share * 100)} % of calls priority ${c.priority}`).join(", ")}, two tenants. ` +
      `Goodput = calls answered OK per second ÷ measured capacity; latency of OK calls only; "wasted" = calls the ` +
      `workers served after their client had gone, as a share of the calls offered.`,
  ];
  for (const load of uniq(r.points.map((p) => p.load))) {
    const rows = uniq(r.points.map((p) => p.variant)).flatMap((variant) => {
      const ps = r.points.filter((p) => p.load === load && p.variant === variant);
      if (ps.length === 0) return [];
      const cls = (i: number, f: (c: OverloadPoint["classes"][number]) => number) =>
        fmtSpread(spread(ps.map((p) => f(p.classes[i] as OverloadPoint["classes"][number]))));
      return [
        [
          variant,
          fmtSpread(spread(ps.map((p) => p.goodput * 100))),
          fmtSpread(spread(ps.map((p) => p.okPerSecond))),
          ...CLASSES.flatMap((_, i) => [
            cls(i, (c) => c.latency.p50Ms),
            cls(i, (c) => c.latency.p99Ms),
            cls(i, (c) => c.latency.p999Ms),
          ]),
          failures(ps),
          `${num(median(ps.map((p) => p.wasted)))} (${(median(ps.map((p) => p.wastedShare)) * 100).toFixed(1)} %)`,
        ],
      ];
    });
    parts.push(
      `### ${load}× capacity (${num(load * r.capacity)} calls/s offered)`,
      mdTable(
        [
          "variant",
          "goodput %",
          "OK /s",
          ...CLASSES.flatMap((c) => [
            `p${c.priority} p50 ms`,
            `p${c.priority} p99 ms`,
            `p${c.priority} p99.9 ms`,
          ]),
          "other outcomes (calls)",
          "wasted",
        ],
        rows,
      ),
    );
  }
  return `${parts.join("\n\n")}\n`;
}

export function overloadSvg(r: OverloadResult): string {
  const loads = uniq(r.points.map((p) => p.load));
  const variants = uniq(r.points.map((p) => p.variant));
  return latencyChartSvg({
    title: "overload: OK-call latency per priority class, variant and load (p50, p99, p99.9)",
    groups: loads.map((l) => `${l}×`),
    series: variants.flatMap((variant) =>
      CLASSES.map((c, i) => ({
        name: `${variant} p${c.priority}`,
        values: loads.map((load) => {
          const ps = r.points.filter((p) => p.load === load && p.variant === variant);
          if (ps.length === 0) return undefined;
          const of = (f: (l: OverloadPoint["classes"][number]["latency"]) => number) =>
            median(ps.map((p) => f((p.classes[i] as OverloadPoint["classes"][number]).latency)));
          return { p50Ms: of((l) => l.p50Ms), p99Ms: of((l) => l.p99Ms), p999Ms: of((l) => l.p999Ms) };
        }),
      })),
    ),
  });
}
