/**
 * Affinity over Maglev with bounded load: a key sticks to its endpoint; with balance_factor ≥ 1 a full
 * endpoint (active ≥ ceil(factor × (total + 1) / eligible)) passes the key to the next endpoint in table
 * order; balance_factor 0 never moves a key.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createAffinityPicker } from "../../src/balancer/affinity.js";
import { Balancer, snapshotOf } from "../../src/balancer/balancer.js";
import { EndpointSet, type Endpoint } from "../../src/balancer/endpoint-set.js";
import { MaglevTable, maglevKeyHash } from "../../src/balancer/hash-maglev.js";
import type { PickContext } from "../../src/balancer/picker.js";
import { seededRandom } from "../../src/balancer/random-seeded.js";

const ADDRS = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"];
const HOT = "session-hot";

interface Setup {
  readonly set: EndpointSet;
  readonly balancer: Balancer;
  /** The endpoints in HOT's table order: its owner first. */
  readonly order: readonly [Endpoint, Endpoint, Endpoint];
}

function setup(balanceFactor: number): Setup {
  const set = new EndpointSet(
    "c",
    ADDRS.map((address) => ({ address, weight: 1 })),
  );
  const balancer = new Balancer(set, {
    policy: "round_robin",
    affinity: { balanceFactor },
    random: seededRandom(1),
  });
  const order = [...new MaglevTable(set.endpoints).walk(maglevKeyHash(HOT))] as [
    Endpoint,
    Endpoint,
    Endpoint,
  ];
  return { set, balancer, order };
}

function pickFor(b: Balancer, ctx: PickContext): Endpoint {
  const r = b.pick(ctx);
  assert.equal(r.kind, "complete", JSON.stringify(r));
  return (r as { endpoint: Endpoint }).endpoint;
}

function load(set: EndpointSet, e: Endpoint, n: number): void {
  for (let i = 0; i < n; i++) set.acquire(e);
}

describe("affinity", { timeout: 30_000 }, () => {
  it("the same key always reaches the same endpoint; picks without a key use the policy", () => {
    const { balancer, order } = setup(0);
    for (let i = 0; i < 50; i++) assert.equal(pickFor(balancer, { affinityKey: HOT }), order[0]);
    const keyless = new Set(Array.from({ length: 3 }, () => pickFor(balancer, {}).address));
    assert.equal(keyless.size, 3);
  });

  it("keys spread over all endpoints", () => {
    const { balancer } = setup(0);
    const used = new Set(
      Array.from({ length: 300 }, (_, i) => pickFor(balancer, { affinityKey: `s-${i}` }).address),
    );
    assert.equal(used.size, 3);
  });

  // HOT's endpoints in table order are [first, second, third]; loads are set before the pick.
  const cases: {
    name: string;
    factor: number;
    loads: [number, number, number];
    exclude?: number[];
    drained?: number;
    want: number;
  }[] = [
    { name: "idle: the owner (capacity ceil(1.25 × 1 / 3) = 1)", factor: 1.25, loads: [0, 0, 0], want: 0 },
    { name: "owner full at 1 of capacity ceil(1.25 × 2 / 3) = 1", factor: 1.25, loads: [1, 0, 0], want: 1 },
    { name: "owner below capacity ceil(1.25 × 3 / 3) = 2", factor: 1.25, loads: [1, 1, 0], want: 0 },
    {
      name: "owner full at 2 of capacity ceil(1.25 × 4 / 3) = 2; next has room",
      factor: 1.25,
      loads: [2, 1, 0],
      want: 1,
    },
    {
      name: "owner and next full (capacity ceil(1.25 × 9 / 3) = 4)",
      factor: 1.25,
      loads: [4, 4, 0],
      want: 2,
    },
    { name: "factor 2: owner below capacity ceil(2 × 9 / 3) = 6", factor: 2, loads: [5, 3, 0], want: 0 },
    { name: "factor 2: owner full at 6", factor: 2, loads: [6, 2, 0], want: 1 },
    {
      name: "all non-excluded full: the first usable in table order",
      factor: 1.25,
      loads: [4, 4, 0],
      exclude: [2],
      want: 0,
    },
    {
      name: "excluded owner: the next in table order",
      factor: 1.25,
      loads: [0, 0, 0],
      exclude: [0],
      want: 1,
    },
    { name: "drained owner: the next in table order", factor: 1.25, loads: [0, 0, 0], drained: 0, want: 1 },
    { name: "factor 0: a loaded owner keeps the key", factor: 0, loads: [1000, 0, 0], want: 0 },
    {
      name: "factor 0: excluded owner, next in table order",
      factor: 0,
      loads: [1000, 0, 0],
      exclude: [0],
      want: 1,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { set, balancer, order } = setup(c.factor);
      c.loads.forEach((n, i) => load(set, order[i] as Endpoint, n));
      if (c.drained !== undefined) set.setDrained((order[c.drained] as Endpoint).address, true);
      const exclude = c.exclude ? new Set(c.exclude.map((i) => order[i] as Endpoint)) : undefined;
      assert.equal(
        pickFor(balancer, { affinityKey: HOT, exclude }).address,
        (order[c.want] as Endpoint).address,
      );
    });
  }

  it("balance_factor 1.25: once the hot key's endpoint is full, the next in table order gets it", () => {
    const { set, balancer, order } = setup(1.25);
    const [first, second, third] = order;
    const placed: Endpoint[] = [];
    for (let t = 0; t < 30; t++) {
      const e = pickFor(balancer, { affinityKey: HOT });
      const capacity = Math.ceil((1.25 * (t + 1)) / 3);
      // The walk passes over full endpoints only: the pick is the first in table order with room.
      const expected = order.find((x) => set.activeOf(x) < capacity);
      assert.equal(e, expected, `pick ${t}`);
      placed.push(e);
      set.acquire(e);
    }
    assert.equal(placed[0], first);
    assert.equal(placed[1], second, "after one, the owner is full: ceil(1.25 × 2 / 3) = 1");
    assert.ok(placed.includes(third));
    // Nobody went above the bound for the final total.
    const bound = Math.ceil((1.25 * 30) / 3);
    for (const e of order) assert.ok(set.activeOf(e) <= bound, `${e.address}: ${set.activeOf(e)} > ${bound}`);
    // The owner still gets the key whenever it has room: it holds the most.
    assert.ok(set.activeOf(first) >= set.activeOf(second) && set.activeOf(second) >= set.activeOf(third));
  });

  it("balance_factor 0 never moves a key, however the load piles up", () => {
    const { set, balancer, order } = setup(0);
    for (let i = 0; i < 500; i++) {
      const e = pickFor(balancer, { affinityKey: HOT });
      assert.equal(e, order[0]);
      set.acquire(e);
    }
    assert.equal(set.activeOf(order[0]), 500);
  });

  it("createAffinityPicker: reports all_endpoints_tried and no_healthy_endpoint", () => {
    const set = new EndpointSet(
      "c",
      ADDRS.map((address) => ({ address, weight: 1 })),
    );
    const all = new Set(set.endpoints);
    for (const factor of [0, 1.25]) {
      const picker = createAffinityPicker(snapshotOf(set.endpoints), set, factor);
      assert.deepEqual(picker.pick({ affinityKey: HOT, exclude: all }), {
        kind: "unavailable",
        reason: "all_endpoints_tried",
      });
      const none = new EndpointSet(
        "d",
        ADDRS.map((address) => ({ address, weight: 1 })),
      );
      for (const e of none.endpoints) none.setHealth(e.address, "unhealthy");
      assert.deepEqual(
        createAffinityPicker(snapshotOf(none.endpoints), none, factor).pick({ affinityKey: HOT }),
        {
          kind: "unavailable",
          reason: "no_healthy_endpoint",
        },
      );
    }
  });
});
