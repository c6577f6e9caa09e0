/**
 * The `frames` engine's connection without sockets, on the in-memory pipe (h2-memory-pipe.ts, a fake
 * clock, the peer played frame by frame): the stream states of RFC 9113 §5.1 (half-closed both ways,
 * RST_STREAM in each state, frames on idle and closed streams) and the message rules of §8.1 (a second
 * HEADERS, trailers, content-length, 1xx responses), in the server role and the client role.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ERROR,
  FLAG,
  FRAME,
  SETTING,
  dataFrame,
  frame,
  headersFrame,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
  type HeaderList as Fields,
} from "../helpers/h2-frames-client.js";
import type { H2MemoryPipe, TestServer } from "../helpers/h2-memory-pipe.js";
import {
  REQUEST,
  headerBlock,
  memoryClient,
  errorFrames,
  fieldList,
  requestList,
  memoryServer,
} from "../helpers/h2-memory-pipe.js";

describe("frames connection in memory: stream states (RFC 9113 §5.1)", { timeout: 10_000 }, () => {
  it("open → half-closed (remote) by the request's END_STREAM → closed by our END_STREAM", () => {
    const { pipe, conn, handler } = memoryServer();
    pipe.deliver(headersFrame(1, headerBlock(REQUEST), { endStream: true }));
    const end = conn.end(1);
    assert.equal(end.state, "half-closed-remote");
    assert.deepEqual(handler.events, ["headers 1 :method=POST end"]);
    conn.sendHeaders(end, fieldList([":status", "200"]), false);
    assert.equal(end.state, "half-closed-remote");
    conn.sendData(end, Buffer.from("hello"), false);
    conn.sendHeaders(end, fieldList(["grpc-status", "0"]), true);
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
    const { pipe, conn, handler } = memoryServer();
    pipe.deliver(headersFrame(1, headerBlock(REQUEST)));
    const end = conn.end(1);
    assert.equal(end.state, "open");
    conn.sendHeaders(end, fieldList([":status", "200"], ["grpc-status", "0"]), true);
    assert.equal(end.state, "half-closed-local");
    pipe.deliver(dataFrame(1, Buffer.from("late")), dataFrame(1, Buffer.alloc(0), { endStream: true }));
    assert.equal(end.state, "closed");
    assert.equal(conn.streams.size, 0);
    assert.deepEqual(handler.events.slice(1), ["local-end 1", "data 1 4", "data 1 0 end"]);
    assert.deepEqual(errorFrames(pipe.take()), []);
  });

  it("half-closed (remote): DATA and HEADERS get RST_STREAM STREAM_CLOSED; WINDOW_UPDATE and PRIORITY do not", () => {
    const { pipe, conn, handler } = memoryServer();
    pipe.deliver(
      settingsFrame([[SETTING.INITIAL_WINDOW_SIZE, 0]]),
      headersFrame(1, headerBlock(REQUEST), { endStream: true }),
      windowUpdateFrame(1, 1),
      frame(FRAME.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 255])),
    );
    const end = conn.end(1);
    conn.sendHeaders(end, fieldList([":status", "200"]), false);
    conn.sendData(end, Buffer.from("abc"), true);
    let out = pipe.take();
    assert.deepEqual(errorFrames(out), []);
    // The window of 0 + 1 lets one octet out: the response is under way, not refused.
    assert.deepEqual(
      out.filter((f) => f.type === FRAME.DATA).map((f) => f.payload.length),
      [1],
    );
    pipe.deliver(dataFrame(1, Buffer.from("x")));
    out = pipe.take();
    assert.deepEqual(errorFrames(out), [`rst 1 ${ERROR.STREAM_CLOSED}`]);
    assert.equal(end.state, "closed");
    assert.ok(handler.events.includes(`reset 1 ${ERROR.STREAM_CLOSED} protocol`));
  });

  for (const [state, setup] of [
    ["open", (c: TestServer, p: H2MemoryPipe) => p.deliver(headersFrame(1, headerBlock(REQUEST)))],
    [
      "half-closed-remote",
      (_c: TestServer, p: H2MemoryPipe) =>
        p.deliver(headersFrame(1, headerBlock(REQUEST), { endStream: true })),
    ],
    [
      "half-closed-local",
      (c: TestServer, p: H2MemoryPipe) => {
        p.deliver(headersFrame(1, headerBlock(REQUEST)));
        c.sendHeaders(c.end(1), fieldList([":status", "200"], ["grpc-status", "0"]), true);
      },
    ],
  ] as const) {
    it(`RST_STREAM in ${state} closes the stream and tells its owner; later frames on it are ignored`, () => {
      const { pipe, conn, handler } = memoryServer();
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
      assert.deepEqual(errorFrames(pipe.take()), [`rst 1 ${ERROR.STREAM_CLOSED}`]);
      assert.equal(conn.closed, false);
    });
  }

  it("closed by our RST_STREAM: the peer's frames in flight are ignored (no answer)", () => {
    const { pipe, conn } = memoryServer();
    pipe.deliver(headersFrame(1, headerBlock(REQUEST)));
    conn.resetStream(conn.end(1), "CANCEL");
    assert.deepEqual(errorFrames(pipe.take()), [`rst 1 ${ERROR.CANCEL}`]);
    pipe.deliver(
      dataFrame(1, Buffer.from("in flight")),
      headersFrame(1, headerBlock([["grpc-status", "0"]]), { endStream: true }),
      windowUpdateFrame(1, 10),
    );
    assert.deepEqual(errorFrames(pipe.take()), []);
    assert.equal(conn.closed, false);
  });

  it("idle streams: DATA, RST_STREAM or WINDOW_UPDATE → connection error PROTOCOL_ERROR; PRIORITY is fine", () => {
    for (const bad of [
      dataFrame(5, Buffer.from("x")),
      rstStreamFrame(5, ERROR.CANCEL),
      windowUpdateFrame(5, 1),
    ]) {
      const { pipe, conn } = memoryServer();
      pipe.deliver(frame(FRAME.PRIORITY, 0, 3, Buffer.from([0, 0, 0, 0, 16])));
      assert.equal(conn.closed, false, "PRIORITY on an idle stream");
      pipe.deliver(bad);
      assert.deepEqual(errorFrames(pipe.take()), [`goaway ${ERROR.PROTOCOL_ERROR}`]);
      assert.equal(conn.closed, true);
      assert.equal(pipe.ended, true, "the link was ended");
    }
  });
});

describe("frames connection in memory: messages (RFC 9113 §8.1)", { timeout: 10_000 }, () => {
  it("§8.1 a second HEADERS without END_STREAM → RST_STREAM PROTOCOL_ERROR, never handed on", () => {
    const { pipe, handler } = memoryServer();
    pipe.deliver(headersFrame(1, headerBlock(REQUEST)), headersFrame(1, headerBlock([["x-more", "1"]])));
    assert.deepEqual(errorFrames(pipe.take()), [`rst 1 ${ERROR.PROTOCOL_ERROR}`]);
    assert.deepEqual(handler.events, ["headers 1 :method=POST", `reset 1 ${ERROR.PROTOCOL_ERROR} protocol`]);
  });

  it("§8.1 trailers with a pseudo-header field → RST_STREAM PROTOCOL_ERROR; plain trailers end the stream", () => {
    const { pipe, handler } = memoryServer();
    pipe.deliver(
      headersFrame(1, headerBlock(REQUEST)),
      headersFrame(1, headerBlock([[":status", "200"]]), { endStream: true }),
      headersFrame(3, headerBlock(REQUEST)),
      headersFrame(3, headerBlock([["x-trailer", "1"]]), { endStream: true }),
    );
    assert.deepEqual(errorFrames(pipe.take()), [`rst 1 ${ERROR.PROTOCOL_ERROR}`]);
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
      const { pipe, handler } = memoryServer();
      const headers: Fields = [...REQUEST, ["content-length", length]];
      const frames =
        parts.length === 0
          ? [headersFrame(1, headerBlock(headers), { endStream: true })]
          : [
              headersFrame(1, headerBlock(headers)),
              ...parts.map((p, i) => dataFrame(1, p, { endStream: i === parts.length - 1 })),
            ];
      pipe.deliver(...frames);
      const rst = errorFrames(pipe.take());
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
    const { pipe, conn, handler } = memoryClient();
    const end = conn.startStream(handler, requestList(), true);
    assert.equal(end.state, "half-closed-local-awaiting-headers");
    pipe.deliver(
      headersFrame(1, headerBlock([[":status", "103"]])),
      headersFrame(1, headerBlock([[":status", "200"]])),
      dataFrame(1, Buffer.from("body")),
      headersFrame(1, headerBlock([["grpc-status", "0"]]), { endStream: true }),
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
    assert.deepEqual(errorFrames(pipe.take()), [`rst ${early.id} ${ERROR.PROTOCOL_ERROR}`]);
  });

  for (const [what, frames] of [
    ["a 1xx with END_STREAM", [headersFrame(1, headerBlock([[":status", "100"]]), { endStream: true })]],
    [
      "a second non-final HEADERS after the final response headers",
      [headersFrame(1, headerBlock([[":status", "200"]])), headersFrame(1, headerBlock([["x-more", "1"]]))],
    ],
    [
      "trailers with a pseudo-header",
      [
        headersFrame(1, headerBlock([[":status", "200"]])),
        headersFrame(1, headerBlock([[":status", "200"]]), { endStream: true }),
      ],
    ],
  ] as const) {
    it(`client role: ${what} → RST_STREAM PROTOCOL_ERROR`, () => {
      const { pipe, conn, handler } = memoryClient();
      const end = conn.startStream(handler, requestList(), true);
      pipe.deliver(...frames);
      assert.deepEqual(errorFrames(pipe.take()), [`rst 1 ${ERROR.PROTOCOL_ERROR}`]);
      assert.equal(end.state, "closed");
      assert.equal(handler.events.at(-1), `reset 1 ${ERROR.PROTOCOL_ERROR} protocol`);
    });
  }
});
