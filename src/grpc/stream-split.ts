/**
 * Per-request balancing inside one Triton `ModelStreamInfer` stream (`listeners[].stream_balancing:
 * per_request`), the same for both engines. One long-lived bidi stream would otherwise pin every
 * request of a client to one worker; here each request message becomes a *lane*: an upstream
 * stream of its own, proxied by the engine's stream core (so picked on its own by the policy, model
 * readiness, sequence pins and prefix affinity, queued, capped and retried like any stream), whose
 * response messages are merged back onto the client's stream in arrival order, whole messages at a
 * time (a message of one lane is never cut by another's). Triton's rules kept:
 *
 * - the requests of one `sequence_id` share one lane, sent in order on one upstream stream, so
 *   they reach one worker in order; a lane of a single request ends its request after it;
 * - `triton_final_response` and in-band `error_message` responses pass through untouched; a lane
 *   that ends with a status other than OK (the worker's, or Fulcrum's own: no endpoint, shed,
 *   deadline) becomes an in-band `error_message` response, as Triton reports a failed request
 *   inside a stream, and the stream goes on;
 * - a request without `id` gets its responses like any other (nothing is matched by id);
 * - the client's cancel (or deadline) cancels every lane; the client's stream ends with OK once it
 *   half-closed and every lane has ended.
 *
 * Only message boundaries are read (grpc-message-framer.ts) and, of each request, the head the
 * inference peeker reads for its sequence: no message is decoded or copied.
 */
import { performance } from "node:perf_hooks";
import { sizeBytes } from "../config/config-units.js";
import type { UpstreamCluster } from "../cluster/upstream-cluster.js";
import { GrpcMessageFramer } from "./grpc-message-framer.js";
import { GrpcStatus, statusName } from "./grpc-status.js";
import { parseGrpcTimeout } from "./grpc-timeout.js";
import { RequestPeeker } from "./inference-peek.js";
import type { RouteReason } from "./inference-routing.js";
import type { StreamOutcome, StreamOwner } from "./stream-outcome.js";

/** The only method split per request: Triton's bidi inference stream. */
export const SPLIT_METHOD = "/inference.GRPCInferenceService/ModelStreamInfer";

const EMPTY = Buffer.alloc(0);
/**
 * Lanes one client stream may have at once. Past it the client's next requests wait unread (their
 * flow-control window is not given back), so one stream cannot make unbounded upstream streams: the
 * same bound as a client opening streams of its own on one connection (frames: 1000).
 */
export const MAX_LANES = 100;
const CUT_SHORT = "a worker's response ended inside a message";

/** Where the split is: running, its status sent to the client, or over and reported. */
export type SplitPhase = "open" | "answered" | "done";

const MOVES: Readonly<Record<SplitPhase, readonly SplitPhase[]>> = {
  open: ["answered", "done"],
  answered: ["done"],
  done: [],
};

/** One lane: the upstream stream of one request, or of one sequence's requests. */
export class SplitLane<H> implements StreamOwner {
  /** The engine's proxied stream of this lane, set right after it is made. */
  handle: H | undefined;
  /** Where the lane's response is, message by message. */
  readonly responses = new GrpcMessageFramer();
  /** Response bytes held (views) while another lane's message is being written to the client. */
  pending: Buffer[] = [];
  /** Fulcrum's in-band error for this lane, held like `pending` and written after it. */
  errorTail: Buffer | undefined;
  /** The lane's request is complete (its end was handed to the lane). */
  requestEnded = false;
  /** The lane's status arrived (the worker's trailers, or Fulcrum's own answer). */
  answered = false;
  /** Its proxied stream is over and reported. */
  over = false;

  constructor(
    private readonly split: StreamSplit<H>,
    /** The Triton sequence whose requests all take this lane; undefined for a single request. */
    readonly sequence: string | undefined,
  ) {}

  /** The lane's proxied stream reports its outcome here (the split is its owner, not the listener). */
  streamDone(_cluster: string, outcome: StreamOutcome): void {
    this.split.laneOver(this, outcome);
  }
}

/** The request message being read: its head is peeked for the sequence before a lane is chosen. */
interface RequestMessage<H> {
  readonly peeker: RequestPeeker;
  lane: SplitLane<H> | undefined;
  /** Pieces read before the lane was chosen (views). */
  readonly held: Buffer[];
  heldBytes: number;
}

export abstract class StreamSplit<H> {
  protected phase: SplitPhase = "open";
  /** The client's response headers went out. */
  protected headersSent = false;
  private readonly requests = new GrpcMessageFramer();
  private message: RequestMessage<H> | undefined;
  private requestEnded = false;
  /** Request bytes not cut yet (views), and whether the request ended after them: MAX_LANES reached. */
  private backlog: Buffer[] = [];
  private backlogEnd = false;
  /** Lanes whose proxied stream is not over yet. */
  private readonly live = new Set<SplitLane<H>>();
  private readonly bySequence = new Map<string, SplitLane<H>>();
  /** The lane whose message the client's stream is in the middle of, if any. */
  private writer: SplitLane<H> | undefined;
  /** Lanes with response bytes held, in the order they were held. */
  private readonly held: SplitLane<H>[] = [];
  private readonly peekMaxBytes: number;
  private deadline: NodeJS.Timeout | undefined;
  private readonly started = performance.now();
  /** The client's status, once sent. */
  private status: number | undefined;
  private bytesIn = 0;
  private bytesOut = 0;
  private retries = 0;
  private lastEndpoint: string | undefined;
  private firstRoute: RouteReason | undefined;

  protected constructor(
    protected readonly cluster: UpstreamCluster,
    private readonly method: string,
    private readonly clientAddress: string | undefined,
    private readonly owner: StreamOwner,
  ) {
    this.peekMaxBytes = sizeBytes(cluster.config.peek_max_bytes);
  }

  // ---- what an engine supplies --------------------------------------------------------------------

  /** Makes the lane's proxied stream (owner: the lane); its request bytes follow with `toLane`. */
  protected abstract openLane(lane: SplitLane<H>): H;
  /** Hands request bytes to the lane's stream as if its client sent them; `end` ends its request. */
  protected abstract toLane(lane: SplitLane<H>, data: Buffer, end: boolean): void;
  /** The client went: the lane's stream is cancelled as if its client reset it. */
  protected abstract cancelLane(lane: SplitLane<H>): void;
  /** Response headers of Fulcrum's own (no lane's came before the first bytes to send). */
  protected abstract respondOwn(): void;
  /** Whole response messages to the client; `lane` undefined for bytes of Fulcrum's own. */
  protected abstract toClient(data: Buffer, lane: SplitLane<H> | undefined): void;
  /** Ends the client's stream with `status`: trailers, or trailers-only before any header. */
  protected abstract endClient(status: number, message: string): void;
  /** Request bytes a lane wrote upstream, or that no lane will take: give their window back. */
  protected abstract giveBackRequest(n: number): void;
  /** The lane's held response bytes went to the client (it may read more). */
  protected laneFlushed(_lane: SplitLane<H>): void {}
  /** Request bytes wait unread for a lane to end (MAX_LANES), or no longer. */
  protected requestParked(_parked: boolean): void {}
  /** The outcome was reported: nothing of the client's stream is used any more (called once). */
  protected finished(): void {}

  /** The lanes whose proxied stream is not over yet. */
  protected lanes(): Iterable<SplitLane<H>> {
    return this.live;
  }

  // ---- the client's side --------------------------------------------------------------------------

  /** The last step of an engine's constructor: arms the client's deadline. */
  protected begin(timeout: string | undefined): void {
    const ms = parseGrpcTimeout(timeout);
    if (ms !== undefined) {
      this.deadline = setTimeout(() => this.fail(GrpcStatus.DEADLINE_EXCEEDED, "deadline exceeded"), ms);
    }
  }

  protected moveTo(next: SplitPhase): boolean {
    if (!MOVES[this.phase].includes(next)) return false;
    this.phase = next;
    return true;
  }

  /** Request DATA from the client, cut at message boundaries into lanes. */
  protected requestData(data: Buffer, end: boolean): void {
    this.bytesIn += data.length;
    if (this.phase !== "open") {
      this.giveBackRequest(data.length);
      return;
    }
    if (this.parked) {
      if (data.length > 0) this.backlog.push(data);
      if (end) this.backlogEnd = true;
      return;
    }
    this.cut(data, end);
  }

  /** True while request bytes wait for a lane to end (MAX_LANES). */
  private get parked(): boolean {
    return this.backlog.length > 0 || this.backlogEnd;
  }

  private cut(data: Buffer, end: boolean): void {
    const n = data.length;
    let i = 0;
    while (i < n) {
      const framer = this.requests;
      if (framer.atBoundary) {
        if (this.live.size >= MAX_LANES) {
          this.backlog.push(i === 0 ? data : data.subarray(i));
          this.backlogEnd = end;
          return this.requestParked(true);
        }
        this.message = this.newMessage();
      }
      const j = framer.advance(data, i);
      this.requestPiece(i === 0 && j === n ? data : data.subarray(i, j), framer.atBoundary);
      i = j;
      if (this.phase !== "open") return this.giveBackRequest(n - i);
    }
    if (end) this.clientHalfClosed();
  }

  /** A lane ended: the requests waiting for one go on, as far as the bound allows. */
  private unpark(): void {
    if (!this.parked || this.phase !== "open" || this.live.size >= MAX_LANES) return;
    const chunks = this.backlog;
    const end = this.backlogEnd;
    this.backlog = [];
    this.backlogEnd = false;
    for (let k = 0; k < chunks.length; k++) {
      if (this.phase !== "open") {
        for (let r = k; r < chunks.length; r++) this.giveBackRequest((chunks[r] as Buffer).length);
        return;
      }
      if (this.parked) {
        // Parked again: the rest waits behind what is there.
        for (let r = k; r < chunks.length; r++) this.backlog.push(chunks[r] as Buffer);
        this.backlogEnd = end;
        return;
      }
      this.cut(chunks[k] as Buffer, end && k === chunks.length - 1);
    }
    if (chunks.length === 0 && end) this.cut(EMPTY, true);
    if (!this.parked) this.requestParked(false);
  }

  private newMessage(): RequestMessage<H> {
    const peeker = new RequestPeeker("triton_stream_infer", this.peekMaxBytes);
    return { peeker, lane: undefined, held: [], heldBytes: 0 };
  }

  /** A piece of the current request message; `complete` when it ends the message. */
  private requestPiece(piece: Buffer, complete: boolean): void {
    const message = this.message as RequestMessage<H>;
    if (complete) this.message = undefined;
    const lane = message.lane;
    if (lane !== undefined) return this.toLaneOrDrop(lane, piece, complete && lane.sequence === undefined);
    message.held.push(piece);
    message.heldBytes += piece.length;
    const outcome = message.peeker.push(piece);
    if (outcome.kind === "need_more" && !complete) return;
    const sequence = outcome.kind === "done" ? outcome.result.sequence?.key : undefined;
    this.routeMessage(message, sequence, complete);
  }

  /** The head was read: the request takes its sequence's lane, or a lane of its own. */
  private routeMessage(message: RequestMessage<H>, sequence: string | undefined, complete: boolean): void {
    if (this.phase !== "open") return this.giveBackRequest(message.heldBytes);
    let lane = sequence === undefined ? undefined : this.bySequence.get(sequence);
    // An answered lane left bySequence: the sequence's next request takes a new one.
    if (lane === undefined) {
      lane = new SplitLane(this, sequence);
      this.live.add(lane);
      if (sequence !== undefined) this.bySequence.set(sequence, lane);
      lane.handle = this.openLane(lane);
    }
    message.lane = lane;
    const held = message.held;
    const last = held.length - 1;
    for (let k = 0; k <= last; k++) {
      this.toLaneOrDrop(lane, held[k] as Buffer, k === last && complete && sequence === undefined);
    }
    held.length = 0;
  }

  private toLaneOrDrop(lane: SplitLane<H>, data: Buffer, end: boolean): void {
    if (lane.requestEnded || lane.over) return this.giveBackRequest(data.length);
    if (end) lane.requestEnded = true;
    this.toLane(lane, data, end);
  }

  /** The client sent its last request: every lane's request ends; the split ends when they do. */
  private clientHalfClosed(): void {
    this.requestEnded = true;
    const message = this.message;
    this.message = undefined;
    if (message !== undefined && message.lane === undefined && message.held.length > 0) {
      // The request ended inside a message's head: the worker answers the truncated message.
      this.routeMessage(message, undefined, true);
    }
    for (const lane of this.live) {
      if (!lane.requestEnded) {
        lane.requestEnded = true;
        this.toLane(lane, EMPTY, true);
      }
    }
    this.checkDone();
  }

  // ---- the lanes' side ----------------------------------------------------------------------------

  /** The lane's response headers arrived: true when they are the client's (the first to come). */
  laneHeaders(): boolean {
    if (this.headersSent || this.phase !== "open") return false;
    this.headersSent = true;
    return true;
  }

  /** Response DATA of a lane: written through unless another lane is inside a message. */
  laneData(lane: SplitLane<H>, data: Buffer): void {
    if (this.phase !== "open") return;
    const framer = lane.responses;
    for (let i = 0; i < data.length;) i = framer.advance(data, i);
    const writer = this.writer;
    if (writer !== undefined && writer !== lane) {
      if (lane.pending.length === 0) this.held.push(lane);
      lane.pending.push(data);
      return;
    }
    this.write(lane, data);
    this.writer = framer.atBoundary ? undefined : lane;
    if (this.writer === undefined) this.flushHeld();
  }

  /** Writes to the client bytes of `from`'s worker, or of Fulcrum's own (`from` undefined). */
  private write(from: SplitLane<H> | undefined, data: Buffer): void {
    if (!this.headersSent) {
      this.headersSent = true;
      this.respondOwn();
    }
    this.bytesOut += data.length;
    this.toClient(data, from);
  }

  /**
   * The client's stream is between messages: held lanes go in the order they were held. A lane's
   * held bytes go out whole, so after them the client is where the lane's framer is.
   */
  private flushHeld(): void {
    const held = this.held;
    while (this.writer === undefined && held.length > 0 && this.phase === "open") {
      const lane = held.shift() as SplitLane<H>;
      const pending = lane.pending;
      lane.pending = [];
      for (const data of pending) this.write(lane, data);
      const tail = lane.errorTail;
      lane.errorTail = undefined;
      if (tail !== undefined) this.write(undefined, tail);
      else if (!lane.responses.atBoundary) this.writer = lane;
      this.laneFlushed(lane);
    }
    this.checkDone();
  }

  /**
   * The lane's response ended with `status` (the worker's trailers, or Fulcrum's own answer). A
   * failure becomes the lane's last message: an in-band `error_message` response.
   */
  laneEnded(lane: SplitLane<H>, status: number, message: string): void {
    if (lane.answered) return;
    lane.answered = true;
    this.forgetSequence(lane);
    if (this.phase !== "open") return;
    // A message cut short (the worker reset or lost mid-message) cannot be mended on the client's
    // stream, which may hold part of it already.
    if (!lane.responses.atBoundary) return this.fail(GrpcStatus.INTERNAL, CUT_SHORT);
    if (status === GrpcStatus.OK) return;
    // Fulcrum's own bytes (no worker's window is owed for them), after whatever the lane has held.
    const error = inBandError(`${statusName(status)}: ${decodeGrpcMessage(message)}`);
    if (this.writer === undefined) return this.write(undefined, error);
    if (lane.pending.length === 0) this.held.push(lane);
    lane.errorTail = error;
  }

  private forgetSequence(lane: SplitLane<H>): void {
    const sequence = lane.sequence;
    if (sequence !== undefined && this.bySequence.get(sequence) === lane) this.bySequence.delete(sequence);
  }

  /** The lane's proxied stream is over (the split is its owner). */
  laneOver(lane: SplitLane<H>, outcome: StreamOutcome): void {
    if (lane.over) return;
    lane.over = true;
    this.live.delete(lane);
    this.forgetSequence(lane);
    this.retries += outcome.retries;
    if (outcome.endpoint !== undefined) this.lastEndpoint = outcome.endpoint;
    this.firstRoute ??= outcome.route;
    if (this.phase === "open" && !lane.responses.atBoundary) return this.fail(GrpcStatus.INTERNAL, CUT_SHORT);
    this.unpark();
    this.checkDone();
  }

  /** Ends the client's stream with OK once it half-closed and every lane ended and was written. */
  private checkDone(): void {
    if (this.phase !== "open" || !this.requestEnded || this.live.size > 0) return;
    if (this.writer !== undefined || this.held.length > 0) return;
    this.answer(GrpcStatus.OK, "");
  }

  /** Ends the client's stream with Fulcrum's status and cancels every lane. */
  protected fail(status: number, message: string): void {
    if (this.phase !== "open") return;
    this.answer(status, message);
    this.cancelLanes();
  }

  private answer(status: number, message: string): void {
    if (!this.moveTo("answered")) return;
    this.status = status;
    this.clearDeadline();
    for (const lane of this.held) {
      lane.pending = [];
      lane.errorTail = undefined;
    }
    this.held.length = 0;
    this.endClient(status, message);
  }

  private cancelLanes(): void {
    for (const lane of [...this.live]) this.cancelLane(lane);
  }

  private clearDeadline(): void {
    if (this.deadline !== undefined) clearTimeout(this.deadline);
    this.deadline = undefined;
  }

  /**
   * The client's stream is over (its status sent, or it was reset or its connection lost): lanes
   * still running are cancelled, and the outcome is reported once.
   */
  protected finish(): void {
    const status = this.status ?? GrpcStatus.CANCELLED;
    if (!this.moveTo("done")) return;
    this.clearDeadline();
    this.cancelLanes();
    // Bytes no lane took: the head of a request not routed yet, and requests waiting for a lane.
    let unread = this.message?.lane === undefined ? (this.message?.heldBytes ?? 0) : 0;
    for (const chunk of this.backlog) unread += chunk.length;
    this.message = undefined;
    this.backlog = [];
    if (unread > 0) this.giveBackRequest(unread);
    this.finished();
    this.owner.streamDone(this.cluster.name, {
      status,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      seconds: (performance.now() - this.started) / 1000,
      client: this.clientAddress,
      method: this.method,
      endpoint: this.lastEndpoint,
      retries: this.retries,
      route: this.firstRoute,
    });
  }
}

/**
 * A `ModelStreamInferResponse` carrying only `error_message` (field 1), framed as a gRPC message:
 * how Triton reports a failed request inside a stream.
 */
export function inBandError(text: string): Buffer {
  const body = Buffer.from(text, "utf8");
  let lengthBytes = 1;
  for (let v = body.length; v >= 0x80; v = Math.floor(v / 128)) lengthBytes++;
  const messageLength = 1 + lengthBytes + body.length;
  const out = Buffer.allocUnsafe(5 + messageLength);
  out[0] = 0;
  out.writeUInt32BE(messageLength, 1);
  out[5] = 0x0a; // field 1, length-delimited
  let i = 6;
  let v = body.length;
  while (v >= 0x80) {
    out[i++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  out[i++] = v;
  body.copy(out, i);
  return out;
}

/** A `grpc-message` as sent (percent-encoded), back to its text; a bad escape is left as it is. */
function decodeGrpcMessage(message: string): string {
  if (!message.includes("%")) return message;
  try {
    return decodeURIComponent(message);
  } catch {
    return message;
  }
}
