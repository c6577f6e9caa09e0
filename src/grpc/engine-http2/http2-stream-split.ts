/**
 * Per-request balancing of a `ModelStreamInfer` stream on the `http2` engine (stream-split.ts):
 * each lane is a GrpcStreamProxy whose client stream is a LaneStream rather than a node:http2
 * stream, so the stream core runs unchanged for every request. Backpressure as node:http2 streams
 * have it: a lane that cannot write upstream pauses the client's stream; a lane whose bytes wait
 * (the client's stream is full, or inside another lane's message) pauses its upstream stream until
 * they leave.
 */
import { EventEmitter } from "node:events";
import {
  constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
  type ServerStreamResponseOptions,
} from "node:http2";
import { GrpcStatus, parseStatus } from "../grpc-status.js";
import type { StreamOwner } from "../stream-outcome.js";
import { StreamSplit, type SplitLane } from "../stream-split.js";
import {
  ENDS_RESPONSE,
  GrpcStreamProxy,
  WAITS_FOR_TRAILERS,
  headerValue,
  type ClientStream,
  type StreamRoute,
} from "./grpc-stream-proxy.js";

const EMPTY = Buffer.alloc(0);

export class Http2StreamSplit extends StreamSplit<LaneStream> {
  private trailers: OutgoingHttpHeaders | undefined;
  /** Lanes that paused the client's stream (their upstream stream is full). */
  private pausing = 0;
  /** Requests wait for a lane to end (MAX_LANES). */
  private waitingForLane = false;
  /** The client's stream buffers more than its high-water mark: lanes wait for its 'drain'. */
  private backed = false;

  constructor(
    private readonly down: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly route: StreamRoute,
    owner: StreamOwner,
  ) {
    super(route.cluster, headerValue(headers[":path"]) ?? "", route.clientAddress, owner);
    down.on("data", (chunk: Buffer) => this.requestData(chunk, false));
    down.once("end", () => this.requestData(EMPTY, true));
    down.once("close", () => this.finish());
    down.on("error", noop);
    this.begin(headerValue(headers["grpc-timeout"]));
  }

  // ---- the engine's part of the split -------------------------------------------------------------

  protected override openLane(lane: SplitLane<LaneStream>): LaneStream {
    const stream = new LaneStream(this, lane);
    new GrpcStreamProxy(stream, this.headers, this.route, lane);
    return stream;
  }

  protected override toLane(lane: SplitLane<LaneStream>, data: Buffer, end: boolean): void {
    (lane.handle as LaneStream).request(data, end);
  }

  protected override cancelLane(lane: SplitLane<LaneStream>): void {
    (lane.handle as LaneStream).cancel();
  }

  protected override respondOwn(): void {
    this.respondWith({ ":status": 200, "content-type": "application/grpc" });
  }

  /** The first lane's response headers become the client's (the split said they are). */
  respondWith(headers: OutgoingHttpHeaders): void {
    const down = this.down;
    if (down.closed || down.destroyed) return;
    down.once("wantTrailers", () => {
      down.sendTrailers(this.trailers ?? { "grpc-status": String(GrpcStatus.INTERNAL) });
      this.stopRequest();
    });
    down.respond(headers, WAITS_FOR_TRAILERS);
  }

  protected override toClient(data: Buffer): void {
    const down = this.down;
    if (down.closed || down.destroyed) return;
    if (!down.write(data) && !this.backed) {
      this.backed = true;
      down.once("drain", () => {
        this.backed = false;
        this.wakeLanes();
      });
    }
  }

  protected override endClient(status: number, message: string): void {
    const down = this.down;
    if (down.closed || down.destroyed) return;
    const fields = { "grpc-status": String(status), "grpc-message": message };
    if (!this.headersSent) {
      down.respond({ ":status": 200, "content-type": "application/grpc", ...fields }, ENDS_RESPONSE);
      this.stopRequest();
      return;
    }
    this.trailers = fields;
    if (!down.writableEnded) down.end();
  }

  protected override giveBackRequest(): void {
    // node:http2 gives the window back as the bytes are read.
  }

  protected override laneFlushed(lane: SplitLane<LaneStream>): void {
    if (!this.backed) lane.handle?.wake();
  }

  /** True when a lane's next bytes would wait: it pauses its upstream stream until 'drain'. */
  laneMustWait(lane: SplitLane<LaneStream>): boolean {
    return this.backed || lane.pending.length > 0;
  }

  protected override requestParked(parked: boolean): void {
    this.waitingForLane = parked;
    this.applyPause();
  }

  pauseClient(): void {
    this.pausing++;
    this.applyPause();
  }

  resumeClient(): void {
    this.pausing--;
    this.applyPause();
  }

  /** The client's stream is read while no lane's upstream stream is full and no request waits for a lane. */
  private applyPause(): void {
    const down = this.down;
    if (down.destroyed) return;
    if (this.pausing > 0 || this.waitingForLane) down.pause();
    else if (down.isPaused()) down.resume();
  }

  private wakeLanes(): void {
    for (const lane of this.lanes()) if (lane.pending.length === 0) lane.handle?.wake();
  }

  /** As GrpcStreamProxy does: a client still sending after its status is told to stop. */
  private stopRequest(): void {
    const down = this.down;
    if (down.destroyed || down.state.remoteClose !== 0) return;
    setImmediate(() => {
      if (!down.destroyed) down.close(constants.NGHTTP2_NO_ERROR);
    });
  }
}

/**
 * The client stream of one lane, as its GrpcStreamProxy sees it: the request bytes the split hands
 * it, and what the proxy answers going to the split.
 */
class LaneStream extends EventEmitter implements ClientStream {
  closed = false;
  destroyed = false;
  headersSent = false;
  writableEnded = false;
  readonly state = { remoteClose: 0 };
  private paused = false;
  private waiting = false;
  private responseEnded = false;

  constructor(
    private readonly split: Http2StreamSplit,
    private readonly lane: SplitLane<LaneStream>,
  ) {
    super();
  }

  // ---- the split's side ---------------------------------------------------------------------------

  request(data: Buffer, end: boolean): void {
    if (this.closed) return;
    if (data.length > 0) this.emit("data", data);
    if (!end) return;
    this.state.remoteClose = 1;
    this.emit("end");
    this.closeWhenDone();
  }

  cancel(): void {
    this.closeNow();
  }

  /** The lane's bytes left: the proxy may read its upstream stream again. */
  wake(): void {
    if (!this.waiting) return;
    this.waiting = false;
    this.emit("drain");
  }

  // ---- ClientStream: the proxy's side -------------------------------------------------------------

  isPaused(): boolean {
    return this.paused;
  }

  pause(): this {
    if (!this.paused) {
      this.paused = true;
      this.split.pauseClient();
    }
    return this;
  }

  resume(): this {
    if (this.paused) {
      this.paused = false;
      this.split.resumeClient();
    }
    return this;
  }

  respond(headers: OutgoingHttpHeaders, options: ServerStreamResponseOptions): void {
    this.headersSent = true;
    if (options.endStream === true) {
      // Trailers-only: the worker's status, or Fulcrum's own answer.
      this.writableEnded = true;
      return this.responseDone(headers);
    }
    if (this.split.laneHeaders()) this.split.respondWith(headers);
  }

  write(chunk: Buffer): boolean {
    if (this.closed) return false;
    this.split.laneData(this.lane, chunk);
    if (!this.split.laneMustWait(this.lane)) return true;
    this.waiting = true;
    return false;
  }

  end(): this {
    if (this.writableEnded) return this;
    this.writableEnded = true;
    // As node:http2 asks for the trailers once the last DATA left.
    queueMicrotask(() => this.emit("wantTrailers"));
    return this;
  }

  sendTrailers(headers: OutgoingHttpHeaders): void {
    this.responseDone(headers);
  }

  close(): void {
    this.closeNow();
  }

  private responseDone(fields: OutgoingHttpHeaders): void {
    if (this.responseEnded) return;
    this.responseEnded = true;
    const status = fields["grpc-status"];
    const message = fields["grpc-message"];
    this.split.laneEnded(
      this.lane,
      status === undefined ? GrpcStatus.INTERNAL : parseStatus(String(status)),
      typeof message === "string" ? message : "",
    );
    this.closeWhenDone();
  }

  private closeWhenDone(): void {
    if (this.responseEnded && this.state.remoteClose !== 0) queueMicrotask(() => this.closeNow());
  }

  private closeNow(): void {
    if (this.closed) return;
    this.closed = true;
    this.destroyed = true;
    if (this.paused) this.resume();
    this.emit("close");
  }
}

function noop(): void {}
