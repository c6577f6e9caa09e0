/**
 * The `llm` report: one row per variant with the workers' prefix-cache hit rate, time to first token
 * p50 / p99, output tokens per second and the per-worker spread (medians over repetitions, with
 * min–max), the ratios the bar reads (prefix affinity's hit rate over least_connections', its
 * TTFT p99 against each other variant), and the chart of TTFT per variant.
 */
import {
  LLM_CACHE_BLOCKS,
  MESSAGE_BYTES,
  SYSTEM_BYTES,
  THINK_MS,
  LLM_MS_PER_TOKEN,
  LLM_SLOTS,
  LLM_TOKENS,
  LLM_WORKERS,
  SYSTEM_PROMPTS,
  TURNS,
  type LlmPoint,
  type LlmResult,
} from "../scenarios/scenario-llm.js";
import { STREAM_TOKENS, STREAM_WINDOW, type LlmStreamPoint } from "../scenarios/scenario-llm-stream.js";
import { fmtSpread, mdTable, num, spread } from "./report-stats.js";
import { latencyChartSvg } from "./report-svg.js";

const uniq = <T>(xs: readonly T[]): T[] => [...new Set(xs)];

function of(r: LlmResult, variant: string): LlmPoint[] {
  return r.points.filter((p) => p.variant === variant);
}

function med(ps: readonly LlmPoint[], f: (p: LlmPoint) => number): number | undefined {
  return spread(ps.map(f))?.median;
}

export function llmMarkdown(r: LlmResult): string {
  const variants = uniq(r.points.map((p) => p.variant));
  const rows = variants.map((v) => {
    const ps = of(r, v);
    return [
      v,
      fmtSpread(spread(ps.map((p) => p.hitRate * 100))),
      fmtSpread(spread(ps.map((p) => p.ttft.p50Ms))),
      fmtSpread(spread(ps.map((p) => p.ttft.p99Ms))),
      fmtSpread(spread(ps.map((p) => p.tokensPerSecond))),
      fmtSpread(spread(ps.map((p) => p.spread))),
      num(med(ps, (p) => p.failed)),
    ];
  });
  const fleet = [
    `Fleet: ${LLM_WORKERS} simulated LLM servers, ${LLM_SLOTS} requests generating at once each, ` +
      `${LLM_MS_PER_TOKEN} ms per token, ${LLM_TOKENS} tokens per turn, 1 ms of prefill per uncached ` +
      `64-byte block (${LLM_CACHE_BLOCKS}-block prefix cache per server, keeping prompts and answers). ` +
      `Workload: ${SYSTEM_PROMPTS} system prompts of ${SYSTEM_BYTES} bytes, ${r.sessionRate} sessions/s ` +
      `for ${r.seconds} s, ${TURNS} turns each with a ${MESSAGE_BYTES}-byte question and ${THINK_MS} ms ` +
      "between an answer and the next question (seeded).",
  ];
  if (r.points.length === 0) return [...fleet, "", ...streamMarkdown(r)].join("\n") + "\n";
  const out = [
    ...fleet,
    "",
    mdTable(
      [
        "variant",
        "cache hit rate %",
        "TTFT p50 ms",
        "TTFT p99 ms",
        "tokens/s",
        "busiest worker ÷ mean",
        "failed turns",
      ],
      rows,
    ),
  ];
  const prefix = of(r, "fulcrum prefix affinity");
  if (prefix.length > 0) {
    const hit = med(prefix, (p) => p.hitRate) ?? 0;
    const p99 = med(prefix, (p) => p.ttft.p99Ms) ?? 0;
    const lines = variants
      .filter((v) => v !== "fulcrum prefix affinity")
      .map((v) => {
        const ps = of(r, v);
        const otherHit = med(ps, (p) => p.hitRate) ?? 0;
        const otherP99 = med(ps, (p) => p.ttft.p99Ms) ?? 0;
        return `- against ${v}: cache hit rate ×${num(otherHit > 0 ? hit / otherHit : Infinity)}, TTFT p99 ${num(otherP99 > 0 ? (1 - p99 / otherP99) * 100 : 0)} % lower`;
      });
    out.push("", "Prefix affinity:", ...lines);
  }
  if (r.streams.length > 0) out.push("", ...streamMarkdown(r));
  return out.join("\n") + "\n";
}

/** The single-stream table and per_request's throughput over per_stream's. */
function streamMarkdown(r: LlmResult): string[] {
  const variants = uniq(r.streams.map((p) => p.variant));
  const ofStream = (v: string): LlmStreamPoint[] => r.streams.filter((p) => p.variant === v);
  const rows = variants.map((v) => {
    const ps = ofStream(v);
    const perWorker = ps[ps.length - 1]?.perWorker.join("/") ?? "";
    return [
      v,
      fmtSpread(spread(ps.map((p) => p.requestsPerSecond))),
      fmtSpread(spread(ps.map((p) => p.tokensPerSecond))),
      perWorker,
      num(spread(ps.map((p) => p.failed))?.median),
    ];
  });
  const out = [
    `One client stream (ModelStreamInfer, ${STREAM_WINDOW} requests outstanding, ${STREAM_TOKENS} tokens each, ` +
      "Fulcrum least_connections over the same fleet):",
    "",
    mdTable(["variant", "requests/s", "tokens/s", "requests per worker (last run)", "failed"], rows),
  ];
  const whole = spread(ofStream("one stream, per_stream").map((p) => p.requestsPerSecond))?.median;
  const split = spread(ofStream("one stream, per_request").map((p) => p.requestsPerSecond))?.median;
  if (whole !== undefined && split !== undefined && whole > 0)
    out.push(
      "",
      `Per-request balancing: ×${num(split / whole)} the single stream's throughput of per_stream.`,
    );
  return out;
}

export function llmSvg(r: LlmResult): string {
  const variants = uniq(r.points.map((p) => p.variant));
  return latencyChartSvg({
    title: "llm: time to first token (median of repetitions)",
    groups: ["TTFT"],
    series: variants.map((v) => {
      const ps = of(r, v);
      return {
        name: v,
        values: [{ p50Ms: med(ps, (p) => p.ttft.p50Ms) ?? 0, p99Ms: med(ps, (p) => p.ttft.p99Ms) ?? 0 }],
      };
    }),
  });
}
