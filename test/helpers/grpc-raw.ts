/**
 * Raw HTTP/2 on both sides of Fulcrum, for what a gRPC library hides: whether a response was
 * trailers-only (HEADERS with END_STREAM), when exactly `grpc-status` arrived, which headers reached
 * the worker, GOAWAY and RST_STREAM codes. Only node:http2; gRPC framing (5-byte prefix) by hand.
 */
import * as http2 from "node:http2";

const { NGHTTP2_FLAG_END_STREAM } = http2.constants;

/** One length-prefixed gRPC message (uncompressed). */
export function grpcFrame(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(0, 0);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** Splits a body into its gRPC messages; throws on a truncated frame. */
export function parseGrpcFrames(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < body.length) {
    if (at + 5 > body.length) throw new Error(`truncated gRPC frame prefix at ${at}`);
    const len = body.readUInt32BE(at + 1);
    if (at + 5 + len > body.length) throw new Error(`truncated gRPC message at ${at}`);
    out.push(body.subarray(at + 5, at + 5 + len));
    at += 5 + len;
  }
  return out;
}

/** Decodes a percent-encoded `grpc-message` (gRPC's PROTOCOL-HTTP2.md) as UTF-8. */
export function decodeGrpcMessage(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const hex = value.slice(i + 1, i + 3);
    if (value[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(value.charCodeAt(i) & 0xff);
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** Connects an h2c client session and waits for the connection. */
export function rawConnect(target: { host: string; port: number }): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const host = target.host.includes(":") ? `[${target.host}]` : target.host;
    const session = http2.connect(`http://${host}:${target.port}`);
    session.once("connect", () => {
      session.off("error", reject);
      session.on("error", () => {});
      resolve(session);
    });
    session.once("error", reject);
  });
}

/** Closes a client or server session and resolves when it is gone. */
export function closeSession(session: http2.Http2Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.destroyed) return resolve();
    session.once("close", () => resolve());
    session.destroy();
  });
}

export interface RawResponse {
  readonly headers: http2.IncomingHttpHeaders;
  /** The response HEADERS frame carried END_STREAM: a trailers-only response. */
  readonly trailersOnly: boolean;
  /** How many 'data' events the response had, and its body. */
  readonly dataEvents: number;
  readonly body: Buffer;
  /** The trailing HEADERS frame, when there was one. */
  readonly trailers: http2.IncomingHttpHeaders | undefined;
  /** `grpc-status` from the trailers, or from the headers of a trailers-only response. */
  readonly grpcStatus: string | undefined;
  /** `grpc-message`, percent-decoded. */
  readonly grpcMessage: string | undefined;
  /** RST_STREAM code the stream closed with (0 = closed normally). */
  readonly rstCode: number;
  /** ms from `request()` to the arrival of `grpc-status`, if it arrived. */
  readonly statusMs: number | undefined;
  /** ms from `request()` to the stream's close. */
  readonly closedMs: number;
  /** True when the stream did not close within the call's `timeoutMs` and the test closed it. */
  readonly timedOut: boolean;
}

export interface RawRequestOptions {
  /** Extra request headers (metadata, `grpc-timeout`…). */
  readonly headers?: http2.OutgoingHttpHeaders;
  /** Safety net only: after this the test closes the stream itself and reports `timedOut`. */
  readonly timeoutMs?: number;
}

/**
 * Sends one gRPC request (`messages` framed, then END_STREAM) and records the response as it
 * arrived on the wire. Never cancels the stream before `timeoutMs`.
 */
export function rawGrpcRequest(
  session: http2.ClientHttp2Session,
  path: string,
  messages: readonly Buffer[] = [Buffer.alloc(0)],
  options: RawRequestOptions = {},
): Promise<RawResponse> {
  return new Promise((resolve) => {
    const started = performance.now();
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...options.headers,
    });
    let headers: http2.IncomingHttpHeaders = {};
    let trailersOnly = false;
    let dataEvents = 0;
    const chunks: Buffer[] = [];
    let trailers: http2.IncomingHttpHeaders | undefined;
    let statusMs: number | undefined;
    let timedOut = false;
    stream.on("response", (h, flags) => {
      headers = h;
      trailersOnly = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
      if (h["grpc-status"] !== undefined) statusMs ??= performance.now() - started;
    });
    stream.on("data", (chunk: Buffer) => {
      dataEvents++;
      chunks.push(chunk);
    });
    stream.on("trailers", (t: http2.IncomingHttpHeaders) => {
      trailers = t;
      statusMs ??= performance.now() - started;
    });
    stream.on("error", () => {});
    const timer = setTimeout(() => {
      timedOut = true;
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }, options.timeoutMs ?? 10_000);
    stream.on("close", () => {
      clearTimeout(timer);
      const statusHeaders = trailers ?? (trailersOnly ? headers : undefined);
      const status = statusHeaders?.["grpc-status"];
      const message = statusHeaders?.["grpc-message"];
      resolve({
        headers,
        trailersOnly,
        dataEvents,
        body: Buffer.concat(chunks),
        trailers,
        grpcStatus: typeof status === "string" ? status : undefined,
        grpcMessage: typeof message === "string" ? decodeGrpcMessage(message) : undefined,
        rstCode: stream.rstCode ?? 0,
        statusMs,
        closedMs: performance.now() - started,
        timedOut,
      });
    });
    for (const m of messages) stream.write(grpcFrame(m));
    stream.end();
  });
}

export type RawStreamHandler = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  session: http2.ServerHttp2Session,
) => void;

/**
 * A worker on raw node:http2 (h2c) whose every stream goes to `handler`. Counts sessions and streams,
 * and destroys every session on `close()`.
 */
export class RawHttp2Worker {
  readonly server: http2.Http2Server;
  /** Sessions accepted so far, and those still open. */
  sessionCount = 0;
  readonly sessions = new Set<http2.ServerHttp2Session>();
  /** Streams received so far. */
  streamCount = 0;
  private boundPort = 0;

  constructor(handler: RawStreamHandler, options: http2.ServerOptions = {}) {
    this.server = http2.createServer({ maxSessionMemory: 1000, ...options });
    this.server.on("session", (session) => {
      this.sessionCount++;
      this.sessions.add(session);
      session.on("error", () => {});
      session.once("close", () => this.sessions.delete(session));
    });
    this.server.on("stream", (stream, headers) => {
      this.streamCount++;
      stream.on("error", () => {});
      handler(stream, headers, stream.session as http2.ServerHttp2Session);
    });
  }

  get port(): number {
    return this.boundPort;
  }

  get address(): string {
    return `127.0.0.1:${this.boundPort}`;
  }

  listen(host = "127.0.0.1", port = 0): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        this.boundPort = (this.server.address() as { port: number }).port;
        resolve(this.boundPort);
      });
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    await Promise.all([...this.sessions].map((s) => closeSession(s)));
    await closed;
  }
}

/** True when the stream can still be answered. */
export function open(stream: http2.Http2Stream): boolean {
  return !stream.destroyed && !stream.closed;
}

/** Collects a request body until END_STREAM. */
export function readBody(stream: http2.ServerHttp2Stream): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.once("end", () => resolve(Buffer.concat(chunks)));
    stream.once("close", () => resolve(Buffer.concat(chunks)));
  });
}

/** Answers a gRPC call: headers, one message, then trailers (`grpc-status: 0` unless overridden). */
export function respondGrpc(
  stream: http2.ServerHttp2Stream,
  message: Buffer,
  options: { headers?: http2.OutgoingHttpHeaders; trailers?: http2.OutgoingHttpHeaders } = {},
): void {
  if (!open(stream)) return;
  stream.respond(
    { ":status": 200, "content-type": "application/grpc", ...options.headers },
    { waitForTrailers: true },
  );
  stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", ...options.trailers }));
  stream.end(grpcFrame(message));
}

/** Answers trailers-only: one HEADERS frame with END_STREAM carrying the status. */
export function respondTrailersOnly(
  stream: http2.ServerHttp2Stream,
  status: number,
  message: string,
  extra: http2.OutgoingHttpHeaders = {},
): void {
  if (!open(stream)) return;
  stream.respond(
    {
      ":status": 200,
      "content-type": "application/grpc",
      "grpc-status": String(status),
      "grpc-message": encodeURIComponent(message),
      ...extra,
    },
    { endStream: true },
  );
}
