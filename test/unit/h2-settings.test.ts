/**
 * SETTINGS payload parsing and validation (RFC 9113 §6.5, §6.5.2), and SETTINGS frames written by the
 * writer parsing back to what was written.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FrameReader } from "../../src/h2/h2-frame-reader.js";
import { encodeSettingsFrame } from "../../src/h2/h2-frame-writers.js";
import {
  H2_INITIAL_SETTINGS,
  applySettings,
  parseSettingsPayload,
  type SettingsParseResult,
} from "../../src/h2/h2-settings.js";

/** A payload from (id, value) pairs. */
function payload(...pairs: Array<[number, number]>): Buffer {
  const out = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, value], i) => {
    out.writeUInt16BE(id, i * 6);
    out.writeUInt32BE(value, i * 6 + 2);
  });
  return out;
}

function parse(p: Buffer, sender: "client" | "server" = "client"): SettingsParseResult {
  return parseSettingsPayload(p, 0, p.length, sender);
}

function errorOf(r: SettingsParseResult): string | null {
  return r.ok ? null : r.code;
}

describe("SETTINGS payload (§6.5.2)", { timeout: 10_000 }, () => {
  it("reads all six parameters, ignores unknown identifiers, keeps the last of duplicates", () => {
    const r = parse(
      payload([1, 0], [2, 0], [3, 100], [4, 1 << 20], [5, 32_768], [6, 8192], [0x99, 7], [3, 50]),
    );
    assert.ok(r.ok);
    assert.deepEqual(r.update, {
      headerTableSize: 0,
      enablePush: 0,
      maxConcurrentStreams: 50,
      initialWindowSize: 1 << 20,
      maxFrameSize: 32_768,
      maxHeaderListSize: 8192,
    });
    assert.deepEqual(applySettings(H2_INITIAL_SETTINGS, { maxFrameSize: 20_000 }), {
      ...H2_INITIAL_SETTINGS,
      maxFrameSize: 20_000,
    });
  });

  const cases: Array<[string, Buffer, string | null, ("client" | "server")?]> = [
    ["an empty payload", payload(), null],
    ["a length that is not a multiple of 6", Buffer.alloc(7), "FRAME_SIZE_ERROR"],
    ["ENABLE_PUSH 2", payload([2, 2]), "PROTOCOL_ERROR"],
    ["ENABLE_PUSH 1 from a client", payload([2, 1]), null],
    ["ENABLE_PUSH 1 from a server", payload([2, 1]), "PROTOCOL_ERROR", "server"],
    ["INITIAL_WINDOW_SIZE 2^31 - 1", payload([4, 0x7fffffff]), null],
    ["INITIAL_WINDOW_SIZE 2^31", payload([4, 0x80000000]), "FLOW_CONTROL_ERROR"],
    ["MAX_FRAME_SIZE 16,384", payload([5, 16_384]), null],
    ["MAX_FRAME_SIZE 16,383", payload([5, 16_383]), "PROTOCOL_ERROR"],
    ["MAX_FRAME_SIZE 16,777,215", payload([5, 16_777_215]), null],
    ["MAX_FRAME_SIZE 16,777,216", payload([5, 16_777_216]), "PROTOCOL_ERROR"],
    ["a bad value after good ones", payload([3, 10], [5, 1]), "PROTOCOL_ERROR"],
    ["an unknown identifier with any value", payload([0xff, 0xffffffff]), null],
  ];
  for (const [what, p, code, sender] of cases) {
    it(`${what}: ${code ?? "accepted"}`, () => assert.equal(errorOf(parse(p, sender)), code));
  }

  it("a written SETTINGS frame reads back through the FrameReader and the parser", () => {
    const settings = {
      headerTableSize: 0,
      enablePush: 0,
      initialWindowSize: 1 << 24,
      maxHeaderListSize: 16_384,
    };
    const reader = new FrameReader();
    reader.push(encodeSettingsFrame({ ...settings, maxConcurrentStreams: Infinity }));
    const f = reader.next();
    assert.ok(f !== null);
    const r = parseSettingsPayload(f.buffer, f.dataOffset, f.dataLength);
    assert.ok(r.ok);
    assert.deepEqual(r.update, settings);
  });
});
