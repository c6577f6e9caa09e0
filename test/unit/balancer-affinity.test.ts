/**
 * Affinity with bounded load: a key sticks; once its endpoint is full (≥ ceil(factor × (total+1) / n))
 * the key moves to the next endpoint in table order; balance_factor 0 never moves a key.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Balancer } from "../../src/balancer/balancer.js";
import { EndpointSet } from "../../src/balancer/endpoint-set.js";
import { MaglevTable, hashKey } from "../../src/balancer/hash-maglev.js";
import { seededRandom } from "../../src/balancer/random-seeded.js";

const ADDRS = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"];

function setup(balanceFactor: number): { set: EndpointSet; balancer: Balancer } {
  const set = new EndpointSet("c", ADDRS.map((address) => ({ address, weight: 1 })));
  return { set, balancer: new Balancer(set, { policy: "round_robin", affinity: { balanceFactor }, random: seededRandom(1) }) };
}

function pickFor(b: Balancer, key: string): string {
  const r = b.pick({ affinityKey: key });
  assert.equal(r.kind, "complete");
  return r.kind === "complete" ? r.endpoint.address : "";
}

describe("affinity", { timeout: 10_000 }, () => {
  it("the same key always reaches the same endpoint; keys without affinity use the policy", () => {
    const { balancer } = setup(0);
    const home = pickFor(balancer, "session-1");
    for (let i = 0; i < 50; i++) assert.equal(pickFor(balancer, "session-1"), home);
    const rr = new Set(Array.from({ length: 3 }, () => {
      const r = balancer.pick({});
      return r.kind === "complete" ? r.endpoint.address : "";
    }));
    assert.equal(rr.size, 3);
  });

  it("balance_factor 0 never moves a key, whatever the load", () => {
    const { set, balancer } = setup(0);
    const home = pickFor(balancer, "hot");
    const e = set.get(home);
    assert.ok(e);
    for (let i = 0; i < 1000; i++) set.acquire(e);
    assert.equal(pickFor(balancer, "hot"), home);
  });

  it("balance_factor 1.25: a full endpoint passes the key to the next one in table order", () => {
    const { set, balancer } = setup(1.25);
    const table = new MaglevTable(set.endpoints);
    const order: string[] = [];
    table.walk(hashKey("hot"), (e) => {
      order.push(e.address);
      return false;
    });
    const [first, second] = order as [string, string];
    // Put each pick's work on its endpoint, as the data path does, and watch where "hot" goes.
    const placed: string[] = [];
    for (let i = 0; i < 12; i++) {
      const a = pickFor(balancer, "hot");
      placed.push(a);
      set.acquire(set.get(a) as NonNullable<ReturnType<typeof set.get>>);
    }
    // total before pick t = t; capacity = ceil(1.25 × (t + 1) / 3): the first endpoint takes the key
    // while its load is below that, then the second in table order.
    assert.equal(placed[0], first);
    assert.equal(placed[1], second, "after one stream the first is full: ceil(1.25 × 2 / 3) = 1");
    const loads = ADDRS.map((a) => set.activeOf(set.get(a) as NonNullable<ReturnType<typeof set.get>>));
    const cap = Math.ceil((1.25 * 12) / 3);
    for (const l of loads) assert.ok(l <= cap, `load ${l} over the bound ${cap}`);
  });
});
