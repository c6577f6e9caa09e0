/**
 * Per-model readiness (src/health/model-readiness.ts): the same threshold semantics as endpoint
 * health, per endpoint and model, table-driven; reload and membership changes; the queries model-aware
 * routing uses; and the health checker feeding it from a scripted prober (triton-shaped outcomes).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { EndpointSet } from "../../src/balancer/endpoint-set.js";
import { ModelReadiness, type ModelRef } from "../../src/health/model-readiness.js";
import { HealthChecker } from "../../src/health/health-checker.js";
import type { ProbeResult } from "../../src/health/health-thresholds.js";
import type { ProbeOutcome, Prober } from "../../src/health/prober.js";
import { createMetrics } from "../../src/metrics/metrics.js";
import { memoryLogger, waitFor } from "../helpers/harness.js";

const RESNET: ModelRef = { name: "resnet", version: "" };
const BERT: ModelRef = { name: "bert", version: "2" };
const A = "10.0.0.1:8001";
const B = "10.0.0.2:8001";

describe("model readiness", { timeout: 20_000 }, () => {
  const cases: {
    name: string;
    healthy: number;
    unhealthy: number;
    results: ProbeResult[];
    ready: boolean[];
  }[] = [
    {
      name: "starts ready; one failure is pending",
      healthy: 2,
      unhealthy: 3,
      results: ["failure"],
      ready: [true],
    },
    {
      name: "exactly unhealthy_threshold failures make it not ready",
      healthy: 2,
      unhealthy: 3,
      results: ["failure", "failure", "failure"],
      ready: [true, true, false],
    },
    {
      name: "a success resets the failure streak",
      healthy: 2,
      unhealthy: 2,
      results: ["failure", "success", "failure", "failure"],
      ready: [true, true, true, false],
    },
    {
      name: "back to ready after exactly healthy_threshold successes",
      healthy: 3,
      unhealthy: 1,
      results: ["failure", "success", "success", "failure", "success", "success", "success"],
      ready: [false, false, false, false, false, false, true],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = new ModelReadiness({ healthy: c.healthy, unhealthy: c.unhealthy }, [RESNET, BERT]);
      const ready = c.results.map((result) => {
        r.observe(A, RESNET, result);
        return r.isReady(A, RESNET);
      });
      assert.deepEqual(ready, c.ready);
      // Per model and per endpoint: nothing else moved.
      assert.equal(r.isReady(A, BERT), true);
      assert.equal(r.isReady(B, RESNET), true);
    });
  }

  it("answers which endpoints have a model ready, and bumps the version only on changes", () => {
    const r = new ModelReadiness({ healthy: 1, unhealthy: 1 }, [RESNET, BERT]);
    const endpoints = [{ address: A }, { address: B }];
    const v0 = r.version;
    let notified = 0;
    r.onChange(() => notified++);
    assert.equal(r.observe(A, BERT, "success").kind, "unchanged");
    assert.equal(r.version, v0);
    assert.deepEqual(r.observe(A, BERT, "failure"), { kind: "changed", to: "unhealthy" });
    assert.equal(r.version, v0 + 1);
    assert.equal(notified, 1);
    assert.deepEqual(
      r.readyEndpoints(BERT, endpoints).map((e) => e.address),
      [B],
    );
    assert.deepEqual(
      r.readyEndpoints(RESNET, endpoints).map((e) => e.address),
      [A, B],
    );
    assert.deepEqual([...r.notReady(BERT)], [A]);
    assert.deepEqual(r.stateOf(A), [
      { name: "resnet", version: "", ready: true },
      { name: "bert", version: "2", ready: false },
    ]);
    // Versions are part of the model's identity.
    assert.equal(r.isReady(A, { name: "bert", version: "" }), true);
    assert.equal(r.tracks({ name: "bert", version: "" }), false);
  });

  it("ignores results for models that are not configured", () => {
    const r = new ModelReadiness({ healthy: 1, unhealthy: 1 }, [RESNET]);
    const other = { name: "other", version: "" };
    assert.equal(r.observe(A, other, "failure").kind, "unchanged");
    assert.equal(r.isReady(A, other), true);
    assert.equal(r.notReady(other).size, 0);
  });

  it("reload: kept models keep their state under new thresholds, new ones start ready, removed ones go", () => {
    const r = new ModelReadiness({ healthy: 1, unhealthy: 1 }, [RESNET, BERT]);
    r.observe(A, RESNET, "failure");
    r.observe(A, BERT, "failure");
    const llama = { name: "llama", version: "" };
    const v = r.version;
    r.configure([RESNET, llama], { healthy: 2, unhealthy: 2 });
    assert.ok(r.version > v);
    assert.deepEqual(r.models, [RESNET, llama]);
    assert.equal(r.isReady(A, RESNET), false);
    assert.equal(r.isReady(A, llama), true);
    assert.equal(r.tracks(BERT), false);
    assert.equal(r.isReady(A, BERT), true);
    // The new healthy threshold (2) applies to the kept state.
    r.observe(A, RESNET, "success");
    assert.equal(r.isReady(A, RESNET), false);
    r.observe(A, RESNET, "success");
    assert.equal(r.isReady(A, RESNET), true);
  });

  it("an endpoint that leaves is forgotten; if it returns its models start ready", () => {
    const r = new ModelReadiness({ healthy: 1, unhealthy: 1 }, [RESNET]);
    r.observe(A, RESNET, "failure");
    r.observe(B, RESNET, "failure");
    r.syncEndpoints([B]);
    assert.equal(r.isReady(A, RESNET), true);
    assert.equal(r.isReady(B, RESNET), false);
  });

  it("refuses thresholds below 1", () => {
    assert.throws(() => new ModelReadiness({ healthy: 0, unhealthy: 1 }), RangeError);
  });

  it("the health checker counts per-model results; a failed server keeps the models' state", async () => {
    const set = new EndpointSet("c", [{ address: A, weight: 1 }]);
    const models = new ModelReadiness({ healthy: 1, unhealthy: 2 }, [RESNET, BERT]);
    // One scripted outcome per probe; the last one repeats.
    const script: ProbeOutcome[] = [
      {
        result: "success",
        models: [
          { model: RESNET, result: "success" },
          { model: BERT, result: "failure" },
        ],
      },
      {
        result: "success",
        models: [
          { model: RESNET, result: "success" },
          { model: BERT, result: "failure" },
        ],
      },
      { result: "failure", reason: "not ready" },
      { result: "failure", reason: "not ready" },
      { result: "failure", reason: "not ready" },
    ];
    let probes = 0;
    const prober: Prober = {
      probe: () => Promise.resolve(script[Math.min(probes++, script.length - 1)] as ProbeOutcome),
      close: () => {},
    };
    const { log } = memoryLogger();
    const checker = new HealthChecker(
      set,
      prober,
      { intervalMs: 10, timeoutMs: 10, healthy: 1, unhealthy: 2 },
      log,
      createMetrics(new Registry(), { processMetrics: false }),
      models,
    );
    try {
      checker.sync();
      await waitFor(() => probes >= 5, 5000, "five probes");
      assert.equal(set.get(A)?.health, "unhealthy");
      assert.equal(models.isReady(A, RESNET), true);
      assert.equal(models.isReady(A, BERT), false, "two BERT failures before the server failed");
    } finally {
      checker.stop();
    }
  });
});
