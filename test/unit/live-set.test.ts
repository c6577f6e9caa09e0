import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LiveSet, type LiveSetMember } from "../../src/net/live-set.js";

const member = (name: string): LiveSetMember & { name: string } => ({ name, liveIndex: -1 });

describe("live set", { timeout: 10_000 }, () => {
  it("adds once, deletes from any position, and keeps the others", () => {
    const set = new LiveSet<ReturnType<typeof member>>();
    const [a, b, c, d] = ["a", "b", "c", "d"].map(member) as [
      ReturnType<typeof member>,
      ReturnType<typeof member>,
      ReturnType<typeof member>,
      ReturnType<typeof member>,
    ];
    for (const m of [a, b, c, d, b]) set.add(m);
    assert.equal(set.size, 4);
    assert.equal(set.delete(b), true);
    assert.equal(set.delete(b), false);
    assert.equal(b.liveIndex, -1);
    assert.deepEqual(
      set
        .values()
        .map((m) => m.name)
        .sort(),
      ["a", "c", "d"],
    );
    for (const m of set.values()) set.delete(m);
    assert.equal(set.size, 0);
    set.add(b);
    assert.deepEqual(set.values(), [b]);
  });

  it("a member of another set is not deleted by this one", () => {
    const one = new LiveSet<ReturnType<typeof member>>();
    const two = new LiveSet<ReturnType<typeof member>>();
    const a = member("a");
    const b = member("b");
    one.add(a);
    two.add(b);
    assert.equal(one.delete(b), false);
    assert.equal(two.size, 1);
  });
});
