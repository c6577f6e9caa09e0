/**
 * HTTP/2 frame writers (RFC 9113 §6) read back through the FrameReader: HEADERS split into
 * CONTINUATION and joined again by the header block assembler (§6.10), the control frames' fields
 * (§6.4, §6.7–§6.9), range checks, and the client preface checker (§3.4).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { h2ErrorName } from "../../src/h2/h2-error-codes.js";
import {
  readGoaway,
  readPingPayload,
  readRstStreamCode,
  readWindowIncrement,
} from "../../src/h2/h2-frame-fields.js";
import { FrameReader, type H2Frame } from "../../src/h2/h2-frame-reader.js";
import {
  encodeGoawayFrame,
  encodeHeadersFrames,
  encodePingFrame,
  encodeRstStreamFrame,
  encodeSettingsFrame,
  encodeWindowUpdateFrame,
} from "../../src/h2/h2-frame-writers.js";
import { HeaderBlockAssembler } from "../../src/h2/h2-header-block.js";
import { CLIENT_PREFACE, checkClientPreface } from "../../src/h2/h2-preface.js";

const SETTINGS = encodeSettingsFrame({ maxConcurrentStreams: 100, initialWindowSize: 1 << 20 });

/** Every frame after the SETTINGS that opens `bytes`, as (type, flags, stream, length). */
function frameHeaders(bytes: Buffer): number[][] {
  const reader = new FrameReader();
  reader.push(Buffer.concat([SETTINGS, bytes]));
  reader.next();
  const out: number[][] = [];
  for (let f = reader.next(); f !== null; f = reader.next())
    out.push([f.type, f.flags, f.streamId, f.length]);
  assert.equal(reader.error, null);
  return out;
}

describe("frame writers and field readers", { timeout: 10_000 }, () => {
  function only(bytes: Buffer): H2Frame {
    const reader = new FrameReader();
    reader.push(Buffer.concat([SETTINGS, bytes]));
    reader.next();
    const f = reader.next();
    assert.ok(f !== null, String(reader.error?.reason));
    return f;
  }

  it("HEADERS split into CONTINUATION at the peer's max frame size, END_STREAM on the first only", () => {
    const block = Buffer.from(Array.from({ length: 40_000 }, (_, i) => i & 0xff));
    const bytes = encodeHeadersFrames(7, block, 0, block.length, true, 16_384);
    assert.deepEqual(frameHeaders(bytes), [
      [1, 0x1, 7, 16_384],
      [9, 0, 7, 16_384],
      [9, 0x4, 7, 7232],
    ]);
    const assembler = new HeaderBlockAssembler(64 * 1024);
    const reader = new FrameReader();
    reader.push(Buffer.concat([SETTINGS, bytes]));
    reader.next();
    const statuses = [1, 2, 3].map(() => assembler.add(reader.next() as H2Frame));
    assert.deepEqual(statuses, ["partial", "partial", "complete"]);
    assert.deepEqual([assembler.streamId, assembler.endStream], [7, true]);
    assert.ok(assembler.buffer.subarray(assembler.offset, assembler.offset + assembler.length).equals(block));
  });

  it("a block in one HEADERS frame is assembled without a copy; a flood past the limit is too_large", () => {
    const one = encodeHeadersFrames(1, Buffer.from("8286", "hex"), 0, 2, false, 16_384);
    const f = only(one);
    const assembler = new HeaderBlockAssembler(100);
    assert.equal(assembler.add(f), "complete");
    assert.equal(assembler.buffer, f.buffer);
    const flood = encodeHeadersFrames(1, Buffer.alloc(150), 0, 150, false, 40);
    const reader = new FrameReader();
    reader.push(Buffer.concat([SETTINGS, flood]));
    reader.next();
    assert.deepEqual(
      [1, 2, 3].map(() => assembler.add(reader.next() as H2Frame)),
      ["partial", "partial", "too_large"],
    );
  });

  it("an empty field block is still one HEADERS frame with END_HEADERS", () => {
    const f = only(encodeHeadersFrames(3, Buffer.alloc(0), 0, 0, true, 16_384));
    assert.deepEqual([f.type, f.flags, f.length], [1, 0x5, 0]);
  });

  it("RST_STREAM, WINDOW_UPDATE, GOAWAY and PING fields read back", () => {
    assert.equal(
      h2ErrorName(readRstStreamCode(only(encodeRstStreamFrame(5, "REFUSED_STREAM")))),
      "REFUSED_STREAM",
    );
    const wu = encodeWindowUpdateFrame(9, 1000);
    wu[9] = 0x80; // the reserved bit must be ignored (§6.9)
    assert.equal(readWindowIncrement(only(wu)), 1000);
    const g = readGoaway(only(encodeGoawayFrame(0x7ffffffd, "NO_ERROR", "draining")));
    assert.deepEqual(
      [g.lastStreamId, h2ErrorName(g.errorCode), g.debugData.toString()],
      [0x7ffffffd, "NO_ERROR", "draining"],
    );
    const ack = only(encodePingFrame(Buffer.from("pingpong"), true));
    assert.deepEqual([ack.flags, readPingPayload(ack).toString()], [1, "pingpong"]);
    assert.equal(h2ErrorName(0xdead), "INTERNAL_ERROR");
  });

  it("writers refuse values outside their protocol range", () => {
    assert.throws(() => encodeWindowUpdateFrame(1, 0), RangeError);
    assert.throws(() => encodeWindowUpdateFrame(1, 2 ** 31), RangeError);
    assert.throws(() => encodePingFrame(Buffer.alloc(7), false), RangeError);
    assert.throws(() => encodeSettingsFrame({ initialWindowSize: 2 ** 32 }), RangeError);
    assert.throws(() => encodeRstStreamFrame(2 ** 31, "CANCEL"), RangeError);
  });
});

describe("client preface check (§3.4)", { timeout: 10_000 }, () => {
  it("match, partial and mismatch, from any offset into the preface", () => {
    assert.equal(checkClientPreface(CLIENT_PREFACE, 0, 24), "match");
    assert.equal(checkClientPreface(CLIENT_PREFACE, 0, 10), "partial");
    assert.equal(checkClientPreface(CLIENT_PREFACE, 10, 14, 10), "match");
    assert.equal(checkClientPreface(Buffer.from("PRI * HTTP/1.1"), 0, 14), "mismatch");
    assert.equal(checkClientPreface(Buffer.concat([CLIENT_PREFACE, SETTINGS]), 0, 50), "match");
  });
});
