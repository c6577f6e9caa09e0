/**
 * HTTP/2 frame reader (RFC 9113 §3.4, §4, §6): the FrameReader over arbitrary chunk splits (property
 * test) of a conversation written by every writer, zero-copy views, and every validation rule it
 * enforces as a connection error.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { FrameReader, type FrameReaderOptions, type H2Frame } from "../../src/h2/h2-frame-reader.js";
import { readPingPayload } from "../../src/h2/h2-frame-fields.js";
import { FLAG_PADDED, FLAG_PRIORITY, FRAME_DATA, FRAME_HEADERS } from "../../src/h2/h2-frame-types.js";
import {
  SETTINGS_ACK_FRAME,
  encodeDataFrameHeader,
  encodeGoawayFrame,
  encodeHeadersFrames,
  encodePingFrame,
  encodeRstStreamFrame,
  encodeSettingsFrame,
  encodeWindowUpdateFrame,
  writeFrameHeader,
} from "../../src/h2/h2-frame-writers.js";
import { CLIENT_PREFACE } from "../../src/h2/h2-preface.js";

/** A raw frame, for frames the writers would never produce. */
function frame(type: number, flags: number, streamId: number, payload: Buffer | string = ""): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload.replace(/\s+/g, ""), "hex") : payload;
  const out = Buffer.alloc(9 + body.length);
  writeFrameHeader(out, 0, body.length, type, flags, streamId);
  body.copy(out, 9);
  return out;
}

const SETTINGS = encodeSettingsFrame({ maxConcurrentStreams: 100, initialWindowSize: 1 << 20 });

/** A plain copy of what the reader yielded, so frames from different runs can be compared. */
function snapshot(f: H2Frame) {
  return {
    type: f.type,
    flags: f.flags,
    streamId: f.streamId,
    length: f.length,
    data: f.data().toString("hex"),
    padLength: f.padLength,
    priority: f.hasPriority ? [f.priorityExclusive, f.priorityDependency, f.priorityWeight] : null,
  };
}

function readAll(chunks: Buffer[], options: FrameReaderOptions = {}) {
  const reader = new FrameReader(options);
  const frames: Array<ReturnType<typeof snapshot>> = [];
  for (const chunk of chunks) {
    reader.push(chunk);
    for (let f = reader.next(); f !== null; f = reader.next()) frames.push(snapshot(f));
  }
  return { frames, error: reader.error, reader };
}

function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(start, p));
    start = p;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

/** One connection's worth of frames from every writer, plus padded and prioritised ones. */
function conversation(): Buffer {
  const block = Buffer.alloc(40_000, 0x82);
  return Buffer.concat([
    CLIENT_PREFACE,
    SETTINGS,
    SETTINGS_ACK_FRAME,
    encodeHeadersFrames(1, block, 0, block.length, false, 16_384),
    encodeDataFrameHeader(1, 5, false),
    Buffer.from("hello"),
    frame(FRAME_DATA, FLAG_PADDED | 0x1, 1, "03 616263 000000"),
    frame(FRAME_HEADERS, FLAG_PADDED | FLAG_PRIORITY | 0x4 | 0x1, 3, "02 80000001 ff 8286 0000"),
    frame(0xfa, 0, 0, "00112233"),
    encodePingFrame(Buffer.from("01234567"), false),
    encodePingFrame(Buffer.from("76543210"), true),
    encodeWindowUpdateFrame(0, 0x7fffffff),
    encodeRstStreamFrame(3, "CANCEL"),
    encodeGoawayFrame(3, "ENHANCE_YOUR_CALM", "calm down"),
  ]);
}

describe("FrameReader over chunk splits", { timeout: 20_000 }, () => {
  const bytes = conversation();
  const whole = readAll([bytes], { expectClientPreface: true });

  it("reads every frame of the conversation, skipping the unknown type", () => {
    assert.equal(whole.error, null);
    assert.deepEqual(
      whole.frames.map((f) => f.type),
      [4, 4, 1, 9, 9, 0, 0, 1, 6, 6, 8, 3, 7],
    );
    const padded = whole.frames[6];
    assert.deepEqual([padded?.length, padded?.padLength, padded?.data], [7, 3, "616263"]);
    const prioritised = whole.frames[7];
    assert.deepEqual(prioritised?.priority, [true, 1, 256]);
    assert.deepEqual([prioritised?.data, prioritised?.padLength], ["8286", 2]);
    assert.equal(whole.reader.buffered, 0);
  });

  it("any split into chunks yields the same frames (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 40 }), (cuts) => {
        const split = readAll(splitAt(bytes, cuts), { expectClientPreface: true });
        assert.deepEqual(split.frames, whole.frames);
        assert.equal(split.error, null);
      }),
      { seed: 4242, numRuns: 300 },
    );
  });

  it("one octet at a time yields the same frames", () => {
    const chunks = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
    assert.deepEqual(readAll(chunks, { expectClientPreface: true }).frames, whole.frames);
  });

  it("a frame within one chunk is a view of that chunk; a split one is a fresh copy", () => {
    const ping = encodePingFrame(Buffer.from("abcdefgh"), false);
    const chunk = Buffer.concat([SETTINGS, ping]);
    const reader = new FrameReader();
    reader.push(chunk);
    assert.equal(reader.next()?.buffer, chunk);
    const f = reader.next();
    assert.ok(f !== null);
    assert.equal(f.buffer, chunk);
    assert.equal(readPingPayload(f).toString(), "abcdefgh");
    const split = new FrameReader();
    const first = chunk.subarray(0, SETTINGS.length + 12);
    split.push(first);
    assert.equal(split.next()?.buffer, first);
    assert.equal(split.next(), null);
    split.push(Buffer.from(chunk.subarray(SETTINGS.length + 12)));
    const copied = split.next();
    assert.notEqual(copied?.buffer, chunk);
    assert.equal(readPingPayload(copied as H2Frame).toString(), "abcdefgh");
  });

  it("frames left unread when the next chunk arrives are kept", () => {
    const reader = new FrameReader();
    reader.push(Buffer.concat([SETTINGS, SETTINGS_ACK_FRAME]));
    assert.equal(reader.next()?.type, 4);
    reader.push(encodePingFrame(Buffer.alloc(8), true));
    assert.deepEqual([reader.next()?.flags, reader.next()?.type, reader.next()], [1, 6, null]);
  });
});

describe("FrameReader validation (connection errors)", { timeout: 10_000 }, () => {
  const cases: Array<[string, Buffer[], string, string]> = [
    [
      "an HTTP/1.1 request instead of the preface",
      [Buffer.from("GET / HTTP/1.1\r\n")],
      "PROTOCOL_ERROR",
      "bad_preface",
    ],
    [
      "a PING before SETTINGS",
      [encodePingFrame(Buffer.alloc(8), false)],
      "PROTOCOL_ERROR",
      "first_frame_not_settings",
    ],
    ["a SETTINGS ack first", [SETTINGS_ACK_FRAME], "PROTOCOL_ERROR", "first_frame_not_settings"],
    [
      "a frame above SETTINGS_MAX_FRAME_SIZE",
      [SETTINGS, frame(0, 0, 1, Buffer.alloc(16_385))],
      "FRAME_SIZE_ERROR",
      "frame_too_large",
    ],
    ["DATA on stream 0", [SETTINGS, frame(0, 0, 0, "00")], "PROTOCOL_ERROR", "stream_id_required"],
    [
      "DATA padding as long as the payload",
      [SETTINGS, frame(0, FLAG_PADDED, 1, "04 000000")],
      "PROTOCOL_ERROR",
      "bad_padding",
    ],
    [
      "DATA PADDED with no pad length octet",
      [SETTINGS, frame(0, FLAG_PADDED, 1)],
      "FRAME_SIZE_ERROR",
      "bad_frame_length",
    ],
    ["HEADERS on stream 0", [SETTINGS, frame(1, 4, 0, "82")], "PROTOCOL_ERROR", "stream_id_required"],
    [
      "HEADERS padding past the fragment",
      [SETTINGS, frame(1, FLAG_PADDED | 4, 1, "03 82 00")],
      "PROTOCOL_ERROR",
      "bad_padding",
    ],
    [
      "HEADERS too short for its priority fields",
      [SETTINGS, frame(1, FLAG_PRIORITY | 4, 1, "00000000")],
      "FRAME_SIZE_ERROR",
      "bad_frame_length",
    ],
    [
      "HEADERS depending on itself",
      [SETTINGS, frame(1, FLAG_PRIORITY | 4, 5, "00000005 10 82")],
      "PROTOCOL_ERROR",
      "self_dependency",
    ],
    ["PRIORITY of 4 octets", [SETTINGS, frame(2, 0, 1, "00000000")], "FRAME_SIZE_ERROR", "bad_frame_length"],
    [
      "PRIORITY on stream 0",
      [SETTINGS, frame(2, 0, 0, "00000001 10")],
      "PROTOCOL_ERROR",
      "stream_id_required",
    ],
    [
      "PRIORITY depending on itself",
      [SETTINGS, frame(2, 0, 3, "00000003 10")],
      "PROTOCOL_ERROR",
      "self_dependency",
    ],
    ["RST_STREAM of 3 octets", [SETTINGS, frame(3, 0, 1, "000008")], "FRAME_SIZE_ERROR", "bad_frame_length"],
    [
      "RST_STREAM on stream 0",
      [SETTINGS, frame(3, 0, 0, "00000008")],
      "PROTOCOL_ERROR",
      "stream_id_required",
    ],
    ["SETTINGS on a stream", [SETTINGS, frame(4, 0, 1)], "PROTOCOL_ERROR", "stream_id_forbidden"],
    ["SETTINGS of 7 octets", [frame(4, 0, 0, "00030000006400")], "FRAME_SIZE_ERROR", "bad_frame_length"],
    [
      "a SETTINGS ack with a payload",
      [SETTINGS, frame(4, 1, 0, "000300000064")],
      "FRAME_SIZE_ERROR",
      "bad_frame_length",
    ],
    ["PUSH_PROMISE", [SETTINGS, frame(5, 4, 1, "00000002 82")], "PROTOCOL_ERROR", "push_promise"],
    [
      "PING of 7 octets",
      [SETTINGS, frame(6, 0, 0, "00000000000000")],
      "FRAME_SIZE_ERROR",
      "bad_frame_length",
    ],
    [
      "PING on a stream",
      [SETTINGS, frame(6, 0, 1, "0000000000000000")],
      "PROTOCOL_ERROR",
      "stream_id_forbidden",
    ],
    [
      "GOAWAY of 7 octets",
      [SETTINGS, frame(7, 0, 0, "00000000000000")],
      "FRAME_SIZE_ERROR",
      "bad_frame_length",
    ],
    [
      "GOAWAY on a stream",
      [SETTINGS, frame(7, 0, 1, "0000000000000000")],
      "PROTOCOL_ERROR",
      "stream_id_forbidden",
    ],
    [
      "WINDOW_UPDATE of 5 octets",
      [SETTINGS, frame(8, 0, 0, "0000000100")],
      "FRAME_SIZE_ERROR",
      "bad_frame_length",
    ],
    [
      "CONTINUATION with no HEADERS before",
      [SETTINGS, frame(9, 4, 1, "82")],
      "PROTOCOL_ERROR",
      "unexpected_continuation",
    ],
    ["CONTINUATION on stream 0", [SETTINGS, frame(9, 4, 0, "82")], "PROTOCOL_ERROR", "stream_id_required"],
    [
      "DATA inside a field block",
      [SETTINGS, frame(1, 0, 1, "82"), frame(0, 0, 1)],
      "PROTOCOL_ERROR",
      "continuation_expected",
    ],
    [
      "CONTINUATION of another stream",
      [SETTINGS, frame(1, 0, 1, "82"), frame(9, 4, 3, "84")],
      "PROTOCOL_ERROR",
      "continuation_expected",
    ],
    [
      "an unknown frame inside a field block",
      [SETTINGS, frame(1, 0, 1, "82"), frame(0xfa, 0, 0)],
      "PROTOCOL_ERROR",
      "continuation_expected",
    ],
  ];
  for (const [what, chunks, code, reason] of cases) {
    it(what, () => {
      const { error } = readAll(chunks, { expectClientPreface: chunks[0]?.[0] === 0x47 });
      assert.deepEqual([error?.code, error?.reason], [code, reason]);
    });
  }

  it("a bad preface is refused from its first differing octet; a good one split anywhere passes", () => {
    assert.equal(readAll([Buffer.from("PRX")], { expectClientPreface: true }).error?.reason, "bad_preface");
    assert.equal(readAll([CLIENT_PREFACE.subarray(0, 10)], { expectClientPreface: true }).error, null);
  });

  it("an oversized frame is refused from its header alone, before its payload is buffered", () => {
    const reader = new FrameReader();
    reader.push(SETTINGS);
    reader.next();
    reader.push(frame(0, 0, 1, Buffer.alloc(20_000)).subarray(0, 9));
    assert.equal(reader.next(), null);
    assert.equal(reader.error?.reason, "frame_too_large");
  });

  it("a raised SETTINGS_MAX_FRAME_SIZE admits larger frames", () => {
    const big = frame(0, 0, 1, Buffer.alloc(20_000, 7));
    assert.equal(readAll([SETTINGS, big], { maxFrameSize: 20_000 }).frames[1]?.length, 20_000);
  });

  it("the reserved bit of the stream id is ignored, and nothing is read after an error", () => {
    const withR = frame(0, 0, 1, "aa");
    withR[5] = 0x80;
    assert.equal(readAll([SETTINGS, withR]).frames[1]?.streamId, 1);
    const r = readAll([SETTINGS, frame(6, 0, 1, "0000000000000000"), encodePingFrame(Buffer.alloc(8), true)]);
    assert.deepEqual([r.frames.length, r.error?.reason], [1, "stream_id_forbidden"]);
  });
});
