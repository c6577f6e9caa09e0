/**
 * One gRPC stream through the `frames` engine: the stream core (proxied-stream.ts) on this engine's
 * connections. It forwards header blocks, DATA (views of the received bytes, never copied) and
 * trailers both ways, and gives each side's flow-control window back only as the other side takes
 * the bytes, so a stream holds at most its window of DATA in Fulcrum.
 */
import type { Endpoint } from "../../balancer/endpoint-set.js";
import { H2_ERROR_CODES } from "../../h2/h2-error-codes.js";
import { HeaderList } from "../../h2/hpack-header-list.js";
import { GrpcStatus } from "../grpc-status.js";
import { ROUTE_TRAILER } from "../inference-routing.js";
import { ProxiedStream, type StreamRouteInputs } from "../proxied-stream.js";
import type { StreamOwner } from "../stream-outcome.js";
import type { ResetCause, StreamEnd, StreamHandler } from "./frames-connection.js";
import { forwardedFields, releaseRequestList, statusTrailers, trailersOnly } from "./frames-headers.js";
import type { FramesClusterPools, ConnectionResult } from "./frames-upstream-pool.js";
import type { UpstreamConnection } from "./frames-upstream.js";

const EMPTY = Buffer.alloc(0);

export interface FramesRoute extends StreamRouteInputs {
  readonly pools: FramesClusterPools;
  /** `listeners[].stream_balancing: per_request`: a `ModelStreamInfer` stream is split (stream-split.ts). */
  readonly perRequest: boolean;
}

export class FramesStream extends ProxiedStream<StreamEnd> implements StreamHandler {
  /** Request octets the current upstream stream wrote, and octets given back to the client. */
  private upWritten = 0;
  private acked = 0;
  /** Request octets given back to the client in all (written upstream, or taken by nothing). */
  private returned = 0;
  /** Response octets given back to the worker (they reached the client's socket). */
  private responseReturned = 0;
  /** The client's request trailers, filtered (header-rules.ts), when it sent any. */
  private requestTrailers: HeaderList | undefined;

  constructor(
    private readonly down: StreamEnd,
    private readonly request: HeaderList,
    private readonly route: FramesRoute,
    owner: StreamOwner,
    endStream: boolean,
  ) {
    super(route, request.get(":path"), owner);
    down.handler = this;
    this.begin(request.get("grpc-timeout"), endStream);
  }

  // ---- the engine's part of the core --------------------------------------------------------------

  protected override openOn(endpoint: Endpoint): void {
    const pool = this.route.pools.get(endpoint);
    const ready = pool.tryAcquire();
    if (ready) return this.startOn(endpoint, ready);
    pool.acquire((result) => this.onConnection(endpoint, result));
  }

  private onConnection(endpoint: Endpoint, result: ConnectionResult): void {
    if (result.kind === "failed") return this.connectFailed(endpoint, result.reason);
    this.startOn(endpoint, result.conn);
  }

  private startOn(endpoint: Endpoint, conn: UpstreamConnection): void {
    if (!this.connecting) return;
    const noBody = this.headersEndRequest;
    this.up = conn.startStream(this, this.request, noBody);
    this.upWritten = 0;
    this.opened(endpoint, noBody);
  }

  protected override sendUp(up: StreamEnd, data: Buffer, end: boolean): void {
    const trailers = end ? this.requestTrailers : undefined;
    if (trailers === undefined) return up.conn.sendData(up, data, end);
    if (data.length > 0) up.conn.sendData(up, data, false);
    up.conn.sendHeaders(up, trailers, true);
  }

  protected override abortUp(up: StreamEnd): void {
    up.conn.resetStream(up, "CANCEL");
    // Response octets forwarded but never written (the client reset with DATA queued, or Fulcrum
    // answered mid-response) go back to the worker's connection, whose window would shrink for good.
    const held = this.bytesOut - this.responseReturned;
    if (held > 0) {
      this.responseReturned += held;
      up.conn.consumed(up, held);
    }
  }

  protected override answerClient(
    status: number,
    message: string,
    explanation: string | undefined,
    afterHeaders: boolean,
  ): void {
    const block = afterHeaders ? statusTrailers(status, message) : trailersOnly(status, message);
    if (explanation !== undefined) block.add(ROUTE_TRAILER, explanation);
    this.down.conn.sendHeaders(this.down, block, true);
  }

  protected override finished(): void {
    // Request octets still held (answered before they went upstream) go back, or the connection's
    // window would shrink by them for good.
    const held = this.bytesIn - this.returned;
    if (held > 0) this.giveBack(held);
    // Every use of the request is over: attempts end with the stream, and its HEADERS were encoded.
    releaseRequestList(this.request);
  }

  // ---- StreamHandler: both ends report here -------------------------------------------------------

  onHeaders(end: StreamEnd, list: HeaderList, endStream: boolean): void {
    if (end === this.down) {
      // Request trailers (rare in gRPC): they end the request, on this attempt and on any retry.
      const trailers = new HeaderList();
      forwardedFields(list, trailers, false);
      this.requestTrailers = trailers;
      this.requestHasTrailers = true;
      this.requestData(EMPTY, true);
      return;
    }
    if (end !== this.up) return;
    if (this.phase === "forwarded") {
      const code = list.get(":status");
      if (code !== undefined && code.charCodeAt(0) === 0x31 /* 1 */) {
        // Informational (1xx): the real response follows, but the worker has the request now.
        this.replayable = false;
        this.buffered = [];
        return;
      }
      if (!this.responseHeaders(endStream, endStream ? list.get("grpc-status") : undefined)) return;
      const note = endStream ? this.routeField() : undefined;
      this.down.conn.sendHeaders(this.down, list, endStream, "response", note);
      return;
    }
    // Trailers: the connection let through only a final block without pseudo-headers (RFC 9113 §8.1).
    if (!this.responseTrailers(list.get("grpc-status"))) return;
    this.down.conn.sendHeaders(this.down, list, true, "trailers", this.routeField());
  }

  onData(end: StreamEnd, data: Buffer, endStream: boolean): void {
    if (end === this.down) {
      if (!this.requestData(data, endStream)) this.giveBack(data.length);
      return;
    }
    if (end !== this.up || this.phase !== "responding") {
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
      if (up) {
        this.responseReturned += n;
        up.conn.consumed(up, n);
      }
      return;
    }
    if (end !== this.up) return;
    // Request octets reached the worker's socket; replays of bytes given back before count once.
    this.upWritten += n;
    if (this.upWritten > this.acked) {
      this.giveBack(this.upWritten - this.acked);
      this.acked = this.upWritten;
    }
  }

  private giveBack(n: number): void {
    this.returned += n;
    this.down.conn.consumed(this.down, n);
  }

  onLocalEnd(end: StreamEnd): void {
    if (end !== this.down) return;
    // The response is complete. A client still sending is told to stop (RFC 9113 §8.1).
    end.conn.stopRequest(end);
    this.finish();
  }

  onReset(end: StreamEnd, code: number, why: ResetCause): void {
    // The client cancelled (or its connection went): the core cancels upstream.
    if (end === this.down) return this.finish();
    if (end !== this.up) return;
    const refused = why === "goaway" || code === H2_ERROR_CODES.REFUSED_STREAM;
    this.upstreamFailed(refused ? "refused" : why === "connection" ? "lost" : "reset", code);
  }

  /** The `fulcrum-route` trailer field, when the cluster explains its routes. */
  private routeField(): readonly [string, string] | undefined {
    const explanation = this.choice.explanation;
    return explanation === undefined ? undefined : [ROUTE_TRAILER, explanation];
  }
}
