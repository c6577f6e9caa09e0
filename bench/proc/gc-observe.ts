/**
 * A preload for diagnosing garbage collection in a Fulcrum the bench starts: counts V8's
 * collections by kind and their pause time (perf_hooks "gc" entries) from `FULCRUM_GC_SKIP_MS`
 * (default 3000, past start-up and the JIT's warm-up) until the process exits, then writes them as
 * JSON to the file named by `FULCRUM_GC_STATS`. Loaded through the bench's `--node-flags`, e.g.
 *
 *   FULCRUM_GC_STATS=gc.json npm run bench -- overhead --rows grpc-unary-8x16 \
 *     --targets fulcrum --node-flags="--import=./dist/bench/proc/gc-observe.js \
 *     --min-semi-space-size=8 --max-semi-space-size=8"
 *
 * (the product's NODE_FLAGS repeated, since --node-flags replaces them). Scavenges that take
 * milliseconds each point to objects surviving the young generation; bench/RESULTS.md (2026-12-03,
 * "scavenges that kept everything") shows how that was found and fixed.
 */
import { writeFileSync } from "node:fs";
import { PerformanceObserver, constants } from "node:perf_hooks";

const file = process.env["FULCRUM_GC_STATS"];
const skipMs = Number(process.env["FULCRUM_GC_SKIP_MS"] ?? 3000);

const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: "scavenge",
  [constants.NODE_PERFORMANCE_GC_MAJOR]: "mark_compact",
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental_marking",
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weak_callbacks",
};

if (file) {
  const totals: Record<string, { count: number; ms: number }> = {};
  let counting = false;
  const from = performance.now();
  setTimeout(() => (counting = true), skipMs).unref();
  const observer = new PerformanceObserver((list) => {
    if (!counting) return;
    for (const entry of list.getEntries()) {
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? -1;
      const t = (totals[KINDS[kind] ?? `kind_${kind}`] ??= { count: 0, ms: 0 });
      t.count++;
      t.ms += entry.duration;
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  process.on("exit", () => {
    const seconds = (performance.now() - from - skipMs) / 1000;
    writeFileSync(file, JSON.stringify({ seconds: Math.max(0, seconds), ...totals }, null, 2));
  });
}
