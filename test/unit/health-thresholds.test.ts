import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HealthThresholds, type ProbeResult } from "../../src/health/health-thresholds.js";

describe("health thresholds", { timeout: 10_000 }, () => {
  const cases: {
    name: string;
    healthy: number;
    unhealthy: number;
    results: ProbeResult[];
    states: string[];
  }[] = [
    {
      name: "starts healthy; one failure is pending",
      healthy: 2,
      unhealthy: 3,
      results: ["failure"],
      states: ["healthy"],
    },
    {
      name: "exactly unhealthy_threshold failures in a row",
      healthy: 2,
      unhealthy: 3,
      results: ["failure", "failure", "failure"],
      states: ["healthy", "healthy", "unhealthy"],
    },
    {
      name: "a success resets the failure streak",
      healthy: 2,
      unhealthy: 3,
      results: ["failure", "failure", "success", "failure", "failure", "failure"],
      states: ["healthy", "healthy", "healthy", "healthy", "healthy", "unhealthy"],
    },
    {
      name: "back to healthy after exactly healthy_threshold successes",
      healthy: 2,
      unhealthy: 1,
      results: ["failure", "success", "failure", "success", "success"],
      states: ["unhealthy", "unhealthy", "unhealthy", "unhealthy", "healthy"],
    },
    {
      name: "threshold 1 flips on every disagreeing result",
      healthy: 1,
      unhealthy: 1,
      results: ["failure", "success"],
      states: ["unhealthy", "healthy"],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const t = new HealthThresholds({ healthy: c.healthy, unhealthy: c.unhealthy });
      const states = c.results.map((r) => {
        t.observe(r);
        return t.state;
      });
      assert.deepEqual(states, c.states);
    });
  }

  it("reports changed / unchanged / pending transitions", () => {
    const t = new HealthThresholds({ healthy: 2, unhealthy: 2 });
    assert.deepEqual(t.observe("success"), { kind: "unchanged" });
    assert.deepEqual(t.observe("failure"), { kind: "pending", streak: 1, threshold: 2 });
    assert.deepEqual(t.observe("failure"), { kind: "changed", to: "unhealthy" });
    assert.deepEqual(t.observe("failure"), { kind: "unchanged" });
  });

  it("refuses thresholds below 1", () => {
    assert.throws(() => new HealthThresholds({ healthy: 0, unhealthy: 1 }), RangeError);
  });
});
