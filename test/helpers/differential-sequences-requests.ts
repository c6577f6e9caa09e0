/**
 * Differential sequences about requests: what a client may send (empty bodies, bodies cut across
 * frames, request trailers, repeated fields, CONTINUATION, padding, PRIORITY, fields RFC 9113 §8.2.2
 * makes malformed) and whether the worker receives it the same through both engines. The recording
 * worker echoes each request, so the client's view checks the way back too.
 */
import { BIN_VALUE } from "./grpc-recording-worker.js";
import {
  ERROR,
  FLAG,
  FRAME,
  continuationFrame,
  dataFrame,
  encodeHeaderBlock,
  frame,
  grpcMessage,
  headersFrame,
  rstStreamFrame,
  type HeaderList,
} from "./h2-frames-client.js";
import {
  AUTHORITY,
  MESSAGES,
  PATH,
  call,
  dataFrames,
  raw,
  request,
  type Sequence,
} from "./differential-sequence.js";

export const REQUEST_SEQUENCES: readonly Sequence[] = [
  {
    name: "unary echo with custom metadata, -bin metadata and a user-agent",
    run: (t) =>
      raw(
        t,
        call(
          request("echo", [
            ["user-agent", "differential/1.0"],
            ["x-request", "value with spaces"],
            ["x-request-bin", BIN_VALUE.toString("base64")],
            ["x-repeated", "one"],
            ["x-repeated", "two"],
            ["grpc-accept-encoding", "identity"],
          ]),
        ),
      ),
  },
  {
    name: "empty request body (HEADERS with END_STREAM, no DATA)",
    run: (t) =>
      raw(t, (c) => {
        const id = c.newStreamId();
        c.write(headersFrame(id, encodeHeaderBlock(request("echo")), { endStream: true }));
        return [id];
      }),
  },
  {
    name: "three messages cut across DATA frames at odd offsets, then an empty DATA with END_STREAM",
    run: (t) =>
      raw(t, (c) => {
        const id = c.newStreamId();
        const body = Buffer.concat(MESSAGES.map((m) => grpcMessage(m)));
        c.write(
          headersFrame(id, encodeHeaderBlock(request("echo"))),
          dataFrame(id, body.subarray(0, 3)),
          dataFrame(id, body.subarray(3, 11)),
          dataFrame(id, body.subarray(11, 200)),
          dataFrame(id, body.subarray(200)),
          dataFrame(id, Buffer.alloc(0), { endStream: true }),
        );
        return [id];
      }),
  },
  {
    name: "request trailers (HEADERS, DATA, HEADERS with END_STREAM)",
    run: (t) =>
      raw(t, (c) => {
        const id = c.newStreamId();
        c.write(
          headersFrame(id, encodeHeaderBlock(request("echo"))),
          dataFrame(id, grpcMessage(Buffer.from("with trailers"))),
          headersFrame(
            id,
            encodeHeaderBlock([
              ["x-request-trailer", "t"],
              ["x-request-trailer-bin", BIN_VALUE.toString("base64")],
            ]),
            { endStream: true },
          ),
        );
        return [id];
      }),
  },
  {
    name: "a 60 KiB request in 16 KiB DATA frames, echoed",
    run: (t) =>
      raw(t, (c) => {
        const id = c.newStreamId();
        const body = grpcMessage(Buffer.alloc(60 * 1024 - 5, 0x5a));
        c.write(headersFrame(id, encodeHeaderBlock(request("echo"))), ...dataFrames(id, body));
        return [id];
      }),
  },
  {
    name: "three concurrent streams on one connection, bodies sent in reverse order",
    run: (t) =>
      raw(t, (c) => {
        const ids = [c.newStreamId(), c.newStreamId(), c.newStreamId()];
        for (const id of ids)
          c.write(headersFrame(id, encodeHeaderBlock(request("echo", [["x-id", String(id)]]))));
        for (const id of [...ids].reverse())
          c.write(dataFrame(id, grpcMessage(Buffer.from(`body of ${id}`)), { endStream: true }));
        return ids;
      }),
  },
  {
    name: ":scheme https from an h2c client (forwarded with the upstream's scheme)",
    run: (t) =>
      raw(
        t,
        call([
          [":method", "POST"],
          [":scheme", "https"],
          [":path", PATH],
          [":authority", AUTHORITY],
          ["content-type", "application/grpc"],
          ["te", "trailers"],
          ["x-script", "echo"],
        ]),
      ),
  },
  {
    name: "a request without te: trailers",
    run: (t) => raw(t, call(request("echo").filter(([n]) => n !== "te"))),
  },
  {
    name: "a request with content-length equal to its body",
    run: (t) => raw(t, call(request("echo", [["content-length", String(5 + 5)]]), Buffer.from("hello"))),
  },
  {
    name: "a host field equal to :authority (RFC 9113 §8.3.1 lets a client send both)",
    run: (t) => raw(t, call(request("echo", [["host", AUTHORITY]]))),
  },
  {
    name: "an http2-settings field (an HTTP/1.1 upgrade field, meaningless in HTTP/2)",
    run: (t) => raw(t, call(request("echo", [["http2-settings", "AAMAAABkAAQAoAAAAAIAAAAA"]]))),
  },
  ...(
    [
      ["connection", "keep-alive"],
      ["keep-alive", "timeout=5"],
      ["proxy-connection", "keep-alive"],
      ["transfer-encoding", "chunked"],
      ["upgrade", "h2c"],
      ["te", "trailers, deflate"],
    ] as const
  ).map(([name, value]): Sequence => ({
    name: `a request with ${name}: ${value} (malformed, RFC 9113 §8.2.2)`,
    run: (t) => raw(t, call(request("echo", [[name, value]]))),
  })),
  {
    name: "a 12 KiB metadata value in HEADERS + two CONTINUATION frames",
    run: (t) =>
      raw(t, (c) => {
        const id = c.newStreamId();
        const block = encodeHeaderBlock(request("echo", [["x-big", "v".repeat(12 * 1024)]]));
        c.write(
          headersFrame(id, block.subarray(0, 5000), { endHeaders: false }),
          continuationFrame(id, block.subarray(5000, 10_000), false),
          continuationFrame(id, block.subarray(10_000)),
          dataFrame(id, grpcMessage(Buffer.from("big")), { endStream: true }),
        );
        return [id];
      }),
  },
  {
    name: "a 20 KiB metadata value (over the default max_header_list_size of 16 KiB)",
    run: (t) =>
      raw(t, (c) => {
        const id = c.newStreamId();
        const block = encodeHeaderBlock(request("echo", [["x-big", "v".repeat(20 * 1024)]]));
        c.write(
          headersFrame(id, block.subarray(0, 16_000), { endHeaders: false }),
          continuationFrame(id, block.subarray(16_000)),
          dataFrame(id, grpcMessage(Buffer.from("big")), { endStream: true }),
        );
        return [id];
      }),
  },
  {
    name: "padded HEADERS and DATA frames from the client",
    run: (t) =>
      raw(t, (c) => {
        const id = c.newStreamId();
        c.write(
          headersFrame(id, encodeHeaderBlock(request("echo")), { padLength: 7 }),
          dataFrame(id, grpcMessage(Buffer.from("padded")), { endStream: true, padLength: 13 }),
        );
        return [id];
      }),
  },
  {
    name: "one message in 40 one-byte DATA frames",
    run: (t) =>
      raw(t, (c) => {
        const id = c.newStreamId();
        const body = grpcMessage(Buffer.from("thirty-five bytes of one message..."));
        c.write(
          headersFrame(id, encodeHeaderBlock(request("echo"))),
          ...[...body].map((b, i) => dataFrame(id, Buffer.from([b]), { endStream: i === body.length - 1 })),
        );
        return [id];
      }),
  },
  {
    name: "HEADERS with the PRIORITY flag (exclusive 0, depends on 0, weight 16)",
    run: (t) =>
      raw(t, (c) => {
        const id = c.newStreamId();
        const priority = Buffer.from([0, 0, 0, 0, 15]);
        c.write(
          frame(
            FRAME.HEADERS,
            FLAG.END_HEADERS | FLAG.PRIORITY,
            id,
            Buffer.concat([priority, encodeHeaderBlock(request("echo"))]),
          ),
          dataFrame(id, grpcMessage(Buffer.from("prio")), { endStream: true }),
        );
        return [id];
      }),
  },
  {
    name: "grpc-timeout: bogus (not a gRPC timeout)",
    run: (t) => raw(t, call(request("echo", [["grpc-timeout", "bogus"]]))),
  },
  {
    name: "a GET / without content-type or body (not a gRPC request)",
    run: (t) =>
      raw(t, (c) => {
        const id = c.newStreamId();
        const headers: HeaderList = [
          [":method", "GET"],
          [":scheme", "http"],
          [":path", "/"],
          [":authority", AUTHORITY],
          ["x-script", "echo"],
        ];
        c.write(headersFrame(id, encodeHeaderBlock(headers), { endStream: true }));
        return [id];
      }),
  },
  {
    name: "the client resets (RST_STREAM CANCEL) before its request ended",
    run: (t) =>
      raw(
        t,
        async (c) => {
          const id = c.newStreamId();
          c.write(
            headersFrame(id, encodeHeaderBlock(request("echo"))),
            dataFrame(id, grpcMessage(Buffer.from("unfinished"))),
          );
          await new Promise((r) => setTimeout(r, 50));
          c.write(rstStreamFrame(id, ERROR.CANCEL));
          return [id];
        },
        { awaitEnd: false },
      ),
  },
];
