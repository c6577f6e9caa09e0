/**
 * A worker on raw node:http2 (h2c) for the differential test of the two gRPC engines: it records
 * exactly what arrives on every stream (each request header field in wire order with its value, the
 * DATA bytes, the trailers, whether END_STREAM came and how the stream closed) and answers by the
 * script named in the request's `x-script` header, so one worker can play every upstream behaviour a
 * test sequence needs (see `SCRIPTS`). Every script is bounded in time: a stream held open is answered
 * or reset after at most `HOLD_CAP_MS`.
 */
import * as http2 from "node:http2";
import { closeSession, grpcFrame } from "./grpc-raw.js";
import { streamMessage } from "./grpc-test-worker.js";

const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** The longest any script keeps a stream waiting. */
export const HOLD_CAP_MS = 2000;

/** What the worker saw on one stream. */
export interface RecordedStream {
  /** The request header fields as they arrived, in order. */
  readonly headers: [string, string][];
  /** DATA payloads, in order. */
  readonly data: Buffer[];
  /** The request trailers as they arrived, if any. */
  trailers: [string, string][] | undefined;
  /** The peer (Fulcrum) ended its side with END_STREAM. */
  endStream: boolean;
  /** The stream closed; `rstCode` is node's code at close (0 when it closed without a reset). */
  closed: boolean;
  rstCode: number;
  /** The script closed the whole connection while the stream was open. */
  connectionClosedByScript: boolean;
}

/** A script: how the worker answers one stream (the request body is complete when it is called). */
type Script = (ctx: ScriptContext) => void;

interface ScriptContext {
  readonly stream: http2.ServerHttp2Stream;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly record: RecordedStream;
  /** Runs `fn` after `ms` unless the stream closed first (the timer is cleared on close). */
  readonly later: (ms: number, fn: () => void) => void;
}

/** Bytes every `-bin` field of the scripts carries: not valid UTF-8, and one byte of each range. */
export const BIN_VALUE = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f, 0xc3]);

/** A `grpc-message` with non-ASCII text, percent-encoded as gRPC's PROTOCOL-HTTP2.md says. */
export const NON_ASCII_MESSAGE = "modèle introuvable: «résumé» ✓ 100%";

const GRPC_HEADERS: http2.OutgoingHttpHeaders = { ":status": 200, "content-type": "application/grpc" };

function open(stream: http2.Http2Stream): boolean {
  return !stream.destroyed && !stream.closed;
}

/** Headers, `messages` as separate writes (separate DATA frames), then `trailers` (grpc-status 0 by default). */
function answer(
  stream: http2.ServerHttp2Stream,
  messages: readonly Buffer[],
  options: { headers?: http2.OutgoingHttpHeaders; trailers?: http2.OutgoingHttpHeaders } = {},
): void {
  if (!open(stream)) return;
  stream.respond({ ...GRPC_HEADERS, ...options.headers }, { waitForTrailers: true });
  stream.once("wantTrailers", () => {
    if (open(stream)) stream.sendTrailers({ "grpc-status": "0", ...options.trailers });
  });
  for (const m of messages) stream.write(m);
  stream.end();
}

function numberHeader(headers: http2.IncomingHttpHeaders, name: string, fallback: number): number {
  const value = Number(headers[name]);
  return Number.isFinite(value) ? value : fallback;
}

/**
 * The scripts, by `x-script` value (absent or unknown: `echo`). Numbers come from request headers
 * (`x-count`, `x-size`, `x-every-ms`), so a sequence states its whole load in its own request.
 */
export const SCRIPTS: Readonly<Record<string, Script>> = {
  /** The request body back unchanged, between headers and `grpc-status: 0` trailers. */
  echo: ({ stream, body }) => answer(stream, body.length > 0 ? [body] : []),

  /** `x-count` messages of `x-size` bytes, one write each. */
  stream: ({ stream, headers }) => {
    const count = Math.min(numberHeader(headers, "x-count", 3), 1000);
    const size = Math.min(numberHeader(headers, "x-size", 16), 1 << 20);
    answer(
      stream,
      Array.from({ length: count }, (_, i) => grpcFrame(streamMessage(i, size))),
    );
  },

  /** One 1 MiB message: several DATA frames and flow-control windows on every hop. */
  large: ({ stream }) => answer(stream, [grpcFrame(streamMessage(7, 1 << 20))]),

  /** Trailers-only NOT_FOUND with a non-ASCII, percent-encoded grpc-message and custom metadata. */
  error: ({ stream }) => {
    if (!open(stream)) return;
    stream.respond(
      {
        ...GRPC_HEADERS,
        "grpc-status": "5",
        "grpc-message": encodeURIComponent(NON_ASCII_MESSAGE),
        "x-error-detail": "model=resnet50",
        "x-error-detail-bin": BIN_VALUE.toString("base64"),
      },
      { endStream: true },
    );
  },

  /** Custom response headers and trailers, `-bin` ones included, around one message. */
  metadata: ({ stream, body }) =>
    answer(stream, [body.length > 0 ? body : grpcFrame(Buffer.from("meta"))], {
      headers: { "x-response": "header value", "x-response-bin": BIN_VALUE.toString("base64") },
      trailers: {
        "grpc-message": "",
        "x-trailer": "done",
        "x-trailer-bin": BIN_VALUE.toString("base64"),
        "x-multi": ["one", "two"],
      },
    }),

  /** Response headers, then RST_STREAM INTERNAL_ERROR: no message, no trailers. */
  "headers-rst": ({ stream, later }) => {
    if (!open(stream)) return;
    stream.respond(GRPC_HEADERS);
    later(20, () => stream.close(NGHTTP2_INTERNAL_ERROR));
  },

  /**
   * Headers and message 0 at once, then message i every `x-every-ms` (default 100) up to `x-count`
   * (default 5), then trailers: a slow stream for cancellation mid-response.
   */
  slow: ({ stream, headers, later }) => {
    if (!open(stream)) return;
    const count = Math.min(numberHeader(headers, "x-count", 5), 20);
    const every = Math.min(numberHeader(headers, "x-every-ms", 100), HOLD_CAP_MS / count);
    stream.respond(GRPC_HEADERS, { waitForTrailers: true });
    stream.once("wantTrailers", () => {
      if (open(stream)) stream.sendTrailers({ "grpc-status": "0" });
    });
    stream.write(grpcFrame(streamMessage(0, 16)));
    const next = (i: number): void => {
      if (i >= count) {
        stream.end();
        return;
      }
      stream.write(grpcFrame(streamMessage(i, 16)));
      later(every, () => next(i + 1));
    };
    later(every, () => next(1));
  },

  /** No answer until `HOLD_CAP_MS`, then an OK response: a deadline or a cancel ends it first. */
  silent: ({ stream, later }) => later(HOLD_CAP_MS, () => answer(stream, [grpcFrame(Buffer.from("late"))])),

  /** Headers and message 0, then (once the frames left) the worker destroys its whole connection. */
  "close-connection": ({ stream, record, later }) => {
    if (!open(stream)) return;
    stream.respond(GRPC_HEADERS);
    stream.write(grpcFrame(streamMessage(0, 16)), () => {
      later(30, () => {
        record.connectionClosedByScript = true;
        stream.session?.destroy();
      });
    });
  },

  /** RST_STREAM REFUSED_STREAM before any response: the stream was not processed (a retry is safe). */
  refuse: ({ stream }) => stream.close(NGHTTP2_REFUSED_STREAM),

  /** The worker destroys its whole connection before any response. */
  "close-before-response": ({ stream, record }) => {
    record.connectionClosedByScript = true;
    stream.session?.destroy();
  },

  /** A graceful GOAWAY that still covers this stream (last-stream-id = its id), then the echo. */
  goaway: ({ stream, body }) => {
    stream.session?.goaway(NGHTTP2_NO_ERROR, stream.id);
    answer(stream, body.length > 0 ? [body] : []);
  },

  /** An informational 100 (Continue) HEADERS before the response, then the echo. */
  informational: ({ stream, body }) => {
    if (!open(stream)) return;
    stream.additionalHeaders({ ":status": 100 });
    answer(stream, body.length > 0 ? [body] : []);
  },

  /** A response carrying `host` (not connection-specific, so node lets a server send it). */
  "response-host": ({ stream, body }) =>
    answer(stream, body.length > 0 ? [body] : [], { headers: { host: "worker.internal" } }),
};

/**
 * Scripts that answer as soon as the request headers arrive, before the request ended (`x-script`
 * values too): an early answer while the client is still sending.
 */
export const EARLY_SCRIPTS: Readonly<Record<string, Script>> = {
  /** Trailers-only INVALID_ARGUMENT at once. */
  "early-error": ({ stream }) => {
    if (!open(stream)) return;
    stream.respond(
      { ...GRPC_HEADERS, "grpc-status": "3", "grpc-message": "rejected early" },
      { endStream: true },
    );
  },
};

/** Raw header array (`[name, value, name, value…]`) to pairs. */
function pairs(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i] as string, raw[i + 1] as string]);
  return out;
}

export class RecordingWorker {
  private readonly server: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private records: RecordedStream[] = [];
  private boundPort = 0;

  constructor() {
    this.server = http2.createServer({ maxSessionMemory: 100 });
    this.server.on("session", (session) => {
      this.sessions.add(session);
      session.on("error", () => {});
      session.once("close", () => this.sessions.delete(session));
    });
    this.server.on("stream", (stream, headers, _flags, rawHeaders) =>
      this.onStream(stream, headers, rawHeaders),
    );
  }

  get address(): string {
    return `127.0.0.1:${this.boundPort}`;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => {
        this.server.off("error", reject);
        this.boundPort = (this.server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  /**
   * The streams that arrived since the last call, in arrival order, once every one of them closed
   * (or `timeoutMs` passed: a stream still open is returned as it is, `closed: false`).
   */
  async take(timeoutMs = HOLD_CAP_MS + 1000): Promise<RecordedStream[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.records.some((r) => !r.closed) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    const taken = this.records;
    this.records = [];
    return taken;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    await Promise.all([...this.sessions].map((s) => closeSession(s)));
    await closed;
  }

  private onStream(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    rawHeaders: string[],
  ): void {
    const record: RecordedStream = {
      headers: pairs(rawHeaders),
      data: [],
      trailers: undefined,
      endStream: false,
      closed: false,
      rstCode: 0,
      connectionClosedByScript: false,
    };
    this.records.push(record);
    const timers = new Set<NodeJS.Timeout>();
    stream.on("error", () => {});
    stream.on("data", (chunk: Buffer) => record.data.push(chunk));
    stream.on("trailers", (_t: unknown, _f: unknown, raw: string[]) => (record.trailers = pairs(raw)));
    stream.once("close", () => {
      for (const t of timers) clearTimeout(t);
      record.closed = true;
      record.rstCode = stream.rstCode ?? 0;
    });
    const context = (): ScriptContext => ({
      stream,
      headers,
      body: Buffer.concat(record.data),
      record,
      later: (ms, fn) => {
        const t = setTimeout(() => {
          timers.delete(t);
          if (open(stream)) fn();
        }, ms);
        timers.add(t);
      },
    });
    const name = typeof headers["x-script"] === "string" ? headers["x-script"] : "echo";
    const early = EARLY_SCRIPTS[name];
    if (early) early(context());
    stream.once("end", () => {
      record.endStream = true;
      if (!early) (SCRIPTS[name] ?? SCRIPTS.echo)?.(context());
    });
    // A stream that never ends its request (a cancel before END_STREAM) is still bounded.
    const cap = setTimeout(() => {
      if (open(stream) && !record.endStream) stream.close(NGHTTP2_INTERNAL_ERROR);
    }, HOLD_CAP_MS * 2);
    timers.add(cap);
  }
}
