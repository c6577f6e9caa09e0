/** The simulated workers' banners: `speed` multiplies the service time, so 2 reads "2× slower". */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeSim, speedLabel } from "../../src/sim/sim-describe.js";

describe("sim-describe", () => {
  it("says how much slower or faster a worker is", () => {
    const table: [number, string][] = [
      [1, ""],
      [2, "2× slower"],
      [3, "3× slower"],
      [1.5, "1.5× slower"],
      [0.5, "2× faster"],
      [0.25, "4× faster"],
    ];
    for (const [speed, label] of table) assert.equal(speedLabel(speed), label, String(speed));
  });

  it("describes the service time after speed", () => {
    assert.equal(
      describeSim({ kind: "triton", name: "g", latencyMs: 20, slots: 4, speed: 3, models: ["simple"] }),
      "Triton-shaped (inference.GRPCInferenceService), 60 ms per call (3× slower), 4 at once, models simple",
    );
    assert.equal(
      describeSim({ kind: "tcp", name: "t" }),
      'greets each connection with "t", then echoes every byte',
    );
  });
});
