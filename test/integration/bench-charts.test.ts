/**
 * The bench's SVG charts, rendered for real: fresh charts from fixed measurements (no load), each
 * loaded in headless Debian chromium (playwright-core, no browser download), screenshotted to a PNG
 * under the git-ignored test-artifacts/, and checked: the SVG parses, has a size, and has one series
 * (`data-series`) per target or policy.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser } from "playwright-core";
import { overheadSvg } from "../../bench/report/report-overhead.js";
import { policiesSvg } from "../../bench/report/report-policies.js";
import type { OverheadMeasurement } from "../../bench/scenarios/scenario-overhead.js";
import { CAPACITY, POLICY_WORKERS, type PolicyPoint } from "../../bench/scenarios/scenario-policies-fleet.js";
import type { TargetName } from "../../bench/targets/target.js";
import { repoRoot } from "../helpers/repo-root.js";

const TARGETS: TargetName[] = ["direct", "fulcrum", "haproxy", "nginx"];
const ROWS = ["tcp-bulk-1", "tcp-rr", "tcp-connect", "grpc-unary-8x16", "grpc-unary-1x1", "grpc-stream"];
const POLICIES = [
  "fulcrum round_robin",
  "fulcrum least_connections",
  "fulcrum p2c",
  "fulcrum random",
  "haproxy roundrobin",
  "haproxy leastconn",
];

function overheadData(): OverheadMeasurement[] {
  return ROWS.flatMap((row, ri) =>
    TARGETS.map((target, ti) => ({
      row,
      target,
      launch: 0,
      rep: 0,
      throughput: 1000 * (ri + 1),
      p50Ms: row.startsWith("tcp-bulk") ? undefined : 0.1 * (ri + 1) * (ti + 1),
      p99Ms: row.startsWith("tcp-bulk") ? undefined : 0.5 * (ri + 1) * (ti + 1),
      cpu: target === "direct" ? undefined : 10 * (ti + 1),
      errors: 0,
      problems: [],
    })),
  );
}

function policyData(): PolicyPoint[] {
  return ["50 %", "80 %", "95 %", "closed 32"].flatMap((load, li) =>
    POLICIES.map((policy, pi) => ({
      policy,
      load,
      rep: 0,
      offered: li < 3 ? CAPACITY * [0.5, 0.8, 0.95][li]! : undefined,
      throughput: 600 + li * 200,
      latency: {
        count: 1000,
        meanMs: 12,
        p50Ms: 10 + pi,
        p90Ms: 20,
        p99Ms: 40 + 30 * pi * (li + 1),
        p999Ms: 60 + 40 * pi * (li + 1),
        maxMs: 500,
      },
      errors: 0,
      shares: [0.3, 0.3, 0.3, 0.1],
    })),
  );
}

describe("bench SVG charts in chromium", { timeout: 120_000 }, () => {
  let browser: Browser;
  const dir = join(repoRoot(), "test-artifacts", "bench-charts");

  before(async () => {
    mkdirSync(dir, { recursive: true });
    browser = await chromium.launch({
      executablePath: process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });

  after(async () => {
    await browser?.close();
  });

  const charts = [
    { name: "overhead", svg: () => overheadSvg(overheadData()), series: TARGETS },
    {
      name: "policies",
      svg: () =>
        policiesSvg({
          nominalCapacity: CAPACITY,
          capacity: CAPACITY,
          workers: POLICY_WORKERS,
          seconds: 20,
          points: policyData(),
          problems: [],
        }),
      series: POLICIES,
    },
  ];

  for (const chart of charts) {
    it(`${chart.name}.svg parses, has a size and one series per ${chart.name === "overhead" ? "target" : "policy"}`, async () => {
      const svg = chart.svg();
      const file = join(dir, `${chart.name}.svg`);
      writeFileSync(file, svg);
      const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
      try {
        // Evaluated in the page (this project compiles without the DOM lib, so as source text).
        const parsed = await page.evaluate<{ error: string | null; root: string }>(
          `(() => { const doc = new DOMParser().parseFromString(${JSON.stringify(svg)}, "image/svg+xml");
            return { error: doc.querySelector("parsererror")?.textContent ?? null, root: doc.documentElement.nodeName }; })()`,
        );
        assert.equal(parsed.error, null);
        assert.equal(parsed.root, "svg");
        await page.goto(`file://${file}`);
        const seen = await page.evaluate<{ width: number; height: number; series: string[]; bars: number }>(
          `(() => { const box = document.querySelector("svg")?.getBoundingClientRect();
            return { width: box?.width ?? 0, height: box?.height ?? 0,
              series: [...document.querySelectorAll("[data-series]")].map((e) => e.getAttribute("data-series")),
              bars: document.querySelectorAll("[data-series] rect").length }; })()`,
        );
        assert.ok(seen.width > 0 && seen.height > 0, `size ${seen.width}×${seen.height}`);
        assert.deepEqual(seen.series, chart.series);
        assert.ok(seen.bars > chart.series.length, "bars drawn");
        const png = await page.locator("svg").screenshot({ path: join(dir, `${chart.name}.png`) });
        assert.deepEqual([...png.subarray(1, 4)].map((b) => String.fromCharCode(b)).join(""), "PNG");
      } finally {
        await page.close();
      }
    });
  }
});
