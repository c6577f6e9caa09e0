/**
 * Endpoint counters shared by worker threads: one global active count per endpoint, striped totals
 * summed on read, and mirrors of a set that take the owner's slots.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EndpointCounters } from "../../src/balancer/endpoint-counters.js";
import { EndpointSet } from "../../src/balancer/endpoint-set.js";

describe("endpoint counters", () => {
  it("active is global, totals and failures are per stripe and summed", () => {
    const owner = EndpointCounters.create(8, 3);
    const t1 = new EndpointCounters(owner.buffers, 1);
    const t2 = new EndpointCounters(owner.buffers, 2);
    t1.acquire(5);
    t2.acquire(5);
    t2.acquire(5);
    t1.recordFailure(5);
    assert.equal(owner.activeOf(5), 3);
    assert.equal(owner.totalOf(5), 3);
    assert.equal(owner.failuresOf(5), 1);
    assert.equal(t1.total[5], 1, "a thread writes only its own stripe");
    assert.equal(t2.release(5), 2);
    owner.resetSlot(5);
    assert.deepEqual([owner.activeOf(5), owner.totalOf(5), owner.failuresOf(5)], [0, 0, 0]);
    assert.throws(() => new EndpointCounters(owner.buffers, 3), RangeError);
  });

  it("a mirror set takes the owner's slots and shares its counts", () => {
    const owner = new EndpointSet("c", [
      { address: "127.0.0.1:1", weight: 1 },
      { address: "127.0.0.1:2", weight: 1 },
    ]);
    const mirror = new EndpointSet("c", [], { counters: new EndpointCounters(owner.counters.buffers, 0) });
    mirror.update(owner.endpoints.map((e) => ({ address: e.address, weight: e.weight, slot: e.slot })));
    const b = mirror.get("127.0.0.1:2");
    assert.ok(b);
    mirror.acquire(b);
    assert.equal(owner.activeOf(owner.get("127.0.0.1:2")!), 1);
    assert.equal(owner.totalOf(owner.get("127.0.0.1:2")!), 1);
  });

  it("slots of removed endpoints are reused only when no fresh slot is left", () => {
    const set = new EndpointSet("c", [{ address: "127.0.0.1:1", weight: 1 }], { maxSlots: 3 });
    set.update([{ address: "127.0.0.1:2", weight: 1 }]);
    assert.equal(set.get("127.0.0.1:2")?.slot, 1, "a fresh slot, not the one just freed");
    set.update([{ address: "127.0.0.1:3", weight: 1 }]);
    assert.equal(set.get("127.0.0.1:3")?.slot, 2);
    set.update([{ address: "127.0.0.1:4", weight: 1 }]);
    assert.equal(set.get("127.0.0.1:4")?.slot, 0, "now the oldest freed slot");
  });

  it("a removed endpoint keeps its slot while work counts against it; sweep frees it after", () => {
    const set = new EndpointSet("c", [{ address: "127.0.0.1:1", weight: 1 }], { maxSlots: 1 });
    const e = set.get("127.0.0.1:1")!;
    set.acquire(e);
    set.update([]);
    assert.throws(() => set.update([{ address: "127.0.0.1:2", weight: 1 }]), /more than 1 endpoints/);
    set.counters.release(e.slot); // released in another thread
    set.sweep();
    set.update([{ address: "127.0.0.1:2", weight: 1 }]);
    assert.equal(set.get("127.0.0.1:2")?.slot, 0);
  });
});
