/**
 * The `frames` engine's connection without sockets: an in-memory pipe (h2-memory-pipe.ts) plays the
 * peer frame by frame on a fake clock. The server role runs on a minimal server (every stream opened
 * with a recording handler), the client role on the engine's own UpstreamConnection. Covered: the
 * stream states of RFC 9113 §5.1 (half-closed both ways, RST_STREAM in each state, frames on idle and
 * closed streams), the message rules of §8.1 (second HEADERS, trailers, content-length), flow control
 * (one window type, give-back batched at half the window), header-block assembly and its bound, the
 * flood guard on the injected clock, and the output's one write per turn.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  H2Connection,
  StreamEnd,
  type DecodeStatus,
} from "../../src/grpc/engine-frames/frames-connection.js";
import { DownstreamConnection } from "../../src/grpc/engine-frames/frames-downstream.js";
import type { StreamHandler } from "../../src/grpc/engine-frames/frames-stream-end.js";
import { FRAMES_TUNING } from "../../src/grpc/engine-frames/frames-tuning.js";
import { UpstreamConnection, type UpstreamEvents } from "../../src/grpc/engine-frames/frames-upstream.js";
import { HeaderList } from "../../src/h2/hpack-header-list.js";
import {
  CLIENT_PREFACE,
  ERROR,
  FLAG,
  FRAME,
  SETTING,
  continuationFrame,
  dataFrame,
  encodeHeaderBlock,
  frame,
  headersFrame,
  pingFrame,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
  type HeaderList as Fields,
} from "../helpers/h2-frames-client.js";
import { H2MemoryPipe, type PipeFrame } from "../helpers/h2-memory-pipe.js";

const MAX_HEADER_LIST = 16 * 1024;
const REQUEST: Fields = [
  [":method", "POST"],
  [":scheme", "http"],
  [":path", "/pkg.Svc/M"],
  [":authority", "fulcrum"],
  ["content-type", "application/grpc"],
  ["te", "trailers"],
];

/** Everything a stream's handler heard, as short strings. */
class Recorder implements StreamHandler {
  readonly events: string[] = [];
  /** Hand received DATA on at once (give its window back). */
  autoConsume = false;

  onHeaders(end: StreamEnd, list: HeaderList, endStream: boolean): void {
    const first = list.length > 0 ? `${list.name(0)}=${list.value(0)}` : "";
    this.events.push(`headers ${end.id} ${first}${endStream ? " end" : ""}`);
  }

  onData(end: StreamEnd, data: Buffer, endStream: boolean): void {
    this.events.push(`data ${end.id} ${data.length}${endStream ? " end" : ""}`);
    if (this.autoConsume) end.conn.consumed(end, data.length);
  }

  onReset(end: StreamEnd, code: number, why: string): void {
    this.events.push(`reset ${end.id} ${code} ${why}`);
  }

  onWritten(end: StreamEnd, n: number): void {
    this.events.push(`written ${end.id} ${n}`);
  }

  onLocalEnd(end: StreamEnd): void {
    this.events.push(`local-end ${end.id}`);
  }
}

/** The server role with nothing of the proxy: every valid stream is opened for `handler`. */
class TestServer extends H2Connection {
  readonly opened = new Map<number, StreamEnd>();
  closedWhy: string | undefined;
  private lastId = 0;

  constructor(
    pipe: H2MemoryPipe,
    readonly handler: Recorder,
  ) {
    super(pipe, "server", MAX_HEADER_LIST);
    this.sendPrefaceSettings({ maxConcurrentStreams: 100 });
  }

  protected override onNewStreamHeaders(
    id: number,
    list: HeaderList,
    endStream: boolean,
    status: DecodeStatus,
  ): void {
    if (id % 2 === 0 || id <= this.lastId) {
      if (this.wasReset(id)) return;
      return this.connectionError("PROTOCOL_ERROR", "bad stream id");
    }
    this.lastId = id;
    const end = new StreamEnd(this, id, this.handler);
    this.register(end);
    this.opened.set(id, end);
    const refusal = this.acceptHeaders(end, list, endStream);
    if (status !== "ok" || refusal !== undefined) return this.resetStream(end, refusal ?? "PROTOCOL_ERROR");
    this.handler.onHeaders(end, list, endStream);
  }

  protected override onPeerSettings(): void {}
  protected override onGoaway(): void {}
  protected override onClosed(why: string): void {
    this.closedWhy = why;
  }
  protected override isIdle(id: number): boolean {
    return id % 2 === 1 ? id > this.lastId : true;
  }
  protected override lastPeerStreamId(): number {
    return this.lastId;
  }

  end(id: number): StreamEnd {
    const end = this.opened.get(id);
    assert.ok(end, `stream ${id} was opened`);
    return end;
  }
}

function server(): { pipe: H2MemoryPipe; conn: TestServer; handler: Recorder } {
  const pipe = new H2MemoryPipe();
  const handler = new Recorder();
  const conn = new TestServer(pipe, handler);
  pipe.deliver(CLIENT_PREFACE, settingsFrame());
  const preface = pipe.take();
  assert.deepEqual(
    preface.map((f) => f.type),
    [FRAME.SETTINGS, FRAME.WINDOW_UPDATE, FRAME.SETTINGS],
  );
  return { pipe, conn, handler };
}

const NO_EVENTS: UpstreamEvents = { onOpen: () => {}, onStateChange: () => {}, onStreamEnded: () => {} };

function client(settings: readonly (readonly [number, number])[] = []): {
  pipe: H2MemoryPipe;
  conn: UpstreamConnection;
  handler: Recorder;
} {
  const pipe = new H2MemoryPipe();
  const conn = new UpstreamConnection(pipe, MAX_HEADER_LIST, NO_EVENTS);
  pipe.deliver(settingsFrame(settings));
  pipe.take();
  assert.equal(conn.state, "open");
  return { pipe, conn, handler: new Recorder() };
}

function requestList(): HeaderList {
  const l = new HeaderList();
  for (const [n, v] of REQUEST) l.add(n, v);
  return l;
}

function fields(...pairs: [string, string][]): HeaderList {
  const l = new HeaderList();
  for (const [n, v] of pairs) l.add(n, v);
  return l;
}

function block(headers: Fields): Buffer {
  return encodeHeaderBlock(headers);
}

/** The RST_STREAM and GOAWAY frames in `frames`, as "rst ID CODE" / "goaway CODE". */
function errors(frames: readonly PipeFrame[]): string[] {
  const out: string[] = [];
  for (const f of frames) {
    if (f.type === FRAME.RST_STREAM) out.push(`rst ${f.streamId} ${f.payload.readUInt32BE(0)}`);
    if (f.type === FRAME.GOAWAY) out.push(`goaway ${f.payload.readUInt32BE(4)}`);
  }
  return out;
}

function windowUpdates(frames: readonly PipeFrame[]): [number, number][] {
  return frames
    .filter((f) => f.type === FRAME.WINDOW_UPDATE)
    .map((f) => [f.streamId, f.payload.readUInt32BE(0)]);
}

describe("frames connection in memory: stream states (RFC 9113 §5.1)", { timeout: 10_000 }, () => {
  it("open → half-closed (remote) by the request's END_STREAM → closed by our END_STREAM", () => {
    const { pipe, conn, handler } = server();
    pipe.deliver(headersFrame(1, block(REQUEST), { endStream: true }));
    const end = conn.end(1);
    assert.equal(end.state, "half-closed-remote");
    assert.deepEqual(handler.events, ["headers 1 :method=POST end"]);
    conn.sendHeaders(end, fields([":status", "200"]), false);
    assert.equal(end.state, "half-closed-remote");
    conn.sendData(end, Buffer.from("hello"), false);
    conn.sendHeaders(end, fields(["grpc-status", "0"]), true);
    assert.equal(end.state, "closed");
    assert.equal(conn.streams.size, 0, "a closed stream leaves the table");
    const out = pipe.take();
    assert.deepEqual(
      out.map((f) => [f.type, f.flags & FLAG.END_STREAM, f.streamId]),
      [
        [FRAME.HEADERS, 0, 1],
        [FRAME.DATA, 0, 1],
        [FRAME.HEADERS, FLAG.END_STREAM, 1],
      ],
    );
    assert.deepEqual(out[2]?.headers, [["grpc-status", "0"]]);
  });

  it("half-closed (local): our END_STREAM first, the peer's DATA still arrives, its END_STREAM closes", () => {
    const { pipe, conn, handler } = server();
    pipe.deliver(headersFrame(1, block(REQUEST)));
    const end = conn.end(1);
    assert.equal(end.state, "open");
    conn.sendHeaders(end, fields([":status", "200"], ["grpc-status", "0"]), true);
    assert.equal(end.state, "half-closed-local");
    pipe.deliver(dataFrame(1, Buffer.from("late")), dataFrame(1, Buffer.alloc(0), { endStream: true }));
    assert.equal(end.state, "closed");
    assert.equal(conn.streams.size, 0);
    assert.deepEqual(handler.events.slice(1), ["local-end 1", "data 1 4", "data 1 0 end"]);
    assert.deepEqual(errors(pipe.take()), []);
  });

  it("half-closed (remote): DATA and HEADERS get RST_STREAM STREAM_CLOSED; WINDOW_UPDATE and PRIORITY do not", () => {
    const { pipe, conn, handler } = server();
    pipe.deliver(
      settingsFrame([[SETTING.INITIAL_WINDOW_SIZE, 0]]),
      headersFrame(1, block(REQUEST), { endStream: true }),
      windowUpdateFrame(1, 1),
      frame(FRAME.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 255])),
    );
    const end = conn.end(1);
    conn.sendHeaders(end, fields([":status", "200"]), false);
    conn.sendData(end, Buffer.from("abc"), true);
    let out = pipe.take();
    assert.deepEqual(errors(out), []);
    // The window of 0 + 1 lets one octet out: the response is under way, not refused.
    assert.deepEqual(
      out.filter((f) => f.type === FRAME.DATA).map((f) => f.payload.length),
      [1],
    );
    pipe.deliver(dataFrame(1, Buffer.from("x")));
    out = pipe.take();
    assert.deepEqual(errors(out), [`rst 1 ${ERROR.STREAM_CLOSED}`]);
    assert.equal(end.state, "closed");
    assert.ok(handler.events.includes(`reset 1 ${ERROR.STREAM_CLOSED} protocol`));
  });

  for (const [state, setup] of [
    ["open", (c: TestServer, p: H2MemoryPipe) => p.deliver(headersFrame(1, block(REQUEST)))],
    [
      "half-closed-remote",
      (_c: TestServer, p: H2MemoryPipe) => p.deliver(headersFrame(1, block(REQUEST), { endStream: true })),
    ],
    [
      "half-closed-local",
      (c: TestServer, p: H2MemoryPipe) => {
        p.deliver(headersFrame(1, block(REQUEST)));
        c.sendHeaders(c.end(1), fields([":status", "200"], ["grpc-status", "0"]), true);
      },
    ],
  ] as const) {
    it(`RST_STREAM in ${state} closes the stream and tells its owner; later frames on it are ignored`, () => {
      const { pipe, conn, handler } = server();
      setup(conn, pipe);
      const end = conn.end(1);
      assert.equal(end.state, state);
      pipe.deliver(rstStreamFrame(1, ERROR.CANCEL));
      assert.equal(end.state, "closed");
      assert.equal(conn.streams.size, 0);
      assert.ok(handler.events.includes(`reset 1 ${ERROR.CANCEL} peer`), handler.events.join());
      // A RST_STREAM on a closed stream is no error (§5.1 closed: frames in flight); a closed stream
      // that was not reset by us answers DATA with STREAM_CLOSED.
      pipe.deliver(rstStreamFrame(1, ERROR.CANCEL), dataFrame(1, Buffer.from("x")));
      assert.deepEqual(errors(pipe.take()), [`rst 1 ${ERROR.STREAM_CLOSED}`]);
      assert.equal(conn.closed, false);
    });
  }

  it("closed by our RST_STREAM: the peer's frames in flight are ignored (no answer)", () => {
    const { pipe, conn } = server();
    pipe.deliver(headersFrame(1, block(REQUEST)));
    conn.resetStream(conn.end(1), "CANCEL");
    assert.deepEqual(errors(pipe.take()), [`rst 1 ${ERROR.CANCEL}`]);
    pipe.deliver(
      dataFrame(1, Buffer.from("in flight")),
      headersFrame(1, block([["grpc-status", "0"]]), { endStream: true }),
      windowUpdateFrame(1, 10),
    );
    assert.deepEqual(errors(pipe.take()), []);
    assert.equal(conn.closed, false);
  });

  it("idle streams: DATA, RST_STREAM or WINDOW_UPDATE → connection error PROTOCOL_ERROR; PRIORITY is fine", () => {
    for (const bad of [
      dataFrame(5, Buffer.from("x")),
      rstStreamFrame(5, ERROR.CANCEL),
      windowUpdateFrame(5, 1),
    ]) {
      const { pipe, conn } = server();
      pipe.deliver(frame(FRAME.PRIORITY, 0, 3, Buffer.from([0, 0, 0, 0, 16])));
      assert.equal(conn.closed, false, "PRIORITY on an idle stream");
      pipe.deliver(bad);
      assert.deepEqual(errors(pipe.take()), [`goaway ${ERROR.PROTOCOL_ERROR}`]);
      assert.equal(conn.closed, true);
      assert.equal(pipe.ended, true, "the link was ended");
    }
  });
});

describe("frames connection in memory: messages (RFC 9113 §8.1)", { timeout: 10_000 }, () => {
  it("§8.1 a second HEADERS without END_STREAM → RST_STREAM PROTOCOL_ERROR, never handed on", () => {
    const { pipe, handler } = server();
    pipe.deliver(headersFrame(1, block(REQUEST)), headersFrame(1, block([["x-more", "1"]])));
    assert.deepEqual(errors(pipe.take()), [`rst 1 ${ERROR.PROTOCOL_ERROR}`]);
    assert.deepEqual(handler.events, ["headers 1 :method=POST", `reset 1 ${ERROR.PROTOCOL_ERROR} protocol`]);
  });

  it("§8.1 trailers with a pseudo-header field → RST_STREAM PROTOCOL_ERROR; plain trailers end the stream", () => {
    const { pipe, handler } = server();
    pipe.deliver(
      headersFrame(1, block(REQUEST)),
      headersFrame(1, block([[":status", "200"]]), { endStream: true }),
      headersFrame(3, block(REQUEST)),
      headersFrame(3, block([["x-trailer", "1"]]), { endStream: true }),
    );
    assert.deepEqual(errors(pipe.take()), [`rst 1 ${ERROR.PROTOCOL_ERROR}`]);
    assert.deepEqual(handler.events, [
      "headers 1 :method=POST",
      `reset 1 ${ERROR.PROTOCOL_ERROR} protocol`,
      "headers 3 :method=POST",
      "headers 3 x-trailer=1 end",
    ]);
  });

  const lengths: readonly [string, string, Buffer[], boolean][] = [
    ["one DATA frame longer", "3", [Buffer.from("four")], false],
    ["one DATA frame shorter", "5", [Buffer.from("four")], false],
    ["several DATA frames adding up to more", "6", [Buffer.from("four"), Buffer.from("four")], false],
    ["several DATA frames adding up to less", "9", [Buffer.from("four"), Buffer.from("four")], false],
    ["several DATA frames adding up exactly", "8", [Buffer.from("four"), Buffer.from("four")], true],
    ["no DATA, END_STREAM on the HEADERS", "1", [], false],
    ["an invalid value", "1,1", [Buffer.from("x")], false],
  ];
  for (const [what, length, parts, fine] of lengths) {
    it(`§8.1.1 content-length ${length}, ${what} → ${fine ? "accepted" : "RST_STREAM PROTOCOL_ERROR"}`, () => {
      const { pipe, handler } = server();
      const headers: Fields = [...REQUEST, ["content-length", length]];
      const frames =
        parts.length === 0
          ? [headersFrame(1, block(headers), { endStream: true })]
          : [
              headersFrame(1, block(headers)),
              ...parts.map((p, i) => dataFrame(1, p, { endStream: i === parts.length - 1 })),
            ];
      pipe.deliver(...frames);
      const rst = errors(pipe.take());
      if (fine) {
        assert.deepEqual(rst, []);
        assert.equal(handler.events.at(-1), "data 1 4 end");
      } else {
        assert.deepEqual(rst, [`rst 1 ${ERROR.PROTOCOL_ERROR}`]);
        assert.ok(
          !handler.events.some((e) => e.endsWith(" end")),
          `nothing ended normally: ${handler.events.join(", ")}`,
        );
      }
    });
  }

  it("client role: 1xx, then the final headers, DATA and trailers; DATA before headers is PROTOCOL_ERROR", () => {
    const { pipe, conn, handler } = client();
    const end = conn.startStream(handler, requestList(), true);
    assert.equal(end.state, "half-closed-local-awaiting-headers");
    pipe.deliver(
      headersFrame(1, block([[":status", "103"]])),
      headersFrame(1, block([[":status", "200"]])),
      dataFrame(1, Buffer.from("body")),
      headersFrame(1, block([["grpc-status", "0"]]), { endStream: true }),
    );
    assert.equal(end.state, "closed");
    assert.deepEqual(handler.events, [
      "local-end 1",
      "headers 1 :status=103",
      "headers 1 :status=200",
      "data 1 4",
      "headers 1 grpc-status=0 end",
    ]);
    const early = conn.startStream(handler, requestList(), true);
    pipe.deliver(dataFrame(early.id, Buffer.from("too early")));
    assert.deepEqual(errors(pipe.take()), [`rst ${early.id} ${ERROR.PROTOCOL_ERROR}`]);
  });

  for (const [what, frames] of [
    ["a 1xx with END_STREAM", [headersFrame(1, block([[":status", "100"]]), { endStream: true })]],
    [
      "a second non-final HEADERS after the final response headers",
      [headersFrame(1, block([[":status", "200"]])), headersFrame(1, block([["x-more", "1"]]))],
    ],
    [
      "trailers with a pseudo-header",
      [
        headersFrame(1, block([[":status", "200"]])),
        headersFrame(1, block([[":status", "200"]]), { endStream: true }),
      ],
    ],
  ] as const) {
    it(`client role: ${what} → RST_STREAM PROTOCOL_ERROR`, () => {
      const { pipe, conn, handler } = client();
      const end = conn.startStream(handler, requestList(), true);
      pipe.deliver(...frames);
      assert.deepEqual(errors(pipe.take()), [`rst 1 ${ERROR.PROTOCOL_ERROR}`]);
      assert.equal(end.state, "closed");
      assert.equal(handler.events.at(-1), `reset 1 ${ERROR.PROTOCOL_ERROR} protocol`);
    });
  }
});

describe("frames connection in memory: flow control", { timeout: 10_000 }, () => {
  it("gives back only what was handed on, batched at half of each window", () => {
    const { pipe, conn, handler } = server();
    pipe.deliver(headersFrame(1, block(REQUEST)));
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
    const { pipe, conn } = server();
    pipe.deliver(headersFrame(1, block(REQUEST)));
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
    const { pipe, conn } = server();
    pipe.deliver(headersFrame(1, block(REQUEST)));
    const chunk = Buffer.alloc(16_384);
    const frames: Buffer[] = [];
    for (let sent = 0; sent <= FRAMES_TUNING.streamWindow; sent += chunk.length)
      frames.push(dataFrame(1, chunk));
    pipe.deliver(...frames);
    assert.deepEqual(errors(pipe.take()), [`rst 1 ${ERROR.FLOW_CONTROL_ERROR}`]);
    assert.equal(conn.closed, false);
    // DATA of streams that are open and not handed on fills the connection window (8 × 4 MiB).
    const more: Buffer[] = [];
    for (let id = 3; id <= 21; id += 2) {
      more.push(headersFrame(id, block(REQUEST)));
      for (let sent = 0; sent < FRAMES_TUNING.streamWindow; sent += chunk.length)
        more.push(dataFrame(id, chunk));
    }
    pipe.deliver(...more);
    assert.deepEqual(errors(pipe.take()), [`goaway ${ERROR.FLOW_CONTROL_ERROR}`]);
    assert.equal(conn.closed, true);
  });

  it("sending: DATA waits for the peer's window and for a congested sink, and goes on after", () => {
    const { pipe, conn, handler } = client([[SETTING.INITIAL_WINDOW_SIZE, 10]]);
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
    const { pipe, conn, handler } = server();
    pipe.deliver(
      settingsFrame([[SETTING.INITIAL_WINDOW_SIZE, 4]]),
      headersFrame(1, block(REQUEST), { endStream: true }),
    );
    const end = conn.end(1);
    conn.sendHeaders(end, fields([":status", "200"]), false);
    conn.sendData(end, Buffer.from("12345678"), false);
    conn.sendHeaders(end, fields(["grpc-status", "0"]), true);
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
    const { pipe, handler } = server();
    const b = block([...REQUEST, ["x-meta", "m".repeat(300)]]);
    pipe.deliver(
      headersFrame(1, b.subarray(0, 7), { endHeaders: false, endStream: true }),
      continuationFrame(1, b.subarray(7, 100), false),
      continuationFrame(1, b.subarray(100)),
    );
    assert.deepEqual(handler.events, ["headers 1 :method=POST end"]);
    const big = server();
    const part = Buffer.alloc(16_384, 0x40);
    const frames = [headersFrame(3, part, { endHeaders: false })];
    for (let n = part.length; n <= MAX_HEADER_LIST * 2 + 16_384; n += part.length)
      frames.push(continuationFrame(3, part, false));
    big.pipe.deliver(...frames);
    assert.deepEqual(errors(big.pipe.take()), [`goaway ${ERROR.ENHANCE_YOUR_CALM}`]);
    assert.deepEqual(big.handler.events, []);
  });

  it("a PING flood ends the connection (ENHANCE_YOUR_CALM); the same PINGs spread over time do not", () => {
    const burst = FRAMES_TUNING.floodBurst;
    const flood = server();
    const pings = Array.from({ length: burst + 1 }, () => pingFrame());
    flood.pipe.deliver(...pings);
    assert.deepEqual(errors(flood.pipe.take()), [`goaway ${ERROR.ENHANCE_YOUR_CALM}`]);
    const calm = server();
    for (let i = 0; i < 4; i++) {
      calm.pipe.deliver(...pings.slice(0, burst / 2));
      calm.pipe.timers.advance(1000);
    }
    const out = calm.pipe.take();
    assert.deepEqual(errors(out), []);
    assert.equal(out.filter((f) => f.type === FRAME.PING && (f.flags & FLAG.ACK) !== 0).length, 2 * burst);
    assert.equal(calm.conn.closed, false);
  });

  it("everything one turn produces reaches the sink in one write", () => {
    const { pipe, conn } = server();
    pipe.deliver(
      headersFrame(1, block(REQUEST), { endStream: true }),
      headersFrame(3, block(REQUEST), { endStream: true }),
    );
    const before = pipe.batches;
    for (const id of [1, 3]) {
      const end = conn.end(id);
      conn.sendHeaders(end, fields([":status", "200"]), false);
      conn.sendData(end, Buffer.alloc(5000), false);
      conn.sendHeaders(end, fields(["grpc-status", "0"]), true);
    }
    assert.equal(pipe.batches, before, "nothing written before the turn ends");
    const out = pipe.take();
    assert.equal(pipe.batches - before, 1, "header blocks and attached payloads in one corked write");
    assert.equal(out.length, 6);
  });

  it("the peer's FIN with no stream open ends the connection; destroy resets every stream", () => {
    const idle = server();
    idle.pipe.peerEnds();
    assert.equal(idle.conn.closedWhy, "peer closed");
    const { pipe, conn, handler } = server();
    pipe.deliver(headersFrame(1, block(REQUEST)));
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
    pipe.deliver(headersFrame(1, block([...REQUEST, ["content-length", "1"]]), { endStream: true }));
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
      headersFrame(1, block(REQUEST.filter(([n]) => n !== ":path")), { endStream: true }),
      headersFrame(3, block([...REQUEST, ["content-length", "x"]]), { endStream: true }),
      headersFrame(5, block([...REQUEST, ["content-length", "2"]]), { endStream: true }),
    );
    assert.deepEqual(errors(pipe.take()), [
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
