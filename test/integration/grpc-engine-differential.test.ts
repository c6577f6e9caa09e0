/**
 * Differential test of the two gRPC engines (as Envoy tests its two HTTP/2 codecs against each
 * other): two Fulcrum instances, one on `engine: frames` and one on `engine: http2`, in front of one
 * recording worker (grpc-recording-worker.ts), get the same request sequences, and for each sequence
 * what the worker received (request header fields, DATA bytes, trailers, END_STREAM, how the stream
 * closed) and what the client received (every frame of each stream, GOAWAY; or, for grpc-js calls,
 * headers, messages, status and trailers) must be the same through both.
 *
 * Each case runs once per engine, one after the other, on a connection of its own; the worker's
 * records are taken after each run. The config names its engine per instance, so this file runs once
 * whatever engine the test matrix selects.
 *
 * What legitimately differs per hop and is therefore not compared:
 * - `:authority` is not masked: every client sends the same one (`AUTHORITY`), so the two instances'
 *   different listener ports never show, and an engine that rewrote it would be caught;
 * - `date` keeps its presence but not its value (the wall-clock second node:http2 stamps);
 * - `grpc-timeout` of grpc-js calls keeps its presence only: grpc-js computes it from its deadline
 *   at the moment it sends, so two calls never carry the same value (the raw client's fixed values
 *   are compared exactly, so an engine rewriting them is caught);
 * - stream ids, DATA frame boundaries and window updates: each hop's own choice (the bytes of a
 *   stream are compared, not how they were cut);
 * - the worker-side peer port: not part of what is recorded.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  DATE_MASK,
  connectionView,
  describeBytes,
  describeDiff,
  fieldLines,
  metadataLines,
  streamView,
  type Masks,
} from "../helpers/differential-views.js";
import { Teardown, echoClient, metadataOf } from "../helpers/grpc-client.js";
import { BIN_VALUE, RecordingWorker, type RecordedStream } from "../helpers/grpc-recording-worker.js";
import { H2RawWorker, type RawAnswer } from "../helpers/h2-raw-worker.js";
import {
  ERROR,
  FLAG,
  FRAME,
  H2FramesClient,
  SETTING,
  continuationFrame,
  dataFrame,
  encodeHeaderBlock,
  errorName,
  frame,
  goawayFrame,
  grpcMessage,
  grpcRequestHeaders,
  headersFrame,
  rstStreamFrame,
  windowUpdateFrame,
  type HeaderList,
} from "../helpers/h2-frames-client.js";
import { startFulcrum, type StartedFulcrum } from "../helpers/harness.js";

const TIMEOUT = { timeout: 90_000 };
const ENGINES = ["frames", "http2"] as const;
type Engine = (typeof ENGINES)[number];

/** The `:authority` of every request (raw and grpc-js), so no listener port reaches the worker. */
const AUTHORITY = "differential.test";
const PATH = "/test.Diff/Call";
const MAX_WINDOW = 2 ** 31 - 1;
const DEFAULT_WINDOW = 65_535;
/** How long a raw client waits for a stream to end before it reports the frames it has. */
const STREAM_WAIT_MS = 5000;

interface Side {
  readonly fulcrum: StartedFulcrum;
  /** A grpc-js channel on listener `g`. */
  readonly grpc: grpc.Client;
}

interface Case {
  readonly name: string;
  /**
   * The listener: `g` (the recording worker, default), `none` (no healthy endpoint), `dead` (refuses
   * connections), `explain` (the recording worker, `explain: true`), `raw` (the raw-frames worker).
   */
  readonly listener?: "g" | "none" | "dead" | "explain" | "raw";
  /** Masks for the worker's view of request fields (DATE_MASK by default). */
  readonly workerMasks?: Masks;
  /** Concurrent streams: the worker's records are compared in sorted order, not arrival order. */
  readonly unorderedWorker?: boolean;
  /** Sends the sequence and returns what the client received. */
  run(target: { host: string; port: number }, side: Side): Promise<unknown>;
}

/** A port that refuses connections: bound, then closed. */
async function refusedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** One Fulcrum config on `engine`: five grpc listeners, each before its own cluster. */
function config(engine: Engine, worker: string, rawWorker: string, refused: string): string {
  const listener = (name: string, cluster: string): string =>
    `  - { name: ${name}, protocol: grpc, engine: ${engine}, listen: "127.0.0.1:0", cluster: ${cluster} }`;
  const cluster = (name: string, endpoint: string, extra: string[] = []): string[] => [
    `  - name: ${name}`,
    "    policy: round_robin",
    "    health_check: { type: none }",
    // Failures are what many sequences test: no endpoint may be ejected for the sequences after them.
    "    outlier_detection: { consecutive_failures: 0 }",
    ...extra.map((l) => `    ${l}`),
    "    endpoints:",
    `      - address: "${endpoint}"`,
  ];
  return [
    "listeners:",
    listener("g", "w"),
    listener("none", "unhealthy"),
    listener("dead", "refusing"),
    listener("explain", "explained"),
    listener("raw", "rawframes"),
    "clusters:",
    ...cluster("w", worker),
    ...cluster("unhealthy", worker),
    ...cluster("refusing", refused, ["connect_timeout: 1s"]),
    ...cluster("explained", worker, ["explain: true"]),
    ...cluster("rawframes", rawWorker),
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------------
// Views

function workerView(r: RecordedStream, masks: Masks): unknown {
  let close = "closed";
  if (!r.closed) close = "still open (3 s after the client's part ended)";
  else if (r.connectionClosedByScript) close = "connection closed by the worker";
  else if (r.rstCode !== 0) close = `RST_STREAM ${errorName(r.rstCode)}`;
  return {
    headers: fieldLines(r.headers, masks),
    data: describeBytes(Buffer.concat(r.data)),
    trailers: r.trailers ? fieldLines(r.trailers, masks) : "none",
    end: r.endStream ? "END_STREAM" : "no END_STREAM",
    close,
  };
}

// ---------------------------------------------------------------------------------------------------
// Raw client sequences (h2-frames-client: every header and frame as written here)

/** Request headers of a call on PATH with script `script`, plus `extra`. */
function request(script: string, extra: HeaderList = [], path = PATH): [string, string][] {
  return grpcRequestHeaders(AUTHORITY, path, [["x-script", script], ...extra]);
}

interface RawOptions {
  /** Wait for each stream's END_STREAM or RST_STREAM (false when the client reset them itself). */
  readonly awaitEnd?: boolean;
}

/**
 * Connects a raw client with the largest receive windows (so a 1 MiB answer never waits on the
 * client's flow control), runs `send` (it writes its frames and returns the stream ids to report),
 * waits for those streams to end and for a PING round trip (anything sent after them arrives first),
 * and returns every frame of each stream and the connection's state.
 */
async function raw(
  target: { host: string; port: number },
  send: (c: H2FramesClient) => number[] | Promise<number[]>,
  options: RawOptions = {},
): Promise<unknown> {
  const c = await H2FramesClient.connect(target, { settings: [[SETTING.INITIAL_WINDOW_SIZE, MAX_WINDOW]] });
  try {
    c.write(windowUpdateFrame(0, MAX_WINDOW - DEFAULT_WINDOW));
    await c.handshake();
    const ids = await send(c);
    if (options.awaitEnd ?? true)
      for (const id of ids) await c.waitForStreamEnd(id, STREAM_WAIT_MS).catch(() => undefined);
    await c.ping(undefined, 2000).catch(() => undefined);
    const streams: Record<string, unknown> = {};
    for (const id of ids) streams[`stream ${id}`] = streamView(c, id);
    return { streams, connection: connectionView(c) };
  } finally {
    await c.destroy();
  }
}

/** One request: HEADERS, then one DATA frame with `message` and END_STREAM. */
function call(
  headers: HeaderList,
  message: Buffer<ArrayBuffer> = Buffer.from("hello"),
): (c: H2FramesClient) => number[] {
  return (c) => {
    const id = c.newStreamId();
    c.sendGrpcRequest(id, headers, message);
    return [id];
  };
}

/** `bytes` as DATA frames of at most 16 KiB (the initial SETTINGS_MAX_FRAME_SIZE), the last ending the stream. */
function dataFrames(id: number, bytes: Buffer, endStream = true): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += 16_384) {
    const last = at + 16_384 >= bytes.length;
    out.push(dataFrame(id, bytes.subarray(at, at + 16_384), { endStream: endStream && last }));
  }
  return out;
}

async function waitForData(c: H2FramesClient, id: number): Promise<void> {
  await c.waitForFrame((f) => f.streamId === id && f.type === FRAME.DATA, STREAM_WAIT_MS, "DATA");
}

// ---------------------------------------------------------------------------------------------------
// grpc-js calls

/** A grpc-js call's view: response headers, messages, status, details and trailers. */
function grpcCall(
  client: grpc.Client,
  options: {
    metadata: Readonly<Record<string, string | Buffer>>;
    /** The request message; default "hello". */
    body?: Buffer;
    /** A server-streaming call (the request is one empty message). */
    stream?: boolean;
    /** A bidi call that writes these messages, then ends. */
    bidi?: readonly Buffer[];
    deadlineMs?: number;
    /** Cancel once the first message arrived. */
    cancelAfterFirst?: boolean;
    /** Compare only the status code (details carry timings). */
    codeOnly?: boolean;
  },
): Promise<unknown> {
  const identity = (b: Buffer): Buffer => b;
  const md = metadataOf(options.metadata);
  const callOptions = { deadline: Date.now() + (options.deadlineMs ?? 10_000) };
  return new Promise((resolve) => {
    let headers: string[] | undefined;
    const messages: string[] = [];
    // A unary call's callback (its message) may run after 'status': resolve on the next turn.
    const onStatus = (s: grpc.StatusObject): void =>
      void setImmediate(() => {
        if (options.codeOnly) return resolve({ code: grpc.status[s.code] });
        resolve({
          headers: headers ?? "none",
          messages,
          code: grpc.status[s.code],
          details: s.details,
          trailers: metadataLines(s.metadata),
        });
      });
    if (options.bidi) {
      const call = client.makeBidiStreamRequest(PATH, identity, identity, md, callOptions);
      call.on("metadata", (m: grpc.Metadata) => (headers = metadataLines(m)));
      call.on("data", (m: Buffer) => messages.push(describeBytes(m)));
      call.on("error", () => {});
      call.on("status", onStatus);
      for (const m of options.bidi) call.write(m);
      call.end();
      return;
    }
    if (options.stream) {
      const call = client.makeServerStreamRequest(PATH, identity, identity, Buffer.alloc(0), md, callOptions);
      call.on("metadata", (m: grpc.Metadata) => (headers = metadataLines(m)));
      call.on("data", (m: Buffer) => {
        messages.push(describeBytes(m));
        if (options.cancelAfterFirst) call.cancel();
      });
      call.on("error", () => {});
      call.on("status", onStatus);
      return;
    }
    const call = client.makeUnaryRequest(
      PATH,
      identity,
      identity,
      options.body ?? Buffer.from("hello"),
      md,
      callOptions,
      (err, m) => {
        if (!err && m) messages.push(describeBytes(m));
      },
    );
    call.on("metadata", (m: grpc.Metadata) => (headers = metadataLines(m)));
    call.on("status", onStatus);
  });
}

/** grpc-js computes `grpc-timeout` from its deadline when it sends: only its presence is compared. */
const GRPC_JS_MASKS: Masks = { ...DATE_MASK, "grpc-timeout": "<from the deadline>" };

// ---------------------------------------------------------------------------------------------------
// Answers of the raw-frames worker, by :path (what node:http2 will not send)

const RAW_PATH = "/test.Diff/Raw";
const OK_HEADERS: HeaderList = [
  [":status", "200"],
  ["content-type", "application/grpc"],
];
const OK_TRAILERS: HeaderList = [["grpc-status", "0"]];
const RAW_BODY = grpcMessage(Buffer.from("raw"));

/** Connection-specific fields (RFC 9113 §8.2.2) and other HTTP/1.1-only fields, as a worker might send them. */
const RESPONSE_HOP_FIELDS: readonly (readonly [string, string])[] = [
  ["connection", "close"],
  ["keep-alive", "timeout=5"],
  ["proxy-connection", "keep-alive"],
  ["transfer-encoding", "chunked"],
  ["upgrade", "h2c"],
  ["http2-settings", "AAMAAABkAAQAoAAAAAIAAAAA"],
  ["te", "trailers"],
];

const RAW_ANSWERS: Readonly<Record<string, RawAnswer>> = {
  ...Object.fromEntries(
    RESPONSE_HOP_FIELDS.map(([name, value]) => [
      `${RAW_PATH}/header/${name}`,
      { headers: [...OK_HEADERS, [name, value]], data: RAW_BODY, trailers: OK_TRAILERS },
    ]),
  ),
  [`${RAW_PATH}/trailer/connection`]: {
    headers: OK_HEADERS,
    data: RAW_BODY,
    trailers: [...OK_TRAILERS, ["connection", "close"]],
  },
  [`${RAW_PATH}/upper-case`]: {
    headers: [...OK_HEADERS, ["X-Upper", "1"]],
    data: RAW_BODY,
    trailers: OK_TRAILERS,
  },
  [`${RAW_PATH}/pseudo-in-trailers`]: {
    headers: OK_HEADERS,
    data: RAW_BODY,
    trailers: [[":status", "200"], ...OK_TRAILERS],
  },
  [`${RAW_PATH}/http-503`]: {
    headers: [
      [":status", "503"],
      ["content-type", "text/plain"],
    ],
    data: Buffer.from("overloaded"),
  },
  [`${RAW_PATH}/no-grpc-status`]: { headers: OK_HEADERS, data: RAW_BODY, trailers: [["x-trailer", "only"]] },
};

function rawAnswer(path: string): RawAnswer {
  return RAW_ANSWERS[path] ?? { headers: OK_HEADERS, data: RAW_BODY, trailers: OK_TRAILERS };
}

// ---------------------------------------------------------------------------------------------------
// The sequences

const MESSAGES = [Buffer.from("first"), Buffer.alloc(300, 0x61), Buffer.from([0, 1, 2, 0xff])];

const CASES: readonly Case[] = [
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
  ).map(([name, value]): Case => ({
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
  ...RESPONSE_HOP_FIELDS.map(([name, value]): Case => ({
    name: `the worker's response headers carry ${name}: ${value}`,
    listener: "raw",
    run: (t) => raw(t, call(grpcRequestHeaders(AUTHORITY, `${RAW_PATH}/header/${name}`))),
  })),
  ...(
    [
      ["trailer/connection", "the worker's trailers carry connection: close"],
      ["upper-case", "the worker's response has an upper-case field name (malformed, RFC 9113 §8.2.1)"],
      ["pseudo-in-trailers", "the worker's trailers carry :status (malformed, RFC 9113 §8.1)"],
      ["http-503", "the worker answers HTTP 503 text/plain without grpc-status"],
      ["no-grpc-status", "the worker's trailers lack grpc-status"],
    ] as const
  ).map(([path, name]): Case => ({
    name,
    listener: "raw",
    run: (t) => raw(t, call(grpcRequestHeaders(AUTHORITY, `${RAW_PATH}/${path}`))),
  })),
  {
    name: "grpc-js: unary call with metadata to the metadata script",
    workerMasks: GRPC_JS_MASKS,
    run: (_t, side) =>
      grpcCall(side.grpc, {
        metadata: { "x-script": "metadata", "x-request": "grpc-js", "x-request-bin": BIN_VALUE },
      }),
  },
  {
    name: "grpc-js: server streaming, 5 messages",
    workerMasks: GRPC_JS_MASKS,
    run: (_t, side) =>
      grpcCall(side.grpc, {
        stream: true,
        metadata: { "x-script": "stream", "x-count": "5", "x-size": "64" },
      }),
  },
  {
    name: "grpc-js: a 1 MiB request echoed",
    workerMasks: GRPC_JS_MASKS,
    run: (_t, side) =>
      grpcCall(side.grpc, { metadata: { "x-script": "echo" }, body: Buffer.alloc(1 << 20, 0x42) }),
  },
  {
    name: "grpc-js: bidi call, 5 request messages echoed once the client ended",
    workerMasks: GRPC_JS_MASKS,
    run: (_t, side) =>
      grpcCall(side.grpc, {
        metadata: { "x-script": "echo" },
        bidi: MESSAGES.concat([Buffer.alloc(0), Buffer.alloc(20_000, 0x33)]),
      }),
  },
  {
    name: "grpc-js: 20 concurrent unary calls on one channel",
    workerMasks: GRPC_JS_MASKS,
    unorderedWorker: true,
    run: (_t, side) =>
      Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          grpcCall(side.grpc, {
            metadata: { "x-script": "echo", "x-id": String(i) },
            body: Buffer.from(`call ${i}`),
          }),
        ),
      ),
  },
  {
    name: "grpc-js: trailers-only NOT_FOUND with a non-ASCII message",
    workerMasks: GRPC_JS_MASKS,
    run: (_t, side) => grpcCall(side.grpc, { metadata: { "x-script": "error" } }),
  },
  {
    name: "grpc-js: deadline of 300 ms on a worker that does not answer",
    workerMasks: GRPC_JS_MASKS,
    run: (_t, side) =>
      grpcCall(side.grpc, { metadata: { "x-script": "silent" }, deadlineMs: 300, codeOnly: true }),
  },
  {
    name: "grpc-js: cancelled after the first message of a slow stream",
    workerMasks: GRPC_JS_MASKS,
    run: (_t, side) =>
      grpcCall(side.grpc, { stream: true, cancelAfterFirst: true, metadata: { "x-script": "slow" } }),
  },
];

describe("the frames and http2 engines: same requests, same results on both sides", TIMEOUT, () => {
  const own = new Teardown();
  const worker = new RecordingWorker();
  const rawWorker = new H2RawWorker(rawAnswer);
  const sides = {} as Record<Engine, Side>;

  before(async () => {
    own.add(worker, (w) => w.close());
    await worker.listen();
    own.add(rawWorker, (w) => w.close());
    await rawWorker.listen();
    const refused = `127.0.0.1:${await refusedPort()}`;
    for (const engine of ENGINES) {
      const fulcrum = own.add(
        await startFulcrum(config(engine, worker.address, rawWorker.address, refused)),
        (f) => f.fulcrum.stop(0),
      );
      fulcrum.fulcrum.cluster("unhealthy").endpoints.setHealth(worker.address, "unhealthy");
      const client = own.add(
        echoClient(fulcrum.target("g"), { channelOptions: { "grpc.default_authority": AUTHORITY } }),
        (c) => c.close(),
      );
      sides[engine] = { fulcrum, grpc: client };
    }
  });

  after(() => own.run());

  for (const c of CASES) {
    it(c.name, async () => {
      const views = {} as Record<Engine, unknown>;
      for (const engine of ENGINES) {
        const side = sides[engine];
        const client = await c.run(side.fulcrum.target(c.listener ?? "g"), side);
        const records = [...(await worker.take()), ...(await rawWorker.take())];
        const workerViews = records.map((r) => workerView(r, c.workerMasks ?? DATE_MASK));
        if (c.unorderedWorker) workerViews.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
        views[engine] = { worker: workerViews, client };
      }
      const diff = describeDiff(views.frames, views.http2, "frames", "http2");
      const context = JSON.stringify(views.frames);
      assert.deepStrictEqual(
        views.frames,
        views.http2,
        [
          `the engines differ on "${c.name}":`,
          ...(diff.length > 0 ? diff : ["(no path listed: see the diff below)"]),
          `what frames gave: ${context.length > 3000 ? `${context.slice(0, 3000)}…` : context}`,
          "(below: + frames, - http2)",
        ].join("\n  "),
      );
    });
  }
});
