/** The control-frame budget (src/h2/h2-flood-guard.ts) on an injected clock: a burst, then a rate. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FloodGuard } from "../../src/h2/h2-flood-guard.js";

describe("h2 flood guard", { timeout: 10_000 }, () => {
  it("allows the burst at once, refuses the next frame, and refills at the rate", () => {
    let now = 1000;
    const guard = new FloodGuard(10, 100, () => now);
    for (let i = 0; i < 10; i++) assert.ok(guard.take(1), `frame ${i}`);
    assert.equal(guard.take(1), false, "the burst is spent");
    now += 50; // 100 per second: 5 tokens
    for (let i = 0; i < 5; i++) assert.ok(guard.take(1), `refilled frame ${i}`);
    assert.equal(guard.take(1), false);
  });

  it("never holds more than the burst, however long the peer was quiet", () => {
    let now = 0;
    const guard = new FloodGuard(3, 1000, () => now);
    assert.ok(guard.take(3));
    now += 60_000;
    assert.ok(guard.take(3));
    assert.equal(guard.take(1), false);
  });

  it("a sustained rate at the limit is allowed, above it is refused", () => {
    let now = 0;
    const guard = new FloodGuard(5, 100, () => now);
    guard.take(5);
    for (let i = 0; i < 1000; i++) {
      now += 10; // exactly 100 per second
      assert.ok(guard.take(1), `frame ${i} at the limit`);
    }
    let refused = false;
    for (let i = 0; i < 100 && !refused; i++) {
      now += 5; // 200 per second
      refused = !guard.take(1);
    }
    assert.ok(refused, "twice the rate runs the bucket dry");
  });
});
