/**
 * The `policies` report: per load level, one row per policy with throughput, p50, p99, p99.9, errors
 * and each worker's share of the calls (medians over repetitions); and the chart of latency
 * percentiles per policy at every load level.
 */
import type { PoliciesResult } from "../scenarios/scenario-policies.js";
import { DEADLINE_MS, SERVICE_MS, SLOTS, type PolicyPoint } from "../scenarios/scenario-policies-fleet.js";
import { OUTSIDE_SERVICE_MS } from "../scenarios/scenario-outside.js";
import { fmtSpread, mdTable, num, spread } from "./report-stats.js";
import { latencyChartSvg } from "./report-svg.js";

const uniq = <T>(xs: readonly T[]): T[] => [...new Set(xs)];

function med(points: readonly PolicyPoint[], f: (p: PolicyPoint) => number): number | undefined {
  return spread(points.map(f))?.median;
}

export function policiesMarkdown(r: PoliciesResult): string {
  const parts: string[] = [];
  if (r.points.length > 0) parts.push(...unequalMarkdown(r));
  const o = r.outside;
  if (o)
    parts.push(
      `## Outside load\n\nWorkers: ${o.workers.join(", ")}, each ${SLOTS} slots, ${OUTSIDE_SERVICE_MS} ms, Triton-shaped, ` +
        `with the queue gauge \`nv_inference_pending_request_count\` (Fulcrum \`least_loaded\` scrapes it every 500 ms); ` +
        `capacity ${num(o.capacity)} calls/s measured. Other clients send ${num(o.outsideRate)} calls/s straight to ` +
        `${o.workers[0]}, invisible to the proxy's own counts. Open loop through the proxy at fractions of the ` +
        `capacity left (8 connections, ${o.seconds} s per point); latency and shares are the proxied calls' only.`,
      ...loadTables(o.points, o.workers),
    );
  return `${parts.join("\n\n")}\n`;
}

function unequalMarkdown(r: PoliciesResult): string[] {
  return [
    `Workers: ${r.workers.map((w) => `${w.name} (${SLOTS} slots, ${SERVICE_MS * w.speed} ms)`).join(", ")}; ` +
      `capacity Σ slots ÷ service time = ${num(r.nominalCapacity)} calls/s nominal, ${num(r.capacity)} measured ` +
      `(each worker saturated directly; the loads below are fractions of the measured figure). Open loop: 8 connections from one client, ${r.seconds} s per point, ` +
      `latency from each call's intended send time; closed loop: 1 connection, 32 calls in flight, ` +
      `${Math.max(1, r.seconds / 2)} s. Deadline ${DEADLINE_MS} ms: a call past it is an error, recorded at its latency.`,
    ...loadTables(
      r.points,
      r.workers.map((w) => w.name),
    ),
  ];
}

/** Per load form, one row per policy: medians (min–max) over the repetitions. */
function loadTables(points: readonly PolicyPoint[], workers: readonly string[]): string[] {
  const loads = uniq(points.map((p) => p.load));
  const policies = uniq(points.map((p) => p.policy));
  const parts: string[] = [];
  for (const load of loads) {
    const rows = policies.flatMap((policy) => {
      const ps = points.filter((p) => p.load === load && p.policy === policy);
      if (ps.length === 0) return [];
      const offered = ps[0]?.offered;
      return [
        [
          policy,
          offered === undefined ? "–" : num(offered),
          fmtSpread(spread(ps.map((p) => p.throughput))),
          fmtSpread(spread(ps.map((p) => p.latency.p50Ms))),
          fmtSpread(spread(ps.map((p) => p.latency.p99Ms))),
          fmtSpread(spread(ps.map((p) => p.latency.p999Ms))),
          num(med(ps, (p) => p.errors)),
          workers.map((_, i) => `${Math.round((med(ps, (p) => p.shares[i] ?? 0) ?? 0) * 100)}`).join(" / "),
        ],
      ];
    });
    parts.push(
      `### ${load === "closed 32" ? "closed loop, 32 in flight" : `${load} of capacity${load.startsWith("outside") ? " left" : ""}`}`,
      mdTable(
        [
          "policy",
          "offered /s",
          "answered OK /s",
          "p50 ms",
          "p99 ms",
          "p99.9 ms",
          "errors",
          `share % (${workers.join(" / ")})`,
        ],
        rows,
      ),
    );
  }
  return parts;
}

export function policiesSvg(r: PoliciesResult): string {
  const points = [...r.points, ...(r.outside?.points ?? [])];
  const loads = uniq(points.map((p) => p.load));
  return latencyChartSvg({
    title: "policies: latency per policy and load (p50, p99, p99.9)",
    groups: loads,
    series: uniq(points.map((p) => p.policy)).map((policy) => ({
      name: policy,
      values: loads.map((load) => {
        const ps = points.filter((p) => p.load === load && p.policy === policy);
        if (ps.length === 0) return undefined;
        return {
          p50Ms: med(ps, (p) => p.latency.p50Ms) ?? 0,
          p99Ms: med(ps, (p) => p.latency.p99Ms) ?? 0,
          p999Ms: med(ps, (p) => p.latency.p999Ms),
        };
      }),
    })),
  });
}
