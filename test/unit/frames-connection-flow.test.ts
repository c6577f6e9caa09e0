/**
 * The `frames` engine's connection without sockets, on the in-memory pipe (h2-memory-pipe.ts): flow
 * control (one window type, given back only for what was handed on, batched at half the window; a
 * congested sink), header-block assembly and its one bound, the flood guard on the injected clock,
 * the output's one write per turn, and the downstream connection's drain timed on the fake clock.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DownstreamConnection } from "../../src/grpc/engine-frames/frames-downstream.js";
import { FRAMES_TUNING } from "../../src/grpc/engine-frames/frames-tuning.js";
import {
  CLIENT_PREFACE,
  ERROR,
  FLAG,
  FRAME,
  SETTING,
  continuationFrame,
  dataFrame,
  headersFrame,
  pingFrame,
  settingsFrame,
  windowUpdateFrame,
} from "../helpers/h2-frames-client.js";
import {
  H2MemoryPipe,
  MAX_HEADER_LIST,
  REQUEST,
  headerBlock,
  memoryClient,
  errorFrames,
  fieldList,
  requestList,
  memoryServer,
  windowUpdates,
} from "../helpers/h2-memory-pipe.js";

describe("frames connection in memory: flow control", { timeout: 10_000 }, () => {
  it("gives back only what was handed on, batched at half of each window", () => {
    const { pipe, conn, handler } = memoryServer();
    pipe.deliver(headersFrame(1, headerBlock(REQUEST)));
    const end = conn.end(1);
    const half = FRAMES_TUNING.streamWindow / 2;
    const chunk = Buffer.alloc(16_384);
    const frames: Buffer[] = [];
    for (let sent = 0; sent < half; sent += chunk.length) frames.push(dataFrame(1, chunk));
    pipe.deliver(...frames);
    assert.deepEqual(windowUpdates(pipe.take()), [], "nothing handed on, nothing given back");
    conn.consumed(end, half - 1);
    assert.deepEqual(windowUpdates(pipe.take()), []);
    conn.consumed(end, 1);
    assert.deepEqual(
      windowUpdates(pipe.take()),
      [[1, half]],
      "the stream's half; the connection's is larger",
    );
    assert.ok(handler.events.length > 1);
  });

  it("the connection window is given back for DATA no stream takes, padding at once", () => {
    const { pipe, conn } = memoryServer();
    pipe.deliver(headersFrame(1, headerBlock(REQUEST)));
    conn.resetStream(conn.end(1), "CANCEL");
    pipe.take();
    const chunk = Buffer.alloc(16_000);
    const frames: Buffer[] = [];
    const half = FRAMES_TUNING.connectionWindow / 2;
    for (let sent = 0; sent < half; sent += chunk.length + 201)
      frames.push(dataFrame(1, chunk, { padLength: 200 }));
    pipe.deliver(...frames);
    const updates = windowUpdates(pipe.take());
    assert.equal(updates.length, 1, JSON.stringify(updates));
    assert.equal(updates[0]?.[0], 0);
    assert.ok((updates[0]?.[1] ?? 0) >= half);
  });

  it("a peer past the stream window → RST_STREAM FLOW_CONTROL_ERROR; past the connection's → GOAWAY", () => {
    const { pipe, conn } = memoryServer();
    pipe.deliver(headersFrame(1, headerBlock(REQUEST)));
    const chunk = Buffer.alloc(16_384);
    const frames: Buffer[] = [];
    for (let sent = 0; sent <= FRAMES_TUNING.streamWindow; sent += chunk.length)
      frames.push(dataFrame(1, chunk));
    pipe.deliver(...frames);
    assert.deepEqual(errorFrames(pipe.take()), [`rst 1 ${ERROR.FLOW_CONTROL_ERROR}`]);
    assert.equal(conn.closed, false);
    // DATA of streams that are open and not handed on fills the connection window (8 × 4 MiB).
    const more: Buffer[] = [];
    for (let id = 3; id <= 21; id += 2) {
      more.push(headersFrame(id, headerBlock(REQUEST)));
      for (let sent = 0; sent < FRAMES_TUNING.streamWindow; sent += chunk.length)
        more.push(dataFrame(id, chunk));
    }
    pipe.deliver(...more);
    assert.deepEqual(errorFrames(pipe.take()), [`goaway ${ERROR.FLOW_CONTROL_ERROR}`]);
    assert.equal(conn.closed, true);
  });

  it("sending: DATA waits for the peer's window and for a congested sink, and goes on after", () => {
    const { pipe, conn, handler } = memoryClient([[SETTING.INITIAL_WINDOW_SIZE, 10]]);
    const end = conn.startStream(handler, requestList(), false);
    conn.sendData(end, Buffer.alloc(25, 0x61), true);
    let data = pipe.take().filter((f) => f.type === FRAME.DATA);
    assert.deepEqual(
      data.map((f) => f.payload.length),
      [10],
    );
    assert.equal(end.queuedBytes, 15);
    pipe.backlog = FRAMES_TUNING.socketBacklog + 1;
    pipe.deliver(windowUpdateFrame(1, 100));
    assert.deepEqual(
      pipe.take().filter((f) => f.type === FRAME.DATA),
      [],
      "a congested sink holds DATA back",
    );
    pipe.drain();
    data = pipe.take().filter((f) => f.type === FRAME.DATA);
    assert.deepEqual(
      data.map((f) => [f.payload.length, f.flags & FLAG.END_STREAM]),
      [[15, FLAG.END_STREAM]],
    );
    assert.deepEqual(
      handler.events.filter((e) => e.startsWith("written")),
      ["written 1 10", "written 1 15"],
    );
    assert.equal(end.state, "half-closed-local-awaiting-headers");
  });

  it("trailers queued behind DATA leave after it, with END_STREAM", () => {
    const { pipe, conn, handler } = memoryServer();
    pipe.deliver(
      settingsFrame([[SETTING.INITIAL_WINDOW_SIZE, 4]]),
      headersFrame(1, headerBlock(REQUEST), { endStream: true }),
    );
    const end = conn.end(1);
    conn.sendHeaders(end, fieldList([":status", "200"]), false);
    conn.sendData(end, Buffer.from("12345678"), false);
    conn.sendHeaders(end, fieldList(["grpc-status", "0"]), true);
    assert.equal(end.state, "half-closed-remote", "the trailers wait");
    pipe.take();
    pipe.deliver(windowUpdateFrame(1, 4));
    const out = pipe.take();
    assert.deepEqual(
      out.map((f) => [f.type, f.flags & FLAG.END_STREAM, f.payload.length]),
      [
        [FRAME.DATA, 0, 4],
        [FRAME.HEADERS, FLAG.END_STREAM, out[1]?.payload.length],
      ],
    );
    assert.deepEqual(out[1]?.headers, [["grpc-status", "0"]]);
    assert.equal(end.state, "closed");
    assert.ok(handler.events.includes("local-end 1"));
  });
});

describe("frames connection in memory: header blocks, floods, output", { timeout: 10_000 }, () => {
  it("HEADERS + CONTINUATION make one block; past the bound → GOAWAY ENHANCE_YOUR_CALM", () => {
    const { pipe, handler } = memoryServer();
    const b = headerBlock([...REQUEST, ["x-meta", "m".repeat(300)]]);
    pipe.deliver(
      headersFrame(1, b.subarray(0, 7), { endHeaders: false, endStream: true }),
      continuationFrame(1, b.subarray(7, 100), false),
      continuationFrame(1, b.subarray(100)),
    );
    assert.deepEqual(handler.events, ["headers 1 :method=POST end"]);
    const big = memoryServer();
    const part = Buffer.alloc(16_384, 0x40);
    const frames = [headersFrame(3, part, { endHeaders: false })];
    for (let n = part.length; n <= MAX_HEADER_LIST * 2 + 16_384; n += part.length)
      frames.push(continuationFrame(3, part, false));
    big.pipe.deliver(...frames);
    assert.deepEqual(errorFrames(big.pipe.take()), [`goaway ${ERROR.ENHANCE_YOUR_CALM}`]);
    assert.deepEqual(big.handler.events, []);
  });

  it("a PING flood ends the connection (ENHANCE_YOUR_CALM); the same PINGs spread over time do not", () => {
    const burst = FRAMES_TUNING.floodBurst;
    const flood = memoryServer();
    const pings = Array.from({ length: burst + 1 }, () => pingFrame());
    flood.pipe.deliver(...pings);
    assert.deepEqual(errorFrames(flood.pipe.take()), [`goaway ${ERROR.ENHANCE_YOUR_CALM}`]);
    const calm = memoryServer();
    for (let i = 0; i < 4; i++) {
      calm.pipe.deliver(...pings.slice(0, burst / 2));
      calm.pipe.timers.advance(1000);
    }
    const out = calm.pipe.take();
    assert.deepEqual(errorFrames(out), []);
    assert.equal(out.filter((f) => f.type === FRAME.PING && (f.flags & FLAG.ACK) !== 0).length, 2 * burst);
    assert.equal(calm.conn.closed, false);
  });

  it("everything one turn produces reaches the sink in one write", () => {
    const { pipe, conn } = memoryServer();
    pipe.deliver(
      headersFrame(1, headerBlock(REQUEST), { endStream: true }),
      headersFrame(3, headerBlock(REQUEST), { endStream: true }),
    );
    const before = pipe.batches;
    for (const id of [1, 3]) {
      const end = conn.end(id);
      conn.sendHeaders(end, fieldList([":status", "200"]), false);
      conn.sendData(end, Buffer.alloc(5000), false);
      conn.sendHeaders(end, fieldList(["grpc-status", "0"]), true);
    }
    assert.equal(pipe.batches, before, "nothing written before the turn ends");
    const out = pipe.take();
    assert.equal(pipe.batches - before, 1, "header blocks and attached payloads in one corked write");
    assert.equal(out.length, 6);
  });

  it("the peer's FIN with no stream open ends the connection; destroy resets every stream", () => {
    const idle = memoryServer();
    idle.pipe.peerEnds();
    assert.equal(idle.conn.closedWhy, "peer closed");
    const { pipe, conn, handler } = memoryServer();
    pipe.deliver(headersFrame(1, headerBlock(REQUEST)));
    conn.destroy("test");
    assert.equal(conn.end(1).state, "closed");
    assert.equal(handler.events.at(-1), `reset 1 ${ERROR.CANCEL} connection`);
    assert.equal(pipe.ended, true);
  });
});

describe("frames downstream connection in memory", { timeout: 10_000 }, () => {
  function downstream(): { pipe: H2MemoryPipe; conn: DownstreamConnection; closed: string[] } {
    const pipe = new H2MemoryPipe();
    const closed: string[] = [];
    const conn = new DownstreamConnection(pipe, MAX_HEADER_LIST, {
      // Only the refusals run here: a request that would be proxied fails the test.
      route: () => assert.fail("no request is routed in these tests"),
      scheme: () => "http",
      onStreamStart: () => {},
      onStreamDone: () => {},
      onHandshake: () => {},
      onClosed: () => closed.push("closed"),
    });
    pipe.deliver(CLIENT_PREFACE, settingsFrame());
    pipe.take();
    return { pipe, conn, closed };
  }

  it("drain: GOAWAY at the largest id and a PING, the final GOAWAY when the timer fires (fake clock)", () => {
    const { pipe, conn, closed } = downstream();
    pipe.deliver(headersFrame(1, headerBlock([...REQUEST, ["content-length", "1"]]), { endStream: true }));
    conn.drain();
    let out = pipe.take();
    assert.deepEqual(
      out.map((f) => f.type),
      [FRAME.RST_STREAM, FRAME.GOAWAY, FRAME.PING],
    );
    assert.equal(out[1]?.payload.readUInt32BE(0), 2 ** 31 - 1);
    pipe.timers.advance(FRAMES_TUNING.goawayPingTimeoutMs - 1);
    assert.deepEqual(pipe.take(), [], "the final GOAWAY waits for the PING or the timer");
    pipe.timers.advance(1);
    out = pipe.take();
    assert.deepEqual(
      out.map((f) => [f.type, f.payload.readUInt32BE(0)]),
      [[FRAME.GOAWAY, 1]],
      "the final GOAWAY names the last stream the client opened",
    );
    assert.deepEqual(closed, ["closed"], "no stream open: the connection closes");
    assert.equal(pipe.ended, true);
  });

  it("refused before routing: malformed requests, bad content-length, a stream after the final GOAWAY", () => {
    const { pipe, conn } = downstream();
    pipe.deliver(
      headersFrame(1, headerBlock(REQUEST.filter(([n]) => n !== ":path")), { endStream: true }),
      headersFrame(3, headerBlock([...REQUEST, ["content-length", "x"]]), { endStream: true }),
      headersFrame(5, headerBlock([...REQUEST, ["content-length", "2"]]), { endStream: true }),
    );
    assert.deepEqual(errorFrames(pipe.take()), [
      `rst 1 ${ERROR.PROTOCOL_ERROR}`,
      `rst 3 ${ERROR.PROTOCOL_ERROR}`,
      `rst 5 ${ERROR.PROTOCOL_ERROR}`,
    ]);
    conn.goAway();
    assert.deepEqual(
      pipe.take().map((f) => [f.type, f.payload.readUInt32BE(0)]),
      [[FRAME.GOAWAY, 5]],
    );
  });
});
