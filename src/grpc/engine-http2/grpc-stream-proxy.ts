/**
 * One gRPC stream through the `http2` engine: the stream core (proxied-stream.ts) on node:http2
 * streams. It forwards headers, DATA and trailers both ways with the streams' backpressure (pause
 * the source while the other side's buffer is full).
 */
import {
  constants,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerStreamResponseOptions,
} from "node:http2";
import type { Endpoint } from "../../balancer/endpoint-set.js";
import { GrpcStatus } from "../grpc-status.js";
import { crossesProxy } from "../header-rules.js";
import { ROUTE_TRAILER } from "../inference-routing.js";
import { ProxiedStream, type StreamRouteInputs } from "../proxied-stream.js";
import type { StreamOwner } from "../stream-outcome.js";
import type { ClusterPools } from "./cluster-pools.js";
import type { UpstreamPool, UpstreamSession } from "./upstream-pool.js";

export interface StreamRoute extends StreamRouteInputs {
  readonly pools: ClusterPools;
  /** `listeners[].stream_balancing: per_request`: a `ModelStreamInfer` stream is split (stream-split.ts). */
  readonly perRequest: boolean;
}

/**
 * What a proxied stream uses of its client's stream: a node:http2 ServerHttp2Stream, or one lane of
 * a split `ModelStreamInfer` stream (http2-stream-split.ts).
 */
export interface ClientStream {
  readonly closed: boolean;
  readonly destroyed: boolean;
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly state: { readonly remoteClose?: number };
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  once(event: "trailers", listener: (trailers: IncomingHttpHeaders) => void): unknown;
  once(event: "end" | "close" | "drain" | "wantTrailers", listener: () => void): unknown;
  isPaused(): boolean;
  pause(): unknown;
  resume(): unknown;
  respond(headers: OutgoingHttpHeaders, options: ServerStreamResponseOptions): void;
  write(chunk: Buffer): boolean;
  end(): unknown;
  sendTrailers(headers: OutgoingHttpHeaders): void;
  close(code?: number): void;
}

const END_STREAM = constants.NGHTTP2_FLAG_END_STREAM;
/**
 * `sendDate: false`: node:http2 would stamp a `date` on every response it sends; Fulcrum forwards
 * the worker's own (header-rules.ts) and adds none, as the frames engine does.
 */
export const ENDS_RESPONSE = { endStream: true, sendDate: false } as const;
export const WAITS_FOR_TRAILERS = { waitForTrailers: true, sendDate: false } as const;

export class GrpcStreamProxy extends ProxiedStream<ClientHttp2Stream> {
  /** The trailers for the client, sent when node:http2 asks for them (`wantTrailers`). */
  private trailers: OutgoingHttpHeaders | undefined;
  private upstreamEnded = false;
  /** The client's request trailers (rare in gRPC), sent upstream when node:http2 asks for them. */
  private requestTrailers: OutgoingHttpHeaders | undefined;
  private readonly upstreamHeaders: OutgoingHttpHeaders;

  constructor(
    private readonly down: ClientStream,
    headers: IncomingHttpHeaders,
    private readonly route: StreamRoute,
    owner: StreamOwner,
  ) {
    const path = headers[":path"];
    super(route, typeof path === "string" ? path : undefined, owner);
    this.upstreamHeaders = forwardedFields(headers, true);
    this.upstreamHeaders[":scheme"] = route.pools.scheme;
    down.on("data", (chunk: Buffer) => this.requestData(chunk, false));
    down.once("trailers", (trailers: IncomingHttpHeaders) => {
      this.requestTrailers = forwardedFields(trailers, false);
      this.requestHasTrailers = true;
    });
    down.once("end", () => this.requestData(EMPTY, true));
    down.once("close", () => this.finish());
    down.on("error", noop);
    this.begin(headerValue(headers["grpc-timeout"]), false);
  }

  // ---- the engine's part of the core --------------------------------------------------------------

  protected override openOn(endpoint: Endpoint): void {
    const pool = this.route.pools.get(endpoint);
    const ready = pool.tryAcquire();
    if (ready) return this.startOn(endpoint, pool, ready);
    pool.acquire((result) => {
      if (result.kind === "ok") return this.startOn(endpoint, pool, result.session);
      this.connectFailed(endpoint, result.reason);
    });
  }

  private startOn(endpoint: Endpoint, pool: UpstreamPool, session: UpstreamSession): void {
    if (!this.connecting || this.down.closed || this.down.destroyed) return;
    const endStream = this.headersEndRequest;
    let up: ClientHttp2Stream;
    try {
      // Its END_STREAM waits for 'wantTrailers', which sends the client's trailers if it sent any.
      up = session.session.request(this.upstreamHeaders, { endStream, waitForTrailers: !endStream });
    } catch (err) {
      // A session that received GOAWAY and closed refuses new streams synchronously.
      session.transition("draining");
      return this.refusedOnOpen(endpoint, (err as NodeJS.ErrnoException).code ?? String(err));
    }
    session.active++;
    this.up = up;
    this.upstreamEnded = false;
    up.on("response", (headers, flags) => this.onResponse(up, headers, flags));
    up.on("data", (chunk: Buffer) => this.onResponseData(up, chunk));
    up.on("trailers", (trailers: IncomingHttpHeaders) => this.onTrailers(up, trailers));
    up.once("end", () => this.onResponseEnd(up));
    up.once("close", () => this.onUpstreamClose(up, pool, session));
    up.on("error", noop);
    if (!endStream) up.once("wantTrailers", () => up.sendTrailers(this.requestTrailers ?? {}));
    this.opened(endpoint, endStream);
    if (this.down.isPaused()) this.down.resume();
  }

  protected override sendUp(up: ClientHttp2Stream, data: Buffer, end: boolean): void {
    if (data.length > 0 && !up.write(data) && !this.down.isPaused()) {
      this.down.pause();
      up.once("drain", () => this.down.resume());
    }
    if (end) up.end();
  }

  protected override abortUp(up: ClientHttp2Stream): void {
    if (!up.closed) up.close(constants.NGHTTP2_CANCEL);
  }

  protected override holdRequest(): void {
    this.down.pause();
  }

  protected override answerClient(
    status: number,
    message: string,
    explanation: string | undefined,
    afterHeaders: boolean,
  ): void {
    const down = this.down;
    if (down.closed || down.destroyed) return;
    const fields: OutgoingHttpHeaders = { "grpc-status": String(status), "grpc-message": message };
    if (explanation !== undefined) fields[ROUTE_TRAILER] = explanation;
    if (!afterHeaders && !down.headersSent) {
      down.respond({ ":status": 200, "content-type": "application/grpc", ...fields }, ENDS_RESPONSE);
      this.stopRequest();
      return;
    }
    this.trailers = fields;
    if (!down.writableEnded) down.end();
  }

  /**
   * The response is complete: a client still sending its request is told to stop with RST_STREAM
   * NO_ERROR (RFC 9113 §8.1), which also ends the stream here, as the frames engine does.
   */
  private stopRequest(): void {
    const down = this.down;
    if (down.destroyed || down.state.remoteClose !== 0) return;
    // After the response has left: node:http2 sends what was submitted this turn from a native
    // immediate, which runs before this one; a reset submitted now would drop the response.
    setImmediate(() => {
      if (!down.destroyed) down.close(constants.NGHTTP2_NO_ERROR);
    });
  }

  // ---- the upstream stream's events ---------------------------------------------------------------

  private onResponse(up: ClientHttp2Stream, headers: IncomingHttpHeaders, flags: number): void {
    if (up !== this.up) return;
    const endStream = (flags & END_STREAM) !== 0;
    if (!this.responseHeaders(endStream, headerValue(headers["grpc-status"]))) return;
    const down = this.down;
    if (down.closed || down.destroyed) return;
    const out = forwardedFields(headers, true);
    if (endStream) {
      // Trailers-only: forwarded as trailers-only, never as HEADERS + DATA + trailers.
      if (this.choice.explanation !== undefined) out[ROUTE_TRAILER] = this.choice.explanation;
      down.respond(out, ENDS_RESPONSE);
      this.stopRequest();
      return;
    }
    down.once("wantTrailers", () => {
      // Set by the worker's trailers or by Fulcrum's own answer, whichever ended the response.
      const trailers = this.trailers ?? {
        "grpc-status": String(GrpcStatus.INTERNAL),
        "grpc-message": "upstream response ended without trailers",
      };
      down.sendTrailers(trailers);
      this.stopRequest();
    });
    down.respond(out, WAITS_FOR_TRAILERS);
  }

  private onResponseData(up: ClientHttp2Stream, chunk: Buffer): void {
    // node:http2 may emit the trailers before the DATA read ahead of them: `trailed` still forwards.
    if (up !== this.up || (this.phase !== "responding" && this.phase !== "trailed")) return;
    this.bytesOut += chunk.length;
    const down = this.down;
    if (down.closed || down.destroyed) return;
    if (!down.write(chunk)) {
      up.pause();
      down.once("drain", () => up.resume());
    }
  }

  private onTrailers(up: ClientHttp2Stream, trailers: IncomingHttpHeaders): void {
    if (up !== this.up || !this.responseTrailers(headerValue(trailers["grpc-status"]))) return;
    const out = forwardedFields(trailers, false);
    if (this.choice.explanation !== undefined) out[ROUTE_TRAILER] = this.choice.explanation;
    this.trailers = out;
  }

  private onResponseEnd(up: ClientHttp2Stream): void {
    if (up !== this.up) return;
    this.upstreamEnded = true;
    // Without the worker's trailers the close decides: a reset code, or a clean end without them.
    if (this.phase !== "trailed") return;
    const down = this.down;
    if (down.headersSent && !down.writableEnded && !down.destroyed) down.end();
  }

  private onUpstreamClose(up: ClientHttp2Stream, pool: UpstreamPool, session: UpstreamSession): void {
    pool.released(session);
    if (up !== this.up) return;
    const rst = up.rstCode ?? constants.NGHTTP2_NO_ERROR;
    if (this.upstreamEnded && rst === constants.NGHTTP2_NO_ERROR) {
      if (this.phase === "trailed") return this.upstreamDone();
      return this.respondError(GrpcStatus.INTERNAL, "upstream response ended without trailers");
    }
    const sessionLost = session.state === "closed" || session.session.destroyed || session.session.closed;
    const refused =
      rst === constants.NGHTTP2_REFUSED_STREAM || (session.state === "draining" && !sessionLost);
    this.upstreamFailed(refused ? "refused" : sessionLost ? "lost" : "reset", rst);
  }
}

const EMPTY = Buffer.alloc(0);

/** A received header list as node:http2 sends it on, minus what does not cross (header-rules.ts). */
function forwardedFields(headers: IncomingHttpHeaders, keepPseudo: boolean): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name of Object.keys(headers)) {
    if (crossesProxy(name, keepPseudo)) out[name] = headers[name];
  }
  return out;
}

/** The first value of a received header (node:http2 gives an array for some repeated fields). */
export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function noop(): void {}
