/**
 * The Grafana dashboard queries only metrics Fulcrum registers: every `fulcrum_*` / `process_*` name
 * in its PromQL exists in a fresh registry (histogram series by their base name).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { createMetrics } from "../../src/metrics/metrics.js";
import { CONTRACT_METRICS } from "../helpers/contract-metrics.js";
import { repoRoot } from "../helpers/repo-root.js";

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

describe("grafana dashboard", { timeout: 10_000 }, () => {
  const dashboard = JSON.parse(
    readFileSync(join(repoRoot(), "deploy/grafana/fulcrum-dashboard.json"), "utf8"),
  ) as { panels: Panel[]; uid: string };

  it("every metric a panel queries exists in the registry", async () => {
    const registry = new Registry();
    createMetrics(registry);
    const registered = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
    const queried = new Set<string>();
    for (const panel of dashboard.panels) {
      assert.ok(panel.targets && panel.targets.length > 0, `panel "${panel.title}" has no query`);
      for (const t of panel.targets) {
        for (const m of t.expr.matchAll(/\b((?:fulcrum|process)_[a-z_]+)\b/g)) queried.add(m[1] as string);
      }
    }
    assert.ok(queried.size >= 15, `only ${queried.size} metrics queried`);
    for (const name of queried) {
      const base = name.replace(/_(bucket|sum|count)$/, "");
      assert.ok(registered.has(name) || registered.has(base), `${name} is not registered`);
    }
  });

  it("covers every metric of docs/architecture.md's table", () => {
    const text = JSON.stringify(dashboard);
    for (const name of CONTRACT_METRICS) {
      assert.ok(text.includes(name), `${name} is on no panel`);
    }
  });
});
