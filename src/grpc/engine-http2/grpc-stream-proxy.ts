/**
 * One gRPC stream through the `http2` engine: pick an endpoint, open a stream on a pooled session,
 * forward headers, DATA and trailers both ways with backpressure, enforce `grpc-timeout`, pass
 * cancellation both ways, and retry on another endpoint while nothing of the response has arrived and
 * the request so far fits the 64 KiB retry buffer. Every outcome ends as one gRPC status, reported once.
 */
import {
  constants,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { Endpoint } from "../../balancer/endpoint-set.js";
import type { ClusterRuntime } from "../../runtime/cluster-runtime.js";
import { GrpcStatus, encodeGrpcMessage, parseStatus, statusOfResetCode } from "../grpc-status.js";
import { parseGrpcTimeout } from "../grpc-timeout.js";
import { StreamEndpointChoice } from "../stream-endpoint-choice.js";
import { InferenceRouting, ROUTE_TRAILER, type RouteReason } from "../inference-routing.js";

import type { ClusterPools } from "./cluster-pools.js";
import type { UpstreamPool, UpstreamSession } from "./upstream-pool.js";

/** Request bytes kept for a retry; past it a stream is no longer retried (docs/architecture.md). */
export const RETRY_BUFFER_BYTES = 64 * 1024;

export interface StreamRoute {
  readonly cluster: ClusterRuntime;
  readonly pools: ClusterPools;
  /** Lower-case header name when the cluster has `affinity.key: header:<name>`. */
  readonly affinityHeader: string | undefined;
  readonly sourceAffinity: boolean;
  readonly upstreamScheme: "http" | "https";
}

/** How a stream ended, reported once to the listener for metrics and the access log (either engine). */
export interface StreamOutcome {
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly seconds: number;
  /** The client's address (no port), when known. */
  readonly client: string | undefined;
  /** The request's `:path`. */
  readonly method: string | undefined;
  /** The endpoint of the last attempt; undefined when none was picked. */
  readonly endpoint: string | undefined;
  /** Attempts beyond the first. */
  readonly retries: number;
  /** Why the first attempt's endpoint was picked; undefined when none was. */
  readonly route: RouteReason | undefined;
}

const END_STREAM = constants.NGHTTP2_FLAG_END_STREAM;

export class GrpcStreamProxy {
  private up: ClientHttp2Stream | undefined;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private replayable = true;
  private requestEnded = false;
  private upstreamResponded = false;
  private upstreamEnded = false;
  private trailers: OutgoingHttpHeaders | undefined;
  private status = -1;
  private deadline: NodeJS.Timeout | undefined;
  private bytesIn = 0;
  private bytesOut = 0;
  private readonly started = performance.now();
  private readonly upstreamHeaders: OutgoingHttpHeaders;
  private readonly clientAddress: string | undefined;
  private readonly method: string | undefined;
  private readonly affinityKey: string | undefined;
  /** Inference routing of this stream (models configured and an inference method), if any. */
  private readonly routing: InferenceRouting | undefined;
  /** The endpoint of each attempt (model filter, sequence pins, policy) and the route's explanation. */
  private readonly choice: StreamEndpointChoice;

  constructor(
    private readonly down: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    clientAddress: string | undefined,
    private readonly route: StreamRoute,
    private readonly onDone: (outcome: StreamOutcome) => void,
  ) {
    this.clientAddress = clientAddress;
    this.upstreamHeaders = forwardedRequestHeaders(headers, route.upstreamScheme);
    this.affinityKey = route.affinityHeader
      ? headerValue(headers[route.affinityHeader])
      : route.sourceAffinity
        ? clientAddress
        : undefined;
    down.on("data", (chunk: Buffer) => this.onRequestData(chunk));
    down.once("end", () => this.onRequestEnd());
    down.once("close", () => this.onDownstreamClose());
    down.on("error", noop);
    const timeoutMs = parseGrpcTimeout(headers["grpc-timeout"]);
    if (timeoutMs !== undefined) {
      this.deadline = setTimeout(() => this.onDeadline(), Math.max(0, timeoutMs));
    }
    // An inference call to a cluster with models waits for the head of its first message.
    const path = headers[":path"];
    this.method = typeof path === "string" ? path : undefined;
    this.routing = InferenceRouting.forStream(route.cluster, this.method);
    this.choice = new StreamEndpointChoice(route.cluster, clientAddress, this.affinityKey, this.routing);
    if (!this.routing) this.attempt();
  }

  private attempt(): void {
    if (this.down.closed || this.down.destroyed) return;
    const choice = this.choice.next();
    if (choice.kind === "unavailable") return this.respondError(GrpcStatus.UNAVAILABLE, choice.message);
    const endpoint = choice.endpoint;
    const cluster = this.route.cluster;
    const pool = this.route.pools.get(endpoint);
    const ready = pool.tryAcquire();
    if (ready) return this.startOn(endpoint, pool, ready);
    pool.acquire((result) => {
      if (result.kind === "ok") return this.startOn(endpoint, pool, result.session);
      cluster.connectFailed(endpoint, result.reason);
      this.choice.connectFailed(endpoint, result.reason);
      this.retryOrFail(`${endpoint.address}: ${result.reason}`);
    });
  }

  private startOn(endpoint: Endpoint, pool: UpstreamPool, session: UpstreamSession): void {
    if (this.down.closed || this.down.destroyed || this.status >= 0) return;
    let up: ClientHttp2Stream;
    try {
      up = session.session.request(this.upstreamHeaders, { endStream: false });
    } catch (err) {
      // A session that received GOAWAY and closed refuses new streams synchronously.
      session.transition("draining");
      this.choice.refusedBy(endpoint, "refused");
      return this.retryOrFail(`${endpoint.address}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    session.active++;
    this.route.cluster.acquire(endpoint);
    this.up = up;
    up.on("response", (headers, flags) => this.onResponse(headers, flags));
    up.on("data", (chunk: Buffer) => this.onResponseData(chunk));
    up.on("trailers", (trailers: IncomingHttpHeaders) => {
      if (this.status < 0) this.trailers = forwardedTrailers(trailers);
    });
    up.once("end", () => this.onResponseEnd());
    const startedAt = performance.now();
    up.once("close", () => this.onUpstreamClose(up, endpoint, pool, session, startedAt));
    up.on("error", noop);
    for (const chunk of this.buffered) this.writeUpstream(chunk);
    if (!this.replayable) this.buffered = [];
    if (this.requestEnded) up.end();
    if (this.down.isPaused()) this.down.resume();
  }

  private onRequestData(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    if (!this.up) {
      this.buffered.push(chunk);
      this.bufferedBytes += chunk.length;
      const routing = this.routing;
      if (routing && this.choice.attempts === 0 && !routing.decided) {
        // Past the retry buffer the stream pauses: decide with what arrived rather than wait forever.
        if (this.bufferedBytes > RETRY_BUFFER_BYTES) routing.end();
        if (routing.push(chunk) || routing.decided) this.attempt();
      }
      if (this.bufferedBytes > RETRY_BUFFER_BYTES) {
        this.replayable = false;
        if (!this.up) this.down.pause();
      }
      return;
    }
    if (this.replayable) {
      this.bufferedBytes += chunk.length;
      if (this.bufferedBytes > RETRY_BUFFER_BYTES) {
        this.replayable = false;
        this.buffered = [];
      } else {
        this.buffered.push(chunk);
      }
    }
    this.writeUpstream(chunk);
  }

  private writeUpstream(chunk: Buffer): void {
    const up = this.up as ClientHttp2Stream;
    if (!up.write(chunk) && !this.down.isPaused()) {
      this.down.pause();
      up.once("drain", () => this.down.resume());
    }
  }

  private onRequestEnd(): void {
    this.requestEnded = true;
    this.up?.end();
    const routing = this.routing;
    if (routing && this.choice.attempts === 0 && !routing.decided) {
      routing.end();
      this.attempt();
    }
  }

  private onResponse(headers: IncomingHttpHeaders, flags: number): void {
    this.upstreamResponded = true;
    this.replayable = false;
    this.buffered = [];
    if (this.status >= 0 || this.down.closed || this.down.destroyed) return;
    const out = forwardedResponseHeaders(headers);
    if (flags & END_STREAM) {
      // Trailers-only: forwarded as trailers-only, never as HEADERS + DATA + trailers.
      this.status = parseStatus(headers["grpc-status"]);
      if (this.choice.explanation !== undefined) out[ROUTE_TRAILER] = this.choice.explanation;
      this.down.respond(out, { endStream: true });
      return;
    }
    this.down.once("wantTrailers", () => {
      const trailers = this.trailers ?? {
        "grpc-status": String(GrpcStatus.INTERNAL),
        "grpc-message": "upstream response ended without trailers",
      };
      if (this.choice.explanation !== undefined) trailers[ROUTE_TRAILER] = this.choice.explanation;
      if (this.status < 0) this.status = parseStatus(trailers["grpc-status"]);
      this.down.sendTrailers(trailers);
    });
    this.down.respond(out, { waitForTrailers: true });
  }

  private onResponseData(chunk: Buffer): void {
    this.bytesOut += chunk.length;
    if (this.down.closed || this.down.destroyed) return;
    if (!this.down.write(chunk)) {
      const up = this.up as ClientHttp2Stream;
      up.pause();
      this.down.once("drain", () => up.resume());
    }
  }

  private onResponseEnd(): void {
    this.upstreamEnded = true;
    if (this.down.headersSent && !this.down.writableEnded && !this.down.destroyed) this.down.end();
  }

  private onUpstreamClose(
    up: ClientHttp2Stream,
    endpoint: Endpoint,
    pool: UpstreamPool,
    session: UpstreamSession,
    startedAt: number,
  ): void {
    pool.released(session);
    this.route.cluster.release(endpoint);
    const latencyMs = performance.now() - startedAt;
    if (this.up === up) this.up = undefined;
    const rst = up.rstCode ?? constants.NGHTTP2_NO_ERROR;
    const clean = this.upstreamEnded && rst === constants.NGHTTP2_NO_ERROR;
    if (clean) {
      const status = this.trailers ? parseStatus(this.trailers["grpc-status"]) : this.status;
      this.route.cluster.streamResult(endpoint, status !== GrpcStatus.UNAVAILABLE);
      this.route.cluster.streamFinished(endpoint, latencyMs, status);
      return;
    }
    if (this.status >= 0 || this.down.closed || this.down.destroyed) {
      // We (deadline) or the client (cancel) ended it.
      this.route.cluster.streamFinished(
        endpoint,
        latencyMs,
        this.status >= 0 ? this.status : GrpcStatus.CANCELLED,
      );
      return;
    }
    const sessionLost = session.state === "closed" || session.session.destroyed || session.session.closed;
    const refused =
      rst === constants.NGHTTP2_REFUSED_STREAM || (session.state === "draining" && !sessionLost);
    if (!this.upstreamResponded && this.replayable && refused) {
      // Never processed (REFUSED_STREAM, or above a GOAWAY's last stream id): not the endpoint's fault.
      this.choice.refusedBy(endpoint, "refused");
      return this.retryOrFail(`${endpoint.address}: stream refused`);
    }
    this.route.cluster.upstreamReset(endpoint);
    this.route.cluster.streamResult(endpoint, false);
    const status = sessionLost ? GrpcStatus.UNAVAILABLE : statusOfResetCode(rst);
    this.route.cluster.streamFinished(endpoint, latencyMs, status);
    const why = sessionLost
      ? "connection to the endpoint was lost"
      : `the endpoint reset the stream (code ${rst})`;
    this.respondError(status, `${endpoint.address}: ${why}`);
  }

  private retryOrFail(reason: string): void {
    this.choice.lastError = reason;
    if (this.replayable && this.choice.attempts < this.route.cluster.connectAttempts) return this.attempt();
    this.respondError(
      GrpcStatus.UNAVAILABLE,
      `no endpoint of cluster "${this.route.cluster.name}" could take the stream: ${reason}`,
    );
  }

  private onDeadline(): void {
    this.deadline = undefined;
    this.respondError(GrpcStatus.DEADLINE_EXCEEDED, "deadline exceeded");
  }

  /** Ends the downstream with `status`: trailers-only before any response header, trailers after. */
  private respondError(status: number, message: string): void {
    if (this.status >= 0 && this.down.headersSent) return;
    this.status = status;
    const up = this.up;
    if (up && !up.closed) up.close(constants.NGHTTP2_CANCEL);
    const down = this.down;
    if (down.closed || down.destroyed) return;
    const fields: OutgoingHttpHeaders = {
      "grpc-status": String(status),
      "grpc-message": encodeGrpcMessage(message),
    };
    const explanation = this.choice.answerExplanation();
    if (explanation !== undefined) fields[ROUTE_TRAILER] = explanation;
    if (!down.headersSent) {
      down.respond({ ":status": 200, "content-type": "application/grpc", ...fields }, { endStream: true });
    } else {
      this.trailers = fields;
      if (!down.writableEnded) down.end();
    }
  }

  private onDownstreamClose(): void {
    if (this.deadline) clearTimeout(this.deadline);
    const up = this.up;
    if (up && !up.closed) up.close(constants.NGHTTP2_CANCEL);
    if (this.status < 0) this.status = GrpcStatus.CANCELLED;
    const choice = this.choice;
    this.onDone({
      status: this.status,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      seconds: (performance.now() - this.started) / 1000,
      client: this.clientAddress,
      method: this.method,
      endpoint: choice.endpoint?.address,
      retries: choice.retries,
      route: choice.reason,
    });
  }
}

/** Connection-specific headers (RFC 9113 §8.2.2) never cross the proxy; HTTP/2 peers must not send them. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
  "http2-settings",
]);

function forwardedRequestHeaders(
  headers: IncomingHttpHeaders,
  scheme: "http" | "https",
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name of Object.keys(headers)) {
    if (HOP_BY_HOP.has(name)) continue;
    out[name] = headers[name];
  }
  out[":scheme"] = scheme;
  return out;
}

function forwardedResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name of Object.keys(headers)) {
    if (HOP_BY_HOP.has(name) || name === "date") continue;
    out[name] = headers[name];
  }
  return out;
}

function forwardedTrailers(trailers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name of Object.keys(trailers)) {
    if (name.startsWith(":") || HOP_BY_HOP.has(name)) continue;
    out[name] = trailers[name];
  }
  return out;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function noop(): void {}
