/**
 * Triton sequence pins in shared memory: pin, look up, end, expire after the idle timeout, reuse of
 * freed places, a full table, and two threads' views of one table (same buffers).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SequencePins } from "../../src/balancer/sequence-pins.js";

describe("sequence pins", { timeout: 30_000 }, () => {
  it("pins, looks up, ends, and shares one table between two views", () => {
    const a = SequencePins.create(16, 60);
    const b = new SequencePins(a.buffers, 60);
    assert.equal(a.lookup("i:1", 100), undefined);
    assert.ok(a.pin("i:1", 3, 100));
    assert.ok(a.pin("s:1", 5, 100));
    assert.equal(b.lookup("i:1", 101), 3, "another thread's view sees the pin");
    assert.equal(b.lookup("s:1", 101), 5, "int64 and string ids are distinct keys");
    b.pin("i:1", 7, 102);
    assert.equal(a.lookup("i:1", 102), 7);
    a.unpin("i:1", 103);
    assert.equal(b.lookup("i:1", 103), undefined);
    assert.equal(a.count(103), 1);
  });

  it("a pin with no request for longer than the idle timeout ends; a request keeps it alive", () => {
    const pins = SequencePins.create(16, 60);
    pins.pin("i:9", 1, 1000);
    pins.pin("i:10", 2, 1000);
    assert.equal(pins.lookup("i:9", 1050), 1);
    assert.equal(pins.lookup("i:9", 1100), 1, "50 s after the last request");
    assert.equal(pins.lookup("i:10", 1100), undefined, "100 s idle: ended");
  });

  it("freed places are reused, and a full table refuses new pins", () => {
    const pins = SequencePins.create(8, 60);
    for (let i = 0; i < 8; i++) assert.ok(pins.pin(`i:${i}`, i, 0));
    assert.equal(pins.pin("i:100", 1, 0), false, "full");
    for (let i = 0; i < 8; i++) assert.equal(pins.lookup(`i:${i}`, 0), i);
    pins.unpin("i:3", 0);
    assert.ok(pins.pin("i:100", 1, 0), "the ended pin's place is taken");
    assert.equal(pins.lookup("i:100", 0), 1);
    assert.ok(pins.pin("i:200", 2, 1000), "idle entries are free again");
    assert.equal(pins.count(1000), 1);
  });

  it("capacity must be a power of two", () => {
    assert.throws(() => SequencePins.create(10, 60), RangeError);
  });
});
