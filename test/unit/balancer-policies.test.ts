/**
 * Policies, pure: exact rotations, weighted shares by simulation (100k seeded picks, absolute share
 * error ≤ 0.01), load-following, exclusion and eligibility, failure reasons, ip_hash stickiness and the
 * balancer's lazy rebuild.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Balancer } from "../../src/balancer/balancer.js";
import { EndpointSet, type Endpoint } from "../../src/balancer/endpoint-set.js";
import { normalizeClientAddress, type PickContext } from "../../src/balancer/picker.js";
import type { PolicyName } from "../../src/balancer/policy.js";
import { seededRandom } from "../../src/balancer/random-seeded.js";

const ADDRS = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"];
const POLICIES: readonly PolicyName[] = [
  "round_robin",
  "weighted_round_robin",
  "least_connections",
  "p2c",
  "random",
  "ip_hash",
];

interface Setup {
  readonly set: EndpointSet;
  readonly balancer: Balancer;
  readonly endpoints: readonly [Endpoint, Endpoint, Endpoint];
}

function setup(policy: PolicyName, weights: readonly number[] = [1, 1, 1], seed = 1): Setup {
  const set = new EndpointSet(
    "c",
    ADDRS.map((address, i) => ({ address, weight: weights[i] ?? 1 })),
  );
  const balancer = new Balancer(set, { policy, random: seededRandom(seed) });
  return { set, balancer, endpoints: set.endpoints as [Endpoint, Endpoint, Endpoint] };
}

function pickAddress(b: Balancer, ctx: PickContext = {}): string {
  const r = b.pick(ctx);
  assert.equal(r.kind, "complete", JSON.stringify(r));
  return r.kind === "complete" ? r.endpoint.address : "";
}

function counts(b: Balancer, n: number, ctx: (i: number) => PickContext = () => ({})): Map<string, number> {
  const c = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const a = pickAddress(b, ctx(i));
    c.set(a, (c.get(a) ?? 0) + 1);
  }
  return c;
}

function assertShares(c: Map<string, number>, n: number, want: readonly number[], tolerance: number): void {
  want.forEach((w, i) => {
    const got = (c.get(ADDRS[i] as string) ?? 0) / n;
    assert.ok(Math.abs(got - w) <= tolerance, `${ADDRS[i]}: share ${got}, want ${w} ± ${tolerance}`);
  });
}

describe("balancer policies", { timeout: 30_000 }, () => {
  it("round_robin: 600 picks over 3 → exactly 200 each, in rotation, weights ignored", () => {
    const { balancer } = setup("round_robin", [1, 5, 9]);
    const order = Array.from({ length: 600 }, () => pickAddress(balancer));
    assert.deepEqual(
      ADDRS.map((a) => order.filter((x) => x === a).length),
      [200, 200, 200],
    );
    for (let i = 3; i < order.length; i++) assert.equal(order[i], order[i - 3], `rotation broken at ${i}`);
  });

  it("weighted_round_robin 1,2,3: exactly 100/200/300 of 600, interleaved", () => {
    const { balancer } = setup("weighted_round_robin", [1, 2, 3]);
    const order = Array.from({ length: 600 }, () => pickAddress(balancer));
    assert.deepEqual(
      ADDRS.map((a) => order.filter((x) => x === a).length),
      [100, 200, 300],
    );
    let run = 1;
    let longest = 1;
    for (let i = 1; i < order.length; i++) {
      run = order[i] === order[i - 1] ? run + 1 : 1;
      longest = Math.max(longest, run);
    }
    // nginx's smooth order for 1,2,3 (ties to the first): c b a c b c, repeated.
    assert.deepEqual(
      order.slice(0, 12),
      [2, 1, 0, 2, 1, 2, 2, 1, 0, 2, 1, 2].map((i) => ADDRS[i]),
    );
    // So runs are at most 2 long (c c across periods).
    assert.ok(longest < 4, `a run of ${longest}`);
    assert.equal(longest, 2);
    // Every window of 6 picks holds the exact shares, not just the whole.
    for (let i = 0; i + 6 <= order.length; i += 6) {
      const w = order.slice(i, i + 6);
      assert.deepEqual(
        ADDRS.map((a) => w.filter((x) => x === a).length),
        [1, 2, 3],
        `window at ${i}`,
      );
    }
  });

  it("least_connections: 3 active on one endpoint sends the next picks to the other two", () => {
    const { set, balancer, endpoints } = setup("least_connections");
    const [a] = endpoints;
    for (let i = 0; i < 3; i++) set.acquire(a);
    const placed: string[] = [];
    for (let i = 0; i < 6; i++) {
      const address = pickAddress(balancer);
      placed.push(address);
      set.acquire(set.get(address) as Endpoint);
    }
    assert.ok(!placed.includes(a.address), `picked the loaded endpoint: ${placed.join(",")}`);
    assert.deepEqual(
      ADDRS.map((x) => placed.filter((p) => p === x).length),
      [0, 3, 3],
    );
    // All at 3 now: ties take turns, so the next three picks (without acquiring) cover all three.
    const next = [pickAddress(balancer), pickAddress(balancer), pickAddress(balancer)];
    assert.deepEqual([...next].sort(), [...ADDRS].sort());
  });

  it("least_connections: compares active / weight", () => {
    const { set, balancer, endpoints } = setup("least_connections", [1, 1, 4]);
    const [a, b, c] = endpoints;
    set.acquire(a);
    set.acquire(b);
    for (let i = 0; i < 3; i++) set.acquire(c); // c: 3 / 4 < 1 / 1
    assert.equal(pickAddress(balancer), c.address);
    set.acquire(c);
    set.acquire(c); // c: 5 / 4 > 1 / 1
    assert.notEqual(pickAddress(balancer), c.address);
  });

  const shareCases: { policy: PolicyName; weights: number[]; want: number[] }[] = [
    { policy: "random", weights: [1, 2, 3], want: [1 / 6, 2 / 6, 3 / 6] },
    { policy: "random", weights: [1, 1, 1], want: [1 / 3, 1 / 3, 1 / 3] },
    { policy: "p2c", weights: [1, 1, 1], want: [1 / 3, 1 / 3, 1 / 3] },
    // With equal (zero) load p2c keeps the first draw, so it follows the weights too.
    { policy: "p2c", weights: [1, 2, 3], want: [1 / 6, 2 / 6, 3 / 6] },
  ];
  for (const { policy, weights, want } of shareCases) {
    it(`${policy} weights ${weights.join(",")}: shares within 0.01 over 100k seeded picks`, () => {
      const { balancer } = setup(policy, weights, 7);
      assertShares(counts(balancer, 100_000), 100_000, want, 0.01);
    });
  }

  it("random with exclusion: weighted shares over the rest", () => {
    const { balancer, endpoints } = setup("random", [1, 2, 3], 11);
    const exclude = new Set([endpoints[1]]);
    assertShares(
      counts(balancer, 100_000, () => ({ exclude })),
      100_000,
      [1 / 4, 0, 3 / 4],
      0.01,
    );
  });

  it("p2c: of two, always the less loaded", () => {
    const set = new EndpointSet("c", [
      { address: "10.0.0.1:80", weight: 1 },
      { address: "10.0.0.2:80", weight: 1 },
    ]);
    const balancer = new Balancer(set, { policy: "p2c", random: seededRandom(5) });
    const [a, b] = set.endpoints as [Endpoint, Endpoint];
    set.acquire(a);
    for (let i = 0; i < 1000; i++) assert.equal(pickAddress(balancer), b.address);
    set.acquire(b);
    set.acquire(b);
    for (let i = 0; i < 1000; i++) assert.equal(pickAddress(balancer), a.address);
  });

  it("p2c: an idle endpoint among loaded ones wins every draw it is in (2 of 3)", () => {
    const { set, balancer, endpoints } = setup("p2c", [1, 1, 1], 3);
    const [a, b] = endpoints;
    for (let i = 0; i < 100; i++) set.acquire(a);
    for (let i = 0; i < 100; i++) set.acquire(b);
    // P(c among two distinct draws of three) = 2/3; a and b split the rest.
    assertShares(counts(balancer, 100_000), 100_000, [1 / 6, 1 / 6, 2 / 3], 0.01);
  });

  for (const policy of POLICIES) {
    it(`${policy}: never picks excluded, unhealthy, drained or ejected endpoints`, () => {
      const { set, balancer, endpoints } = setup(policy);
      const [a, b, c] = endpoints;
      const ctx = (i: number): PickContext => ({
        clientAddress: `192.168.0.${i % 250}`,
        exclude: new Set([a]),
      });
      const seen = counts(balancer, 300, ctx);
      assert.deepEqual([...seen.keys()].sort(), [b.address, c.address]);
      const cases: { change: () => void; undo: () => void; only: Endpoint }[] = [
        {
          change: () => set.setHealth(b.address, "unhealthy"),
          undo: () => set.setHealth(b.address, "healthy"),
          only: c,
        },
        {
          change: () => set.setDrained(c.address, true),
          undo: () => set.setDrained(c.address, false),
          only: b,
        },
        {
          change: () => set.setEjected(b.address, true),
          undo: () => set.setEjected(b.address, false),
          only: c,
        },
      ];
      for (const { change, undo, only } of cases) {
        change();
        assert.deepEqual([...counts(balancer, 300, ctx).keys()], [only.address]);
        undo();
      }
    });

    it(`${policy}: never picks an excluded endpoint, one to all but one excluded`, () => {
      const { balancer, endpoints } = setup(policy, [3, 2, 1]);
      for (const excluded of [[0], [1], [2], [0, 1], [0, 2], [1, 2]]) {
        const exclude = new Set(excluded.map((i) => endpoints[i] as Endpoint));
        for (let i = 0; i < 200; i++) {
          const r = balancer.pick({ clientAddress: `172.16.${i}.1`, exclude });
          assert.equal(r.kind, "complete");
          if (r.kind === "complete")
            assert.ok(!exclude.has(r.endpoint), `${policy} picked excluded ${r.endpoint.address}`);
        }
      }
    });

    it(`${policy}: reports all_endpoints_tried and no_healthy_endpoint`, () => {
      const { set, balancer, endpoints } = setup(policy);
      for (const ctx of [{ clientAddress: "1.2.3.4" }, {}]) {
        assert.deepEqual(balancer.pick({ ...ctx, exclude: new Set(endpoints) }), {
          kind: "unavailable",
          reason: "all_endpoints_tried",
        });
      }
      // Excluding the only eligible endpoint is also "all tried".
      set.setDrained(endpoints[0].address, true);
      set.setHealth(endpoints[1].address, "unhealthy");
      assert.deepEqual(balancer.pick({ clientAddress: "1.2.3.4", exclude: new Set([endpoints[2]]) }), {
        kind: "unavailable",
        reason: "all_endpoints_tried",
      });
      set.setEjected(endpoints[2].address, true);
      for (const ctx of [{ clientAddress: "1.2.3.4" }, {}, { exclude: new Set([endpoints[0]]) }]) {
        assert.deepEqual(balancer.pick(ctx), { kind: "unavailable", reason: "no_healthy_endpoint" });
      }
    });

    it(`${policy}: a pick allocates no result: one preallocated result per endpoint`, () => {
      const { balancer } = setup(policy);
      const byAddress = new Map<string, unknown>();
      for (let i = 0; i < 60; i++) {
        const r = balancer.pick({ clientAddress: `10.9.9.${i}` });
        assert.equal(r.kind, "complete");
        if (r.kind !== "complete") continue;
        const prior = byAddress.get(r.endpoint.address);
        if (prior) assert.equal(r, prior, "a new result object for the same endpoint");
        else byAddress.set(r.endpoint.address, r);
      }
    });
  }

  it("ip_hash: a client keeps its endpoint; all endpoints are used", () => {
    const { balancer } = setup("ip_hash");
    const used = new Set<string>();
    for (let i = 1; i <= 100; i++) {
      const ip = `127.0.0.${i}`;
      const first = pickAddress(balancer, { clientAddress: ip });
      used.add(first);
      for (let j = 0; j < 5; j++) assert.equal(pickAddress(balancer, { clientAddress: ip }), first);
    }
    assert.equal(used.size, 3);
  });

  it("ip_hash: ::ffff:-mapped and plain IPv4 clients map to the same endpoint after normalisation", () => {
    const { balancer } = setup("ip_hash");
    const viaNormalised = (raw: string): string =>
      pickAddress(balancer, { clientAddress: normalizeClientAddress(raw) });
    assert.equal(viaNormalised("::ffff:127.0.0.5"), viaNormalised("127.0.0.5"));
    assert.equal(viaNormalised("::FFFF:127.0.0.5"), viaNormalised("127.0.0.5"));
    let differRaw = 0;
    for (let i = 1; i <= 50; i++) {
      const v4 = `127.0.0.${i}`;
      assert.equal(viaNormalised(`::ffff:${v4}`), viaNormalised(v4), v4);
      if (
        pickAddress(balancer, { clientAddress: `::ffff:${v4}` }) !==
        pickAddress(balancer, { clientAddress: v4 })
      ) {
        differRaw++;
      }
    }
    // Without normalisation many of them would land elsewhere, so the check above can fail.
    assert.ok(differRaw > 10, `only ${differRaw} raw forms differ`);
  });

  it("ip_hash: a drained endpoint's clients move to the next in table order; the others stay", () => {
    const { set, balancer, endpoints } = setup("ip_hash");
    const clients = Array.from({ length: 600 }, (_, i) => `10.${i >> 8}.${i & 255}.9`);
    const before = clients.map((ip) => pickAddress(balancer, { clientAddress: ip }));
    const drained = endpoints[1];
    set.setDrained(drained.address, true);
    const after = clients.map((ip) => pickAddress(balancer, { clientAddress: ip }));
    let moved = 0;
    clients.forEach((ip, i) => {
      if (before[i] !== drained.address) assert.equal(after[i], before[i], `${ip} moved off a kept endpoint`);
      else moved++;
    });
    assert.ok(moved > 100, `only ${moved} clients were on the drained endpoint`);
    set.setDrained(drained.address, false);
    clients.forEach((ip, i) => assert.equal(pickAddress(balancer, { clientAddress: ip }), before[i], ip));
  });

  it("ip_hash: no client address falls back to round robin", () => {
    const { balancer } = setup("ip_hash", [1, 5, 9]);
    const order = Array.from({ length: 300 }, () => pickAddress(balancer));
    assert.deepEqual(
      ADDRS.map((a) => order.filter((x) => x === a).length),
      [100, 100, 100],
    );
  });

  it("balancer: a health change through setHealth changes the very next pick (lazy rebuild)", () => {
    const { set, balancer } = setup("ip_hash");
    const client = { clientAddress: "203.0.113.7" };
    const home = pickAddress(balancer, client);
    const v = set.version;
    assert.equal(set.setHealth(home, "unhealthy"), true);
    assert.ok(set.version > v);
    const moved = pickAddress(balancer, client);
    assert.notEqual(moved, home);
    set.setHealth(home, "healthy");
    assert.equal(pickAddress(balancer, client), home);
  });

  it("balancer: round robin resumes over the new eligible set right after a change", () => {
    const { set, balancer } = setup("round_robin");
    assert.equal(pickAddress(balancer), ADDRS[0]);
    set.setHealth(ADDRS[1] as string, "unhealthy");
    const next = Array.from({ length: 4 }, () => pickAddress(balancer));
    assert.ok(!next.includes(ADDRS[1] as string), next.join(","));
    assert.deepEqual([...new Set(next)].sort(), [ADDRS[0], ADDRS[2]]);
  });
});
