/**
 * Slow start (`clusters[].slow_start`, src/balancer/endpoint-set.ts): an endpoint that comes back
 * (undrained, healthy again, unejected, or added after the first config) takes 10 % of its weight,
 * rising linearly to 100 % over the window; its cap ramps with it. Read on a fake clock, through
 * smooth weighted round robin, whose shares are exact.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Balancer } from "../../src/balancer/balancer.js";
import { EndpointSet, rampAt } from "../../src/balancer/endpoint-set.js";

const WINDOW = 10_000;

function fleet(now: { ms: number }) {
  const set = new EndpointSet("c", [
    { address: "127.0.0.1:1", weight: 1 },
    { address: "127.0.0.1:2", weight: 1 },
  ]);
  set.setSlowStart(WINDOW, () => now.ms);
  const balancer = new Balancer(set, { policy: "weighted_round_robin", random: Math.random });
  const shareOfB = (picks: number): number => {
    let b = 0;
    for (let i = 0; i < picks; i++) {
      const r = balancer.pick({});
      if (r.kind === "complete" && r.endpoint.address === "127.0.0.1:2") b++;
    }
    return b / picks;
  };
  return { set, shareOfB };
}

describe("slow start", { timeout: 10_000 }, () => {
  it("the formula: 10 % at the start, linear to 100 % at the end of the window", () => {
    assert.equal(rampAt(0, WINDOW), 0.1);
    assert.equal(rampAt(WINDOW / 2, WINDOW), 0.55);
    assert.equal(rampAt(WINDOW, WINDOW), 1);
    assert.equal(rampAt(123, 0), 1);
  });

  it("the first config's endpoints start at full weight", () => {
    const now = { ms: 1_000_000 };
    const { shareOfB } = fleet(now);
    assert.equal(shareOfB(1000), 0.5);
  });

  it("an undrained endpoint's share follows weight × ramp ÷ the total", () => {
    const now = { ms: 1_000_000 };
    const { set, shareOfB } = fleet(now);
    set.setDrained("127.0.0.1:2", true);
    assert.equal(shareOfB(100), 0);
    set.setDrained("127.0.0.1:2", false);
    // 0.1 against 1: 1 pick in 11.
    assert.equal(shareOfB(1100), 0.1 / 1.1);
    now.ms += WINDOW / 2; // 0.55 against 1: 55 in 155
    assert.equal(shareOfB(1550), 0.55 / 1.55);
    now.ms += WINDOW / 2;
    assert.equal(shareOfB(1000), 0.5);
    assert.equal(set.ramping, false);
  });

  it("healthy again and back from an ejection ramp too; the cap ramps with the weight", () => {
    const now = { ms: 1_000_000 };
    const { set } = fleet(now);
    set.setCaps(new Map(), 20);
    const b = set.get("127.0.0.1:2");
    assert.ok(b);
    set.setHealth(b.address, "unhealthy");
    set.setHealth(b.address, "healthy");
    assert.equal(b.weight, 0.1);
    assert.equal(set.capOf(b), 2);
    now.ms += WINDOW / 2;
    set.refreshRamps();
    assert.equal(b.weight, 0.55);
    assert.equal(set.capOf(b), 11);
    now.ms += WINDOW;
    set.refreshRamps();
    assert.equal(set.capOf(b), 20);
    set.setEjected(b.address, true);
    set.setEjected(b.address, false);
    assert.equal(b.weight, 0.1);
    assert.equal(b.configuredWeight, 1);
  });

  it("an endpoint added by a later update ramps; with slow_start 0 nothing does", () => {
    const now = { ms: 1_000_000 };
    const { set } = fleet(now);
    set.update([
      { address: "127.0.0.1:1", weight: 1 },
      { address: "127.0.0.1:2", weight: 1 },
      { address: "127.0.0.1:3", weight: 4 },
    ]);
    assert.equal(set.get("127.0.0.1:3")?.weight, 0.4);
    set.setSlowStart(0);
    assert.equal(set.get("127.0.0.1:3")?.weight, 4);
    set.setDrained("127.0.0.1:1", true);
    set.setDrained("127.0.0.1:1", false);
    assert.equal(set.get("127.0.0.1:1")?.weight, 1);
  });
});
