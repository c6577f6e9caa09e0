/**
 * Per-request balancing of a `ModelStreamInfer` stream on the `frames` engine (stream-split.ts):
 * each lane is a FramesStream whose client side is a LaneConnection rather than a socket, so the
 * stream core runs unchanged for every request. Flow control stays exact: a request byte's window
 * goes back to the client when its lane wrote it upstream, and a response byte's window goes back
 * to its worker when the client's socket took it (written octets are matched to lanes in order).
 */
import { H2_ERROR_CODES, type H2ErrorName } from "../../h2/h2-error-codes.js";
import type { H2Settings } from "../../h2/h2-settings.js";
import { HeaderList } from "../../h2/hpack-header-list.js";
import { GrpcStatus, parseStatus } from "../grpc-status.js";
import type { StreamOwner } from "../stream-outcome.js";
import { StreamSplit, type SplitLane } from "../stream-split.js";
import { StreamEnd, type StreamHandler } from "./frames-connection.js";
import type { StreamConnection } from "./frames-stream-end.js";
import { releaseRequestList, statusTrailers, takeRequestList, trailersOnly } from "./frames-headers.js";
import { FramesStream, type FramesRoute } from "./frames-stream.js";

const EMPTY = Buffer.alloc(0);

export class FramesStreamSplit extends StreamSplit<StreamEnd> implements StreamHandler {
  /** Response octets handed to the client's connection and not yet written, by lane, in order. */
  private readonly unwrittenLanes: Array<SplitLane<StreamEnd> | undefined> = [];
  private readonly unwrittenBytes: number[] = [];

  constructor(
    private readonly down: StreamEnd,
    private readonly request: HeaderList,
    private readonly route: FramesRoute,
    owner: StreamOwner,
    endStream: boolean,
  ) {
    super(route.cluster, request.get(":path") ?? "", route.clientAddress, owner);
    down.handler = this;
    this.begin(request.get("grpc-timeout"));
    if (endStream) this.requestData(EMPTY, true);
  }

  // ---- the engine's part of the split -------------------------------------------------------------

  protected override openLane(lane: SplitLane<StreamEnd>): StreamEnd {
    const end = new StreamEnd(new LaneConnection(this, lane, this.down), this.down.id, IGNORE);
    new FramesStream(end, copyList(this.request), this.route, lane, false);
    return end;
  }

  protected override toLane(lane: SplitLane<StreamEnd>, data: Buffer, end: boolean): void {
    const handle = lane.handle as StreamEnd;
    handle.handler.onData(handle, data, end);
  }

  protected override cancelLane(lane: SplitLane<StreamEnd>): void {
    const handle = lane.handle as StreamEnd;
    handle.handler.onReset(handle, H2_ERROR_CODES.CANCEL, "peer");
  }

  protected override respondOwn(): void {
    const list = new HeaderList();
    list.add(":status", "200");
    list.add("content-type", "application/grpc");
    this.down.conn.sendHeaders(this.down, list, false);
  }

  /** The first lane's response headers become the client's (the split said they are). */
  laneResponseHeaders(list: HeaderList): void {
    this.down.conn.sendHeaders(this.down, list, false, "response");
  }

  protected override toClient(data: Buffer, lane: SplitLane<StreamEnd> | undefined): void {
    this.unwrittenLanes.push(lane);
    this.unwrittenBytes.push(data.length);
    this.down.conn.sendData(this.down, data, false);
  }

  protected override endClient(status: number, message: string): void {
    const block = this.headersSent ? statusTrailers(status, message) : trailersOnly(status, message);
    this.down.conn.sendHeaders(this.down, block, true);
  }

  /** Also a lane's: its request bytes were written upstream, so the client may send that many more. */
  override giveBackRequest(n: number): void {
    this.down.conn.consumed(this.down, n);
  }

  // ---- StreamHandler: the client's stream ---------------------------------------------------------

  onHeaders(end: StreamEnd, _list: HeaderList, _endStream: boolean): void {
    // Request trailers (rare in gRPC) end the request; a lane's request has none of its own.
    if (end === this.down) this.requestData(EMPTY, true);
  }

  onData(end: StreamEnd, data: Buffer, endStream: boolean): void {
    if (end !== this.down) return end.conn.consumed(end, data.length);
    this.requestData(data, endStream);
  }

  onWritten(end: StreamEnd, n: number): void {
    if (end !== this.down) return;
    const lanes = this.unwrittenLanes;
    const bytes = this.unwrittenBytes;
    while (n > 0 && bytes.length > 0) {
      const k = Math.min(n, bytes[0] as number);
      n -= k;
      const lane = lanes[0];
      if (k === bytes[0]) {
        lanes.shift();
        bytes.shift();
      } else {
        bytes[0] = (bytes[0] as number) - k;
      }
      // The lane's stream gives its worker the window back, as for a client of its own.
      const handle = lane?.handle;
      if (handle !== undefined && !lane?.over) handle.handler.onWritten(handle, k);
    }
  }

  onLocalEnd(end: StreamEnd): void {
    if (end !== this.down) return;
    end.conn.stopRequest(end);
    this.finish();
  }

  onReset(end: StreamEnd, _code: number): void {
    if (end !== this.down) return;
    this.finish();
  }

  protected override finished(): void {
    // Once, whichever end came first: a list given back twice would serve two streams.
    releaseRequestList(this.request);
  }
}

/**
 * The client side of one lane, as its FramesStream sees it: what the stream sends its client goes
 * to the split; what it gives back goes to the client's real stream.
 */
class LaneConnection implements StreamConnection {
  readonly remoteSettings: H2Settings;
  readonly localStreamWindow: number;

  constructor(
    private readonly split: FramesStreamSplit,
    private readonly lane: SplitLane<StreamEnd>,
    down: StreamEnd,
  ) {
    this.remoteSettings = down.conn.remoteSettings;
    this.localStreamWindow = down.conn.localStreamWindow;
  }

  sendHeaders(end: StreamEnd, list: HeaderList, endStream: boolean): void {
    const split = this.split;
    if (!endStream) {
      if (split.laneHeaders()) split.laneResponseHeaders(list);
      return;
    }
    // Trailers, a trailers-only answer, or Fulcrum's own status: the lane's response is over.
    const status = list.get("grpc-status");
    split.laneEnded(
      this.lane,
      status === undefined ? GrpcStatus.INTERNAL : parseStatus(status),
      list.get("grpc-message") ?? "",
    );
    // Its stream hears of its end after this call returns, as from a connection's send queue.
    queueMicrotask(() => end.handler.onLocalEnd(end));
  }

  sendData(_end: StreamEnd, data: Buffer): void {
    this.split.laneData(this.lane, data);
  }

  consumed(_end: StreamEnd, n: number): void {
    this.split.giveBackRequest(n);
  }

  resetStream(_end: StreamEnd, _code: H2ErrorName): void {}

  stopRequest(_end: StreamEnd): void {}

  streamError(_end: StreamEnd, _code: H2ErrorName): void {}
}

/** The handler a lane's end has until its FramesStream takes it. */
const IGNORE: StreamHandler = {
  onHeaders: () => undefined,
  onData: () => undefined,
  onReset: () => undefined,
  onWritten: () => undefined,
  onLocalEnd: () => undefined,
};

/** A copy of the request's header list for one lane (each stream releases its own). */
function copyList(from: HeaderList): HeaderList {
  const out = takeRequestList();
  for (let i = 0; i < from.length; i++) out.add(from.name(i), from.value(i), from.neverIndexed(i) ? 1 : 0);
  return out;
}
