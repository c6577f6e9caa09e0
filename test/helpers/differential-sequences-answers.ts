/**
 * Differential sequences about answers and failures: the recording worker's scripts (streaming,
 * 1 MiB, trailers-only errors, metadata, resets, GOAWAY, a lost connection, an early answer), client
 * cancels and GOAWAY, deadlines, no healthy or no reachable endpoint, and `explain`.
 */
import {
  ERROR,
  dataFrame,
  encodeHeaderBlock,
  goawayFrame,
  grpcMessage,
  headersFrame,
  rstStreamFrame,
} from "./h2-frames-client.js";
import { STREAM_WAIT_MS, call, raw, request, waitForData, type Sequence } from "./differential-sequence.js";

export const ANSWER_SEQUENCES: readonly Sequence[] = [
  {
    name: "server streaming: 50 messages of 1000 bytes",
    run: (t) =>
      raw(
        t,
        call(
          request("stream", [
            ["x-count", "50"],
            ["x-size", "1000"],
          ]),
        ),
      ),
  },
  { name: "a 1 MiB response message", run: (t) => raw(t, call(request("large"))) },
  {
    name: "trailers-only NOT_FOUND with a non-ASCII percent-encoded grpc-message",
    run: (t) => raw(t, call(request("error"))),
  },
  {
    name: "response headers, message and trailers with custom and -bin metadata",
    run: (t) => raw(t, call(request("metadata"))),
  },
  {
    name: "response headers, then the worker resets the stream (INTERNAL_ERROR)",
    run: (t) => raw(t, call(request("headers-rst"))),
  },
  {
    name: "an informational 100 HEADERS before the response",
    run: (t) => raw(t, call(request("informational"))),
  },
  {
    name: "the worker's response carries a host field (and node's date)",
    run: (t) => raw(t, call(request("response-host"))),
  },
  {
    name: "the worker closes its connection mid-stream (after headers and one message)",
    run: (t) => raw(t, call(request("close-connection"))),
  },
  {
    name: "the worker refuses the stream (RST_STREAM REFUSED_STREAM) before any response",
    run: (t) => raw(t, call(request("refuse"))),
  },
  {
    name: "the worker closes its connection before any response",
    run: (t) => raw(t, call(request("close-before-response"))),
  },
  {
    name: "the worker sends a graceful GOAWAY and answers; the client's next request is served too",
    run: (t) =>
      raw(t, async (c) => {
        const first = c.newStreamId();
        c.sendGrpcRequest(first, request("goaway"), Buffer.from("one"));
        await c.waitForStreamEnd(first, STREAM_WAIT_MS).catch(() => undefined);
        const second = c.newStreamId();
        c.sendGrpcRequest(second, request("echo"), Buffer.from("two"));
        return [first, second];
      }),
  },
  {
    name: "the worker answers trailers-only while the client is still sending",
    run: (t) =>
      raw(t, (c) => {
        const id = c.newStreamId();
        c.write(
          headersFrame(id, encodeHeaderBlock(request("early-error"))),
          dataFrame(id, grpcMessage(Buffer.from("part"))),
        );
        return [id];
      }),
  },
  {
    name: "the client cancels (RST_STREAM CANCEL) mid-response",
    run: (t) =>
      raw(
        t,
        async (c) => {
          const id = c.newStreamId();
          c.sendGrpcRequest(id, request("slow"), Buffer.from("x"));
          await waitForData(c, id);
          c.write(rstStreamFrame(id, ERROR.CANCEL));
          return [id];
        },
        { awaitEnd: false },
      ),
  },
  {
    name: "the client resets mid-response with INTERNAL_ERROR (is the code passed on?)",
    run: (t) =>
      raw(
        t,
        async (c) => {
          const id = c.newStreamId();
          c.sendGrpcRequest(id, request("slow"), Buffer.from("x"));
          await waitForData(c, id);
          c.write(rstStreamFrame(id, ERROR.INTERNAL_ERROR));
          return [id];
        },
        { awaitEnd: false },
      ),
  },
  {
    name: "the client sends GOAWAY NO_ERROR after its request: the stream in flight still completes",
    run: (t) =>
      raw(t, (c) => {
        const id = c.newStreamId();
        c.sendGrpcRequest(
          id,
          request("slow", [
            ["x-count", "3"],
            ["x-every-ms", "30"],
          ]),
          Buffer.from("x"),
        );
        // A client's Last-Stream-ID names server-initiated streams: none here (0).
        c.write(goawayFrame(0, ERROR.NO_ERROR));
        return [id];
      }),
  },
  {
    name: "the client cancels (RST_STREAM CANCEL) before any response",
    run: (t) =>
      raw(
        t,
        async (c) => {
          const id = c.newStreamId();
          c.sendGrpcRequest(id, request("silent"), Buffer.from("x"));
          await new Promise((r) => setTimeout(r, 100));
          c.write(rstStreamFrame(id, ERROR.CANCEL));
          return [id];
        },
        { awaitEnd: false },
      ),
  },
  {
    name: "grpc-timeout 200m expires before the worker answers",
    run: (t) => raw(t, call(request("silent", [["grpc-timeout", "200m"]]))),
  },
  {
    name: "grpc-timeout 5S on a call that answers at once (is the value forwarded unchanged?)",
    run: (t) => raw(t, call(request("echo", [["grpc-timeout", "5S"]]))),
  },
  {
    name: "no healthy endpoint: Fulcrum's own UNAVAILABLE",
    listener: "none",
    run: (t) => raw(t, call(request("echo"))),
  },
  {
    name: "the only endpoint refuses connections: UNAVAILABLE",
    listener: "dead",
    run: (t) => raw(t, call(request("echo"))),
  },
  {
    name: "explain: true adds fulcrum-route to an echo",
    listener: "explain",
    run: (t) => raw(t, call(request("echo"))),
  },
  {
    name: "explain: true on a worker's trailers-only error",
    listener: "explain",
    run: (t) => raw(t, call(request("error"))),
  },
];
