import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { seededRandom } from "../../src/balancer/random-seeded.js";
import { StreamTable } from "../../src/grpc/engine-frames/frames-stream-table.js";

interface Entry {
  readonly id: number;
  readonly tag: number;
}

/** Compares the table with a Map that saw the same operations. */
function assertSame(table: StreamTable<Entry>, model: Map<number, Entry>, probeIds: readonly number[]): void {
  assert.equal(table.size, model.size);
  for (const id of probeIds) assert.equal(table.get(id), model.get(id), `get(${id})`);
  const ids = table.values().map((e) => e.id);
  assert.deepEqual(
    [...ids].sort((a, b) => a - b),
    [...model.keys()].sort((a, b) => a - b),
  );
}

describe("frames stream table", { timeout: 10_000 }, () => {
  it("behaves like a Map under seeded churn of increasing odd ids (runs wrap, grow, shift back)", () => {
    for (const seed of [1, 2, 3, 42]) {
      const random = seededRandom(seed);
      const table = new StreamTable<Entry>(8);
      const model = new Map<number, Entry>();
      let nextId = 1;
      for (let step = 0; step < 20_000; step++) {
        const live = [...model.keys()];
        if (live.length === 0 || (random() < 0.55 && live.length < 300)) {
          const e = { id: nextId, tag: step };
          nextId += 2;
          table.set(e);
          model.set(e.id, e);
        } else {
          const id = live[Math.floor(random() * live.length)] as number;
          assert.equal(table.delete(id), true);
          model.delete(id);
        }
        if (step % 97 === 0) {
          const probes = [...model.keys(), nextId, nextId + 2, 0, 2, Math.max(1, nextId - 400)];
          assertSame(table, model, probes);
        }
      }
      assertSame(table, model, [...model.keys()]);
    }
  });

  it("keys that collide on one slot (ids a table size apart) stay findable after deletes", () => {
    const table = new StreamTable<Entry>(8);
    // Capacity 8 holds 4 before growing: ids 1, 17, 33 share slot 0 (id >>> 1 = 0, 8, 16).
    const ids = [1, 17, 33];
    for (const id of ids) table.set({ id, tag: id });
    assert.equal(table.delete(1), true);
    assert.equal(table.get(17)?.tag, 17);
    assert.equal(table.get(33)?.tag, 33);
    assert.equal(table.delete(1), false);
    assert.equal(table.delete(33), true);
    assert.equal(table.get(17)?.tag, 17);
    assert.equal(table.size, 1);
  });

  it("set replaces an entry with the same id; values() is a copy safe to delete through", () => {
    const table = new StreamTable<Entry>();
    table.set({ id: 5, tag: 1 });
    table.set({ id: 5, tag: 2 });
    assert.equal(table.size, 1);
    assert.equal(table.get(5)?.tag, 2);
    for (let id = 7; id < 100; id += 2) table.set({ id, tag: id });
    for (const e of table.values()) table.delete(e.id);
    assert.equal(table.size, 0);
    assert.equal(table.get(7), undefined);
  });
});
