/**
 * The one gRPC stream core, shared by both engines: what happens to a client's stream between its
 * request headers and its last byte, written once. It chooses the endpoint of every attempt
 * (StreamEndpointChoice), keeps request bytes in the 64 KiB retry buffer, retries on another endpoint
 * while nothing of the response arrived (connect failure, REFUSED_STREAM, a GOAWAY below the stream's
 * id: docs/architecture.md "Retries"), enforces `grpc-timeout`, answers with a status of its own
 * (trailers-only before any response header, trailers after), accounts each attempt on its endpoint
 * exactly once, and reports the stream's outcome once.
 *
 * An engine extends it with the few things that touch its HTTP/2 implementation: open an upstream
 * stream on an endpoint (`openOn`), send request bytes on it (`sendUp`), cancel it (`abortUp`), and
 * answer the client (`answerClient`); it forwards response headers, DATA and trailers itself, asking
 * the core first (`responseHeaders`, `responseTrailers`), and reports an upstream failure
 * (`upstreamFailed`) or the client's end (`finish`).
 */
import { performance } from "node:perf_hooks";
import type { Endpoint } from "../balancer/endpoint-set.js";
import type { UpstreamCluster } from "../cluster/upstream-cluster.js";
import { GrpcStatus, encodeGrpcMessage, parseStatus, statusOfResetCode } from "./grpc-status.js";
import { parseGrpcTimeout } from "./grpc-timeout.js";
import { InferenceRouting } from "./inference-routing.js";
import { StreamEndpointChoice, type QueueKeys } from "./stream-endpoint-choice.js";
import type { QueueEntry, QueuedCall, ShedReason } from "../cluster/work-queue.js";
import type { StreamOwner } from "./stream-outcome.js";

/** Request bytes kept for a retry; past it a stream is no longer retried (docs/architecture.md). */
export const RETRY_BUFFER_BYTES = 64 * 1024;

/**
 * Where a stream is in its life. `moveTo` is the only way to change it and refuses every move this
 * table does not list, which is what guards each step (a late callback finds its move refused).
 */
export type StreamPhase =
  /** Waits for the head of the first message to choose its endpoint (inference routing). */
  | "routing"
  /** Every endpoint it may use is at its cap: it waits in the cluster's queue, holding nothing upstream. */
  | "queued"
  /** An attempt waits for a connection (a free stream slot) to its endpoint. */
  | "connecting"
  /** The request goes upstream on an attempt; no response byte yet, so a retry is still possible. */
  | "forwarded"
  /** The worker's response headers went to the client. */
  | "responding"
  /** The worker's status went to the client (its trailers, or a trailers-only response). */
  | "trailed"
  /** Fulcrum answered with a status of its own (no endpoint, deadline, reset, lost connection). */
  | "answered"
  /** The client's stream is over and its outcome reported. */
  | "done";

/** The phases a stream may move to from `from` (a switch: this runs on every move of every stream). */
function mayMove(from: StreamPhase, to: StreamPhase): boolean {
  switch (from) {
    case "routing":
      return to === "queued" || to === "connecting" || to === "answered" || to === "done";
    case "queued":
      return to === "connecting" || to === "answered" || to === "done";
    case "connecting":
      return (
        to === "queued" || to === "connecting" || to === "forwarded" || to === "answered" || to === "done"
      );
    case "forwarded":
      return to !== "routing" && to !== "forwarded";
    case "responding":
      return to === "trailed" || to === "answered" || to === "done";
    case "trailed":
    case "answered":
      return to === "done";
    case "done":
      return false;
  }
}

/** Why an upstream stream failed: refused unprocessed, reset by the worker, or its connection lost. */
export type UpstreamFailure = "refused" | "reset" | "lost";

const EMPTY = Buffer.alloc(0);

/** A queued call is sent only with at least this multiple of the endpoint's service time left. */
const DEADLINE_SPARE = 1.5;

/** The statuses `retry_on` may name, by code. */
const RETRYABLE: Readonly<Record<number, "unavailable" | "resource_exhausted" | "internal">> = {
  [GrpcStatus.UNAVAILABLE]: "unavailable",
  [GrpcStatus.RESOURCE_EXHAUSTED]: "resource_exhausted",
  [GrpcStatus.INTERNAL]: "internal",
};

/** The end of a shed call's grpc-message. */
const SHED_MESSAGES: Readonly<Record<ShedReason, string>> = {
  queue_full: "queue full",
  queue_timeout: "queue timeout",
  evicted: "evicted from the queue by a call of higher priority",
  sheddable: "every endpoint is at its cap and the call is sheddable (negative priority)",
  no_queue: "every endpoint is at its cap and the cluster has no queue",
  deadline: "its deadline would pass in the worker",
};

/** The stream's place in its cluster: the route inputs both engines give the core. */
export interface StreamRouteInputs {
  readonly cluster: UpstreamCluster;
  /** The client's address (no port), when known. */
  readonly clientAddress: string | undefined;
  /** The affinity key of this stream (`header:<name>` value or the client address), if any. */
  readonly affinityKey: string | undefined;
  /** Its priority and flow in the cluster's queue (`clusters[].queue`). */
  readonly queueKeys: QueueKeys;
}

export abstract class ProxiedStream<Up> implements QueuedCall {
  protected phase: StreamPhase = "routing";
  /** The gRPC status the client got or gets; set on entering `trailed` or `answered`. */
  protected status: number | undefined;
  /** The upstream stream of the current attempt, from `opened` until the attempt is accounted. */
  protected up: Up | undefined;
  /** Request DATA kept for a retry (views, never copies), while `replayable`. */
  protected buffered: Buffer[] = [];
  protected bufferedBytes = 0;
  /** False once the request outgrew the retry buffer or a response byte arrived. */
  protected replayable = true;
  protected requestEnded = false;
  /** The request ends with trailers (rare in gRPC): the engine sends them where it ends the request. */
  protected requestHasTrailers = false;
  protected bytesIn = 0;
  protected bytesOut = 0;
  protected readonly cluster: UpstreamCluster;
  /** Inference routing of this stream (models configured and an inference method), if any. */
  protected readonly routing: InferenceRouting | undefined;
  /** The endpoint of each attempt (model filter, sequence pins, policy) and the route's explanation. */
  protected readonly choice: StreamEndpointChoice;
  private upEndpoint: Endpoint | undefined;
  private upStartedAt = 0;
  private deadline: NodeJS.Timeout | undefined;
  /** When the client's `grpc-timeout` runs out (performance.now() time), if it sent one. */
  private deadlineAt: number | undefined;
  private readonly started = performance.now();
  private readonly clientAddress: string | undefined;
  private readonly queueKeys: QueueKeys;
  /** Its place in the cluster's queue while `queued`. */
  private queueEntry: QueueEntry | undefined;
  /** True while the stream holds one of the cluster's retry budget (from its first status retry to its end). */
  private retryToken = false;
  /** The status of the last answer retried elsewhere (`retry_on`). */
  private retriedStatus: number | undefined;

  protected constructor(
    route: StreamRouteInputs,
    protected readonly method: string | undefined,
    private readonly owner: StreamOwner,
  ) {
    this.cluster = route.cluster;
    this.clientAddress = route.clientAddress;
    this.queueKeys = route.queueKeys;
    this.routing = InferenceRouting.forStream(route.cluster, method);
    this.choice = new StreamEndpointChoice(
      route.cluster,
      route.clientAddress,
      route.affinityKey,
      this.routing,
    );
  }

  // ---- what an engine supplies --------------------------------------------------------------------

  /**
   * Opens an upstream stream on `endpoint`: now when its pool has a free slot, else when one comes.
   * Then it sets `up` and calls `opened`, or calls `connectFailed` / `refusedOnOpen`. A callback
   * that comes after the stream moved on (`phase !== "connecting"`) must not open anything.
   */
  protected abstract openOn(endpoint: Endpoint): void;
  /** Sends request bytes on `up`; `end` ends the request (with its trailers, when it has them). */
  protected abstract sendUp(up: Up, data: Buffer, end: boolean): void;
  /** Cancels `up` (RST_STREAM CANCEL) unless it is over; never calls back into the core at once. */
  protected abstract abortUp(up: Up): void;
  /** Ends the client's stream with Fulcrum's own status: trailers-only, or trailers `afterHeaders`. */
  protected abstract answerClient(
    status: number,
    message: string,
    explanation: string | undefined,
    afterHeaders: boolean,
  ): void;
  /** The request outgrew the retry buffer while no upstream stream takes it: stop reading it. */
  protected holdRequest(): void {}
  /** The outcome was reported: nothing of the stream is used any more. */
  protected finished(): void {}

  // ---- the life of the stream ---------------------------------------------------------------------

  /** The last step of an engine's constructor: arms the deadline and makes the first attempt. */
  protected begin(timeout: string | undefined, requestEnded: boolean): void {
    this.requestEnded = requestEnded;
    const timeoutMs = parseGrpcTimeout(timeout);
    if (timeoutMs !== undefined) {
      this.deadline = setTimeout(() => this.onDeadline(), Math.max(0, timeoutMs));
      this.deadlineAt = performance.now() + timeoutMs;
    }
    const routing = this.routing;
    if (routing && requestEnded) routing.end();
    if (!routing || routing.decided) this.attempt();
  }

  /** True while an upstream stream may still be opened for this stream. */
  protected get connecting(): boolean {
    return this.phase === "connecting";
  }

  /** The request is complete with neither DATA to replay nor trailers: its HEADERS may carry END_STREAM. */
  protected get headersEndRequest(): boolean {
    return this.requestEnded && this.buffered.length === 0 && !this.requestHasTrailers;
  }

  protected moveTo(next: StreamPhase): boolean {
    if (!mayMove(this.phase, next)) return false;
    this.phase = next;
    return true;
  }

  /**
   * Request DATA from the client. Returns false when nothing will take it (the stream was answered):
   * the engine gives its flow-control window back at once.
   */
  protected requestData(data: Buffer, endStream: boolean): boolean {
    this.bytesIn += data.length;
    if (endStream) this.requestEnded = true;
    const phase = this.phase;
    if (phase === "trailed" || phase === "answered" || phase === "done") return false;
    const up = this.up;
    if (this.replayable || up === undefined) {
      this.bufferedBytes += data.length;
      if (data.length > 0) this.buffered.push(data);
      if (this.bufferedBytes > RETRY_BUFFER_BYTES) {
        this.replayable = false;
        if (up !== undefined) this.buffered = [];
      }
    }
    if (up !== undefined) {
      this.sendUp(up, data, endStream);
      return true;
    }
    if (phase === "routing") {
      const routing = this.routing as InferenceRouting;
      // Past the retry buffer, decide with what arrived rather than wait for more.
      if (this.bufferedBytes > RETRY_BUFFER_BYTES || (!routing.push(data) && endStream)) routing.end();
      if (routing.decided) this.attempt();
    }
    if (!this.replayable && this.up === undefined) this.holdRequest();
    return true;
  }

  /**
   * An attempt on the next endpoint, or UNAVAILABLE when there is none, or a place in the queue
   * when every endpoint it may use is at its cap. A first attempt queues behind calls already
   * waiting rather than take a slot that frees for them.
   */
  private attempt(): void {
    const phase = this.phase;
    if (phase !== "routing" && phase !== "connecting" && phase !== "forwarded") return;
    // (A stream that affinity keeps on one endpoint waits in that endpoint's line instead.)
    if (phase === "routing" && this.cluster.queue.waiting > 0 && !this.choice.keepsEndpoint)
      return this.enqueue(undefined);
    const choice = this.choice.next();
    // After a status retry found no other endpoint, the client gets the worker's status.
    const status = this.retriedStatus ?? GrpcStatus.UNAVAILABLE;
    if (choice.kind === "unavailable") return this.respondError(status, choice.message);
    if (choice.kind === "full") return this.enqueue(choice.pinned);
    this.startAttempt(choice.endpoint);
  }

  /**
   * The attempt's endpoint was picked and counts the stream already (from its pick, not from its
   * connection: a burst that lands while a new connection is made sees it, where a just-undrained
   * endpoint would otherwise take it all).
   */
  private startAttempt(endpoint: Endpoint): void {
    this.moveTo("connecting");
    this.upEndpoint = endpoint;
    this.openOn(endpoint);
  }

  private enqueue(pinned: Endpoint | undefined): void {
    const queued = this.cluster.queue.offer(this, this.queueKeys.priority, this.queueKeys.flow, pinned);
    if (typeof queued === "string") return this.respondShed(queued);
    this.moveTo("queued");
    this.queueEntry = queued;
  }

  /** The queue's call: a slot may be free (late binding). True when the stream no longer waits. */
  bind(): boolean {
    if (this.phase !== "queued") return true;
    const choice = this.choice.next();
    if (choice.kind === "full") return false;
    this.queueEntry = undefined;
    if (choice.kind === "unavailable") {
      this.respondError(this.retriedStatus ?? GrpcStatus.UNAVAILABLE, choice.message);
      return true;
    }
    const endpoint = choice.endpoint;
    const left = this.deadlineAt === undefined ? Infinity : this.deadlineAt - performance.now();
    const takes = this.cluster.serviceEstimateMs(endpoint);
    // With half as much again to spare: service times vary, and a miss costs a whole slot.
    if (left < takes * DEADLINE_SPARE) {
      // It waited too long to be answered in time: sending it now would only waste the worker's slot.
      this.upEndpoint = endpoint; // released by the answer
      this.cluster.queue.countShed("deadline");
      this.respondError(
        GrpcStatus.DEADLINE_EXCEEDED,
        `deadline would pass in the worker: ${Math.round(left)} ms left after the queue, ${endpoint.address} takes about ${Math.round(takes)} ms`,
      );
      return true;
    }
    this.startAttempt(endpoint);
    return true;
  }

  /** The queue's call: shed while waiting (evicted by a better priority, or `queue.timeout`). */
  shed(reason: ShedReason): void {
    this.queueEntry = undefined;
    this.respondShed(reason);
  }

  private respondShed(reason: ShedReason): void {
    this.respondError(
      GrpcStatus.RESOURCE_EXHAUSTED,
      `cluster "${this.cluster.name}" is overloaded: ${SHED_MESSAGES[reason]}`,
    );
  }

  /** Leaves the queue when the stream ends or is answered while waiting. */
  private leaveQueue(): void {
    const entry = this.queueEntry;
    if (entry === undefined) return;
    this.queueEntry = undefined;
    this.cluster.queue.leave(entry);
  }

  /**
   * The engine opened `up` on `endpoint` (its request HEADERS sent, with END_STREAM when `sentEnd`):
   * the buffered request follows.
   */
  protected opened(endpoint: Endpoint, sentEnd: boolean): void {
    const up = this.up as Up;
    this.moveTo("forwarded");
    this.upStartedAt = performance.now();
    const replay = this.buffered;
    if (!this.replayable) this.buffered = [];
    for (let i = 0; i < replay.length; i++) {
      this.sendUp(up, replay[i] as Buffer, i === replay.length - 1 && this.requestEnded);
    }
    if (this.requestEnded && replay.length === 0 && !sentEnd) this.sendUp(up, EMPTY, true);
  }

  /** No connection to `endpoint` could be made: counted, then the next endpoint (or UNAVAILABLE). */
  protected connectFailed(endpoint: Endpoint, reason: string): void {
    this.cluster.connectFailed(endpoint, reason);
    this.choice.connectFailed(endpoint, reason);
    if (this.phase !== "connecting" || endpoint !== this.upEndpoint) return;
    this.endAttempt(undefined);
    this.retryOrFail(`${endpoint.address}: ${reason}`);
  }

  /** The connection chosen on `endpoint` refused a new stream before sending it (it was going away). */
  protected refusedOnOpen(endpoint: Endpoint, reason: string): void {
    this.choice.refusedBy(endpoint, "refused");
    if (this.phase !== "connecting" || endpoint !== this.upEndpoint) return;
    this.endAttempt(undefined);
    this.retryOrFail(`${endpoint.address}: ${reason}`);
  }

  /**
   * Response headers from the worker; true when the engine is to forward them. A trailers-only
   * response (`endStream`) carries the status.
   */
  protected responseHeaders(endStream: boolean, grpcStatus: string | undefined): boolean {
    if (endStream && this.retriedOnStatus(grpcStatus)) return false;
    this.replayable = false;
    this.buffered = [];
    if (!this.moveTo(endStream ? "trailed" : "responding")) return false;
    if (endStream) this.status = parseStatus(grpcStatus);
    return true;
  }

  /**
   * A trailers-only answer with a status of `retry_on`, before any response byte and with the
   * request still replayable: retried on another endpoint when `connect_attempts` and the cluster's
   * retry budget allow (the status then never reaches the client). True when it was retried.
   */
  private retriedOnStatus(grpcStatus: string | undefined): boolean {
    const retryOn = this.cluster.config.retry_on;
    if (retryOn.length === 0 || this.phase !== "forwarded" || !this.replayable) return false;
    const status = parseStatus(grpcStatus);
    const reason = RETRYABLE[status];
    const endpoint = this.upEndpoint;
    const up = this.up;
    if (reason === undefined || !retryOn.includes(reason) || endpoint === undefined || up === undefined)
      return false;
    if (this.choice.attempts >= this.cluster.connectAttempts || this.choice.pinnedToSequence) return false;
    if (!this.retryToken) {
      if (!this.cluster.retryBudget.tryStart(this.cluster.activeWork())) {
        this.cluster.retryBudgetExhausted();
        return false;
      }
      this.retryToken = true;
    }
    this.cluster.retried(reason);
    this.retriedStatus = status;
    this.cluster.streamResult(endpoint, status !== GrpcStatus.UNAVAILABLE);
    this.abortUp(up);
    this.endAttempt(status);
    this.choice.answeredWith(endpoint, `${endpoint.address} answered ${reason.toUpperCase()}`);
    this.attempt();
    return true;
  }

  /** The worker's trailers; true when the engine is to forward them. */
  protected responseTrailers(grpcStatus: string | undefined): boolean {
    if (this.phase !== "responding" || !this.moveTo("trailed")) return false;
    this.status = parseStatus(grpcStatus);
    return true;
  }

  /**
   * The current upstream stream ended without the worker's status: refused unprocessed (retried
   * while nothing of the response came and the request fits the retry buffer), reset by the worker,
   * or lost with its connection (the client gets UNAVAILABLE or the reset's status).
   */
  protected upstreamFailed(failure: UpstreamFailure, code: number): void {
    const endpoint = this.upEndpoint;
    if (this.up === undefined || endpoint === undefined) return;
    const phase = this.phase;
    if (phase !== "forwarded" && phase !== "responding") return this.endAttempt(this.status);
    if (failure === "refused" && phase === "forwarded" && this.replayable) {
      // Never processed (REFUSED_STREAM, or above a GOAWAY's last stream id): not the endpoint's fault.
      this.endAttempt(undefined);
      this.choice.refusedBy(endpoint, "refused");
      return this.retryOrFail(`${endpoint.address}: stream refused`);
    }
    const cluster = this.cluster;
    cluster.upstreamReset(endpoint);
    cluster.streamResult(endpoint, false);
    const lost = failure === "lost";
    const status = lost ? GrpcStatus.UNAVAILABLE : statusOfResetCode(code);
    this.endAttempt(status);
    const why = lost ? "connection to the endpoint was lost" : `the endpoint reset the stream (code ${code})`;
    this.respondError(status, `${endpoint.address}: ${why}`);
  }

  /** The current upstream stream closed cleanly after the worker's status went to the client. */
  protected upstreamDone(): void {
    const endpoint = this.upEndpoint;
    if (this.up === undefined || endpoint === undefined || this.status === undefined) return;
    this.cluster.streamResult(endpoint, this.status !== GrpcStatus.UNAVAILABLE);
    this.endAttempt(this.status);
  }

  private retryOrFail(reason: string): void {
    this.choice.lastError = reason;
    if (this.replayable && this.choice.attempts < this.cluster.connectAttempts) return this.attempt();
    this.respondError(
      GrpcStatus.UNAVAILABLE,
      `no endpoint of cluster "${this.cluster.name}" could take the stream: ${reason}`,
    );
  }

  private onDeadline(): void {
    this.deadline = undefined;
    this.respondError(GrpcStatus.DEADLINE_EXCEEDED, "deadline exceeded");
  }

  /** Ends the client's stream with `status` and cancels the upstream one (unless already answered). */
  protected respondError(status: number, message: string): void {
    const afterHeaders = this.phase === "responding";
    if (!this.moveTo("answered")) return;
    this.leaveQueue();
    this.status = status;
    const up = this.up;
    // An attempt still connecting holds its endpoint's count without having run anything there.
    if (up !== undefined) this.abortUp(up);
    this.endAttempt(up !== undefined ? status : undefined, up !== undefined);
    this.answerClient(status, encodeGrpcMessage(message), this.choice.answerExplanation(), afterHeaders);
  }

  /**
   * The attempt is over: its endpoint's count goes down once, and `status` with the attempt's
   * latency feeds the load estimate (undefined for a refused stream, which the worker never ran).
   *
   * `abandoned`: Fulcrum cancelled a call the worker was running (deadline, client cancel). A GPU
   * server often finishes it anyway (Triton's default), so the slot stays counted for the rest of
   * the endpoint's usual service time; freed at once, a capped endpoint would be handed a new call
   * while still busy with the old one, and its own queue would grow behind the cap.
   */
  private endAttempt(status: number | undefined, abandoned = false, now?: number): void {
    const endpoint = this.upEndpoint;
    this.up = undefined;
    this.upEndpoint = undefined;
    if (endpoint === undefined) return;
    const ranMs = (now ?? performance.now()) - this.upStartedAt;
    if (status !== undefined) this.cluster.streamFinished(endpoint, ranMs, status);
    const restMs = abandoned ? this.cluster.serviceEstimateMs(endpoint) - ranMs : 0;
    if (restMs < 1) return this.cluster.release(endpoint);
    const cluster = this.cluster;
    setTimeout(() => cluster.release(endpoint), restMs).unref();
  }

  /**
   * The client's stream is over (its response complete, or it was reset or its connection lost): the
   * upstream stream is cancelled if it still runs, and the outcome is reported once.
   */
  protected finish(): void {
    const trailed = this.phase === "trailed";
    if (!this.moveTo("done")) return;
    this.leaveQueue();
    if (this.retryToken) this.cluster.retryBudget.end();
    if (this.deadline) clearTimeout(this.deadline);
    const up = this.up;
    const endpoint = this.upEndpoint;
    const status = this.status ?? GrpcStatus.CANCELLED;
    this.status = status;
    // One clock reading for the attempt's latency and the stream's (a call per stream saved).
    const now = performance.now();
    if (up !== undefined && endpoint !== undefined) {
      // The worker answered (a clean end for outlier detection) even if its request side still runs.
      if (trailed) this.cluster.streamResult(endpoint, status !== GrpcStatus.UNAVAILABLE);
      this.abortUp(up);
      this.endAttempt(status, !trailed, now);
    } else {
      this.endAttempt(undefined); // cancelled while connecting
    }
    this.finished();
    const choice = this.choice;
    this.owner.streamDone(this.cluster.name, {
      status,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      seconds: (now - this.started) / 1000,
      client: this.clientAddress,
      method: this.method,
      endpoint: choice.endpoint?.address,
      retries: choice.retries,
      route: choice.reason,
    });
  }
}
