/**
 * One gRPC stream through the `frames` engine: pick an endpoint, open a stream on a pooled upstream
 * connection, forward header blocks, DATA (views of the received bytes, never copied) and trailers
 * both ways, give each side's flow-control window back only as the other side takes the bytes,
 * enforce `grpc-timeout`, pass cancellation both ways, and retry on another endpoint while nothing of
 * the response arrived and the request so far fits the 64 KiB retry buffer (docs/architecture.md "Retries").
 * Every outcome ends as one gRPC status, reported once: the same contract as the `http2` engine.
 */
import type { Endpoint } from "../../balancer/endpoint-set.js";
import { GrpcStatus, encodeGrpcMessage, parseStatus, statusOfResetCode } from "../grpc-status.js";
import { RETRY_BUFFER_BYTES, type StreamOutcome } from "../engine-http2/grpc-stream-proxy.js";
import { parseGrpcTimeout } from "../grpc-timeout.js";
import type { ClusterRuntime } from "../../runtime/cluster-runtime.js";
import { H2_ERROR_CODES } from "../../h2/h2-error-codes.js";
import type { HeaderList } from "../../h2/hpack-header-list.js";
import type { ResetCause, StreamEnd, StreamHandler } from "./frames-connection.js";
import { releaseRequestList, statusTrailers, trailersOnly } from "./frames-headers.js";
import { StreamEndpointChoice } from "../stream-endpoint-choice.js";
import { InferenceRouting, ROUTE_TRAILER } from "../inference-routing.js";
import type { FramesClusterPools, FramesUpstreamPool } from "./frames-upstream-pool.js";
import type { UpstreamConnection } from "./frames-upstream.js";

export interface FramesRoute {
  readonly cluster: ClusterRuntime;
  readonly pools: FramesClusterPools;
  readonly clientAddress: string | undefined;
  readonly affinityKey: string | undefined;
}

/** Hears how each stream ended (the client connection; an interface, not a closure per stream). */
export interface StreamOwner {
  streamDone(cluster: string, outcome: StreamOutcome): void;
}

const EMPTY = Buffer.alloc(0);

export class FramesStream implements StreamHandler {
  private up: StreamEnd | undefined;
  private upEndpoint: Endpoint | undefined;
  private upStartedAt = 0;
  /** Inference routing of this stream (models configured and an inference method), if any. */
  private readonly routing: InferenceRouting | undefined;
  /** The endpoint of each attempt (model filter, sequence pins, policy) and the route's explanation. */
  private readonly choice: StreamEndpointChoice;
  /** Request DATA kept for a retry (views), while `replayable`. */
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private replayable = true;
  private requestEnded = false;
  private responded = false;
  /** Request octets the current upstream stream wrote, and octets given back to the client. */
  private upWritten = 0;
  private acked = 0;
  private status = -1;
  private done = false;
  private deadline: NodeJS.Timeout | undefined;
  private bytesIn = 0;
  private bytesOut = 0;
  private readonly started = performance.now();
  private readonly method: string | undefined;

  constructor(
    private readonly down: StreamEnd,
    private readonly request: HeaderList,
    private readonly route: FramesRoute,
    private readonly owner: StreamOwner,
    endStream: boolean,
  ) {
    down.handler = this;
    this.requestEnded = endStream;
    const timeoutMs = parseGrpcTimeout(request.get("grpc-timeout"));
    if (timeoutMs !== undefined) this.deadline = setTimeout(() => this.onDeadline(), Math.max(0, timeoutMs));
    // An inference call to a cluster with models waits for the head of its first message.
    this.method = request.get(":path");
    this.routing = InferenceRouting.forStream(route.cluster, this.method);
    this.choice = new StreamEndpointChoice(
      route.cluster,
      route.clientAddress,
      route.affinityKey,
      this.routing,
    );
    if (this.routing && endStream) this.routing.end();
    if (!this.routing || this.routing.decided) this.attempt();
  }

  // ---- StreamHandler: both ends report here ---------------------------------------------------------

  onHeaders(end: StreamEnd, list: HeaderList, endStream: boolean): void {
    if (end === this.down) {
      // Request trailers (rare in gRPC): forwarded, they end the request.
      this.requestEnded = true;
      if (this.up) this.up.conn.sendHeaders(this.up, list, true, "trailers");
      return;
    }
    if (end !== this.up) return;
    const first = !this.responded;
    this.responded = true;
    this.replayable = false;
    this.buffered = [];
    if (this.done || this.status >= 0) return;
    if (first) {
      const code = list.get(":status");
      if (code !== undefined && code.startsWith("1")) {
        this.responded = false; // informational: the real response follows
        return;
      }
      if (endStream) this.status = parseStatus(list.get("grpc-status"));
      const note = endStream ? this.routeField() : undefined;
      this.down.conn.sendHeaders(this.down, list, endStream, "response", note);
      return;
    }
    if (!endStream) {
      this.up.conn.streamError(this.up, "PROTOCOL_ERROR");
      return;
    }
    this.status = parseStatus(list.get("grpc-status"));
    this.down.conn.sendHeaders(this.down, list, true, "trailers", this.routeField());
  }

  onData(end: StreamEnd, data: Buffer, endStream: boolean): void {
    if (end === this.down) return this.onRequestData(data, endStream);
    if (end !== this.up || this.done || this.status >= 0) {
      end.conn.consumed(end, data.length);
      return;
    }
    this.bytesOut += data.length;
    this.down.conn.sendData(this.down, data, false);
    if (endStream) this.respondError(GrpcStatus.INTERNAL, "upstream response ended without trailers");
  }

  onWritten(end: StreamEnd, n: number): void {
    if (end === this.down) {
      // Response octets reached the client's socket: the worker may send that many more.
      const up = this.up;
      if (up) up.conn.consumed(up, n);
      return;
    }
    if (end !== this.up) return;
    // Request octets reached the worker's socket; replays of bytes given back before count once.
    this.upWritten += n;
    if (this.upWritten > this.acked) {
      this.down.conn.consumed(this.down, this.upWritten - this.acked);
      this.acked = this.upWritten;
    }
  }

  onLocalEnd(end: StreamEnd): void {
    if (end !== this.down) return;
    // The response is complete. A client still sending is told to stop (RFC 9113 §8.1).
    if (!end.remoteClosed) end.conn.resetStream(end, "NO_ERROR");
    this.finish();
  }

  onReset(end: StreamEnd, code: number, why: ResetCause): void {
    if (end === this.down) {
      // The client cancelled (or its connection went): cancel upstream.
      if (this.status < 0) this.status = GrpcStatus.CANCELLED;
      this.cancelUpstream();
      this.finish();
      return;
    }
    if (end !== this.up) return;
    const endpoint = this.upEndpoint as Endpoint;
    if (this.done || this.status >= 0) return this.releaseUpstream(this.status);
    const refused = why === "goaway" || code === H2_ERROR_CODES.REFUSED_STREAM;
    if (refused && !this.responded && this.replayable) {
      // Never processed (REFUSED_STREAM, or above a GOAWAY's last stream id): not the endpoint's fault.
      this.releaseUpstream(undefined);
      this.choice.refusedBy(endpoint, "refused");
      return this.retryOrFail(`${endpoint.address}: stream refused`);
    }
    const cluster = this.route.cluster;
    cluster.upstreamReset(endpoint);
    cluster.streamResult(endpoint, false);
    const lost = why === "connection";
    const status = lost ? GrpcStatus.UNAVAILABLE : statusOfResetCode(code);
    this.releaseUpstream(status);
    const reason = lost
      ? "connection to the endpoint was lost"
      : `the endpoint reset the stream (code ${code})`;
    this.respondError(status, `${endpoint.address}: ${reason}`);
  }

  // ---- request side -------------------------------------------------------------------------------

  private onRequestData(data: Buffer, endStream: boolean): void {
    this.bytesIn += data.length;
    if (endStream) this.requestEnded = true;
    if (this.done) {
      this.down.conn.consumed(this.down, data.length);
      return;
    }
    const up = this.up;
    if (this.replayable || !up) {
      this.bufferedBytes += data.length;
      if (data.length > 0) this.buffered.push(data);
      if (this.bufferedBytes > RETRY_BUFFER_BYTES) {
        this.replayable = false;
        if (up) this.buffered = [];
      }
    }
    if (up) up.conn.sendData(up, data, endStream);
    else if (this.routing && this.choice.attempts === 0 && !this.routing.decided) {
      if (!this.routing.push(data) && endStream) this.routing.end();
      if (this.routing.decided) this.attempt();
    }
  }

  private attempt(): void {
    if (this.done) return;
    const choice = this.choice.next();
    if (choice.kind === "unavailable") return this.respondError(GrpcStatus.UNAVAILABLE, choice.message);
    const endpoint = choice.endpoint;
    const pool = this.route.pools.get(endpoint);
    const ready = pool.tryAcquire();
    if (ready) return this.startOn(endpoint, ready);
    pool.acquire((result) => this.onConnection(endpoint, pool, result));
  }

  private onConnection(
    endpoint: Endpoint,
    _pool: FramesUpstreamPool,
    result: { kind: "ok"; conn: UpstreamConnection } | { kind: "failed"; reason: string },
  ): void {
    if (result.kind === "ok") return this.startOn(endpoint, result.conn);
    this.route.cluster.connectFailed(endpoint, result.reason);
    this.choice.connectFailed(endpoint, result.reason);
    this.retryOrFail(`${endpoint.address}: ${result.reason}`);
  }

  private startOn(endpoint: Endpoint, conn: UpstreamConnection): void {
    if (this.done || this.status >= 0) return;
    const noBody = this.requestEnded && this.buffered.length === 0;
    const up = conn.startStream(this, this.request, noBody);
    this.up = up;
    this.upEndpoint = endpoint;
    this.upStartedAt = performance.now();
    this.upWritten = 0;
    this.route.cluster.acquire(endpoint);
    const replay = this.buffered;
    if (!this.replayable) this.buffered = [];
    for (let i = 0; i < replay.length; i++) {
      const last = i === replay.length - 1 && this.requestEnded;
      conn.sendData(up, replay[i] as Buffer, last);
    }
    if (this.requestEnded && replay.length === 0 && !noBody) conn.sendData(up, EMPTY, true);
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

  /** Ends the client's stream with `status`: trailers-only before any response header, trailers after. */
  private respondError(status: number, message: string): void {
    if (this.done || this.status >= 0) return;
    this.status = status;
    this.cancelUpstream();
    const down = this.down;
    const encoded = encodeGrpcMessage(message);
    const block = this.responded ? statusTrailers(status, encoded) : trailersOnly(status, encoded);
    const explanation = this.choice.answerExplanation();
    if (explanation !== undefined) block.add(ROUTE_TRAILER, explanation);
    down.conn.sendHeaders(down, block, true);
  }

  /** The `fulcrum-route` trailer field, when the cluster explains its routes. */
  private routeField(): readonly [string, string] | undefined {
    return this.choice.explanation === undefined ? undefined : [ROUTE_TRAILER, this.choice.explanation];
  }

  /** Cancels the upstream stream (deadline, client cancel, an error answered here). */
  private cancelUpstream(): void {
    const up = this.up;
    if (!up) return;
    up.conn.resetStream(up, "CANCEL");
    this.releaseUpstream(this.status >= 0 ? this.status : GrpcStatus.CANCELLED);
  }

  /**
   * The upstream stream is over: its endpoint count goes down once, and `status` with the stream's
   * latency feeds the load estimate (undefined for a refused stream, which the worker never ran).
   */
  private releaseUpstream(status: number | undefined): void {
    const endpoint = this.upEndpoint;
    if (!this.up || !endpoint) return;
    this.up = undefined;
    this.upEndpoint = undefined;
    const cluster = this.route.cluster;
    cluster.release(endpoint);
    if (status !== undefined) cluster.streamFinished(endpoint, performance.now() - this.upStartedAt, status);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.deadline) clearTimeout(this.deadline);
    const up = this.up;
    const endpoint = this.upEndpoint;
    if (up && endpoint) {
      if (up.closed) {
        // Clean end: the worker's trailers were forwarded.
        this.route.cluster.streamResult(endpoint, this.status !== GrpcStatus.UNAVAILABLE);
        this.releaseUpstream(this.status);
      } else if (up.remoteClosed) {
        this.route.cluster.streamResult(endpoint, this.status !== GrpcStatus.UNAVAILABLE);
        this.cancelUpstream();
      } else {
        this.cancelUpstream();
      }
    }
    if (this.status < 0) this.status = GrpcStatus.CANCELLED;
    // Every use of the request is behind `done` (attempt, startOn) or over (its HEADERS were encoded).
    releaseRequestList(this.request);
    const choice = this.choice;
    this.owner.streamDone(this.route.cluster.name, {
      status: this.status,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      seconds: (performance.now() - this.started) / 1000,
      client: this.route.clientAddress,
      method: this.method,
      endpoint: choice.endpoint?.address,
      retries: choice.retries,
      route: choice.reason,
    });
  }
}
