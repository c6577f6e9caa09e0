/** The words of a "no endpoint" answer: drained when every endpoint is, counts for a mix. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EndpointSet } from "../../src/balancer/endpoint-set.js";
import { endpointShortage } from "../../src/balancer/endpoint-shortage.js";

const A = "10.0.0.1:1";
const B = "10.0.0.2:1";
const C = "10.0.0.3:1";

function setOf(change: (set: EndpointSet) => void): EndpointSet {
  const set = new EndpointSet(
    "x",
    [A, B, C].map((address) => ({ address, weight: 1 })),
  );
  change(set);
  return set;
}

describe("endpoint shortage", () => {
  const cases: { name: string; change: (s: EndpointSet) => void; reason: string; message: string }[] = [
    {
      name: "every endpoint drained (one also unhealthy)",
      change: (s) => {
        for (const a of [A, B, C]) s.setDrained(a, true);
        s.setHealth(A, "unhealthy");
      },
      reason: "drained",
      message: 'every endpoint of cluster "x" is drained',
    },
    {
      name: "two drained, one unhealthy",
      change: (s) => {
        s.setDrained(A, true);
        s.setDrained(B, true);
        s.setHealth(C, "unhealthy");
      },
      reason: "no_healthy_endpoint",
      message: 'no healthy endpoint in cluster "x" (2 drained, 1 unhealthy)',
    },
    {
      name: "unhealthy and ejected, none drained",
      change: (s) => {
        s.setHealth(A, "unhealthy");
        s.setHealth(B, "unhealthy");
        s.setEjected(C, true);
      },
      reason: "no_healthy_endpoint",
      message: 'no healthy endpoint in cluster "x" (2 unhealthy, 1 ejected)',
    },
    {
      name: "no endpoint at all",
      change: (s) => s.update([]),
      reason: "no_healthy_endpoint",
      message: 'no healthy endpoint in cluster "x"',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const set = setOf(c.change);
      assert.deepEqual(endpointShortage("x", set.endpoints), { reason: c.reason, message: c.message });
    });
  }
});
