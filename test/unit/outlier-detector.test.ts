import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutlierDetector } from "../../src/health/outlier-detector.js";

const settings = { consecutiveFailures: 3, baseEjectionMs: 1000, maxEjectionPercent: 10 };

describe("outlier detector", { timeout: 10_000 }, () => {
  it("ejects after exactly consecutive_failures failures in a row", () => {
    const d = new OutlierDetector(settings);
    assert.equal(d.record("a", false, 0, 3).kind, "none");
    assert.equal(d.record("a", false, 1, 3).kind, "none");
    assert.deepEqual(d.record("a", false, 2, 3), { kind: "eject", durationMs: 1000, ejections: 1 });
  });

  it("a success resets the streak", () => {
    const d = new OutlierDetector(settings);
    d.record("a", false, 0, 3);
    d.record("a", false, 0, 3);
    d.record("a", true, 0, 3);
    assert.equal(d.record("a", false, 0, 3).kind, "none");
  });

  it("ejection time grows with the number of ejections", () => {
    const d = new OutlierDetector(settings);
    for (let i = 0; i < 3; i++) d.record("a", false, 0, 3);
    d.uneject("a");
    let v = d.record("a", false, 2000, 3);
    v = d.record("a", false, 2000, 3);
    v = d.record("a", false, 2000, 3);
    assert.deepEqual(v, { kind: "eject", durationMs: 2000, ejections: 2 });
  });

  it("one endpoint may always be ejected, but not more than max_ejection_percent", () => {
    const d = new OutlierDetector(settings);
    for (let i = 0; i < 3; i++) d.record("a", false, 0, 3);
    assert.equal(d.ejectedCount(0), 1);
    let last = d.record("b", false, 0, 3);
    last = d.record("b", false, 0, 3);
    last = d.record("b", false, 0, 3);
    assert.equal(last.kind, "none", "a second ejection would be 66 % > 10 %");
    const wide = new OutlierDetector({ ...settings, maxEjectionPercent: 50 });
    for (const addr of ["a", "b"]) for (let i = 0; i < 3; i++) wide.record(addr, false, 0, 4);
    assert.equal(wide.ejectedCount(0), 2);
  });

  it("states the ejection limit once: max_ejection_percent, but at least one endpoint", () => {
    // [max_ejection_percent, already ejected, cluster size, may one more be ejected]
    const table: [number, number, number, boolean][] = [
      [10, 0, 3, true],
      [0, 0, 1, true],
      [10, 1, 3, false],
      [50, 1, 4, true],
      [50, 2, 4, false],
      [34, 1, 6, true],
      [34, 2, 6, false],
      [100, 4, 5, true],
      [100, 5, 5, false],
      [10, 0, 0, true],
    ];
    for (const [percent, ejected, size, expected] of table) {
      const d = new OutlierDetector({ ...settings, maxEjectionPercent: percent });
      assert.equal(d.mayEjectAnother(ejected, size), expected, `${percent} %, ${ejected} of ${size} ejected`);
    }
  });

  it("failures during an ejection do not extend it", () => {
    const d = new OutlierDetector(settings);
    for (let i = 0; i < 3; i++) d.record("a", false, 0, 3);
    for (let i = 0; i < 10; i++) assert.equal(d.record("a", false, 10, 3).kind, "none");
  });
});
