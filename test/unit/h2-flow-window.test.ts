/**
 * The one receive-window type of the `frames` engine (src/h2/h2-flow-window.ts): octets go back to the
 * peer only once handed on, in batches of at least half the window; a peer past the window is refused.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ReceiveWindow } from "../../src/h2/h2-flow-window.js";

describe("h2 receive window", { timeout: 10_000 }, () => {
  it("gives back nothing below half the window, then everything handed on in one increment", () => {
    const w = new ReceiveWindow(1000);
    assert.ok(w.receive(900));
    assert.equal(w.available, 100);
    assert.equal(w.consumed(300), 0);
    assert.equal(w.consumed(199), 0, "499 < 500");
    assert.equal(w.available, 100, "nothing returned yet");
    assert.equal(w.consumed(1), 500);
    assert.equal(w.available, 600);
    assert.equal(w.consumed(400), 0, "the batch starts again");
  });

  it("refuses octets past the window (a FLOW_CONTROL_ERROR for the caller)", () => {
    const w = new ReceiveWindow(100);
    assert.ok(w.receive(100));
    assert.equal(w.receive(1), false);
  });

  it("grows from the initial 65,535 to the advertised size, and batches at half the new size", () => {
    const w = new ReceiveWindow(65_535);
    assert.equal(w.grow(1_000_000), 1_000_000 - 65_535);
    assert.equal(w.available, 1_000_000);
    assert.ok(w.receive(600_000));
    assert.equal(w.consumed(499_999), 0);
    assert.equal(w.consumed(1), 500_000);
  });

  it("counts octets handed on without a receive (dropped DATA of a reset stream, padding)", () => {
    const w = new ReceiveWindow(10, 0);
    assert.equal(w.receive(1), false, "a window of 0 takes nothing");
    assert.equal(w.consumed(5), 5);
    assert.equal(w.available, 4);
  });
});
