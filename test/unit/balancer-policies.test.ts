/**
 * Policies, pure: exact rotations, weighted shares by simulation (100k seeded picks, absolute share
 * error ≤ 0.01), exclusion and eligibility.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Balancer } from "../../src/balancer/balancer.js";
import { EndpointSet, type Endpoint } from "../../src/balancer/endpoint-set.js";
import type { PickContext } from "../../src/balancer/picker.js";
import type { PolicyName } from "../../src/balancer/policy.js";
import { seededRandom } from "../../src/balancer/random-seeded.js";

const ADDRS = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"];
const POLICIES: PolicyName[] = ["round_robin", "weighted_round_robin", "least_connections", "p2c", "random", "ip_hash"];

function setup(policy: PolicyName, weights = [1, 1, 1], seed = 1): { set: EndpointSet; balancer: Balancer } {
  const set = new EndpointSet("c", ADDRS.map((address, i) => ({ address, weight: weights[i] ?? 1 })));
  return { set, balancer: new Balancer(set, { policy, random: seededRandom(seed) }) };
}

function pickAddress(b: Balancer, ctx: PickContext = {}): string {
  const r = b.pick(ctx);
  assert.equal(r.kind, "complete");
  return r.kind === "complete" ? r.endpoint.address : "";
}

function shares(b: Balancer, n: number, ctx: () => PickContext = () => ({})): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const a = pickAddress(b, ctx());
    counts.set(a, (counts.get(a) ?? 0) + 1);
  }
  return new Map([...counts].map(([k, v]) => [k, v / n]));
}

describe("balancer policies", { timeout: 30_000 }, () => {
  it("round_robin: 600 picks over 3 → exactly 200 each, ignoring weights", () => {
    const { balancer } = setup("round_robin", [1, 5, 9]);
    const s = shares(balancer, 600);
    for (const a of ADDRS) assert.equal(s.get(a), 1 / 3);
  });

  it("weighted_round_robin 1,2,3: exactly 100/200/300 of 600, never 3 in a row", () => {
    const { balancer } = setup("weighted_round_robin", [1, 2, 3]);
    const order = Array.from({ length: 600 }, () => pickAddress(balancer));
    const count = (a: string): number => order.filter((x) => x === a).length;
    assert.deepEqual(ADDRS.map(count), [100, 200, 300]);
    for (let i = 2; i < order.length; i++) assert.ok(!(order[i] === order[i - 1] && order[i] === order[i - 2]), `run at ${i}`);
  });

  it("least_connections: the least active / weight, ties take turns", () => {
    const { set, balancer } = setup("least_connections", [1, 1, 2]);
    const [a, b, c] = set.endpoints as [Endpoint, Endpoint, Endpoint];
    for (let i = 0; i < 3; i++) set.acquire(a);
    set.acquire(b);
    set.acquire(c);
    set.acquire(c); // c: 2 / 2 = 1 ties b: 1 / 1
    const picks = [pickAddress(balancer), pickAddress(balancer)];
    assert.deepEqual(picks.sort(), [b.address, c.address].sort(), "ties alternate between b and c");
    const idle = setup("least_connections");
    const first = [pickAddress(idle.balancer), pickAddress(idle.balancer), pickAddress(idle.balancer)];
    assert.deepEqual(first.sort(), [...ADDRS].sort(), "an idle cluster spreads");
  });

  for (const policy of ["random", "p2c"] as const) {
    it(`${policy}: weighted shares within 0.01 over 100k seeded picks`, () => {
      const { balancer } = setup(policy, [1, 2, 3], 7);
      const s = shares(balancer, 100_000);
      // p2c with no load keeps the first draw, so its shares are the weighted ones too.
      [1 / 6, 2 / 6, 3 / 6].forEach((want, i) => {
        const got = s.get(ADDRS[i] as string) ?? 0;
        assert.ok(Math.abs(got - want) <= 0.01, `${ADDRS[i]}: ${got} vs ${want}`);
      });
    });
  }

  it("p2c: of two, keeps the less loaded", () => {
    const { set, balancer } = setup("p2c", [1, 1, 1], 3);
    const [a, b] = set.endpoints as [Endpoint, Endpoint, Endpoint];
    for (let i = 0; i < 100; i++) set.acquire(a);
    for (let i = 0; i < 100; i++) set.acquire(b);
    const s = shares(balancer, 10_000);
    // c wins every draw it is part of: P(c drawn in two distinct draws) = 2/3.
    const c = s.get(ADDRS[2] as string) ?? 0;
    assert.ok(Math.abs(c - 2 / 3) <= 0.02, `c share ${c}`);
  });

  for (const policy of POLICIES) {
    it(`${policy}: never picks excluded, unhealthy, drained or ejected endpoints`, () => {
      const { set, balancer } = setup(policy);
      const [a, b, c] = set.endpoints as [Endpoint, Endpoint, Endpoint];
      const ctx = (i: number): PickContext => ({ clientAddress: `192.168.0.${i % 250}`, exclude: new Set([a]) });
      for (let i = 0; i < 300; i++) assert.notEqual(pickAddress(balancer, ctx(i)), a.address);
      set.setHealth(b.address, "unhealthy");
      for (let i = 0; i < 300; i++) assert.equal(pickAddress(balancer, ctx(i)), c.address);
      set.setHealth(b.address, "healthy");
      set.setDrained(c.address, true);
      for (let i = 0; i < 300; i++) assert.equal(pickAddress(balancer, ctx(i)), b.address);
      set.setDrained(c.address, false);
      set.setEjected(b.address, true);
      for (let i = 0; i < 300; i++) assert.equal(pickAddress(balancer, ctx(i)), c.address);
    });

    it(`${policy}: reports all_endpoints_tried and no_healthy_endpoint`, () => {
      const { set, balancer } = setup(policy);
      const all = new Set(set.endpoints);
      assert.deepEqual(balancer.pick({ clientAddress: "1.2.3.4", exclude: all }), { kind: "unavailable", reason: "all_endpoints_tried" });
      for (const e of set.endpoints) set.setHealth(e.address, "unhealthy");
      assert.deepEqual(balancer.pick({ clientAddress: "1.2.3.4" }), { kind: "unavailable", reason: "no_healthy_endpoint" });
    });
  }

  it("ip_hash: a client keeps its endpoint; ::ffff:-mapped and plain IPv4 agree; all endpoints used", () => {
    const { balancer } = setup("ip_hash");
    const used = new Set<string>();
    for (let i = 1; i <= 60; i++) {
      const ip = `127.0.0.${i}`;
      const first = pickAddress(balancer, { clientAddress: ip });
      used.add(first);
      assert.equal(pickAddress(balancer, { clientAddress: ip }), first);
    }
    assert.equal(used.size, 3);
  });

  it("a health change takes effect on the next pick (lazy rebuild)", () => {
    const { set, balancer } = setup("round_robin");
    const v = set.version;
    set.setHealth(ADDRS[0] as string, "unhealthy");
    assert.ok(set.version > v);
    for (let i = 0; i < 10; i++) assert.notEqual(pickAddress(balancer), ADDRS[0]);
  });
});
