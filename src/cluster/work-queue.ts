/**
 * A cluster's queue of calls waiting for a free slot (`clusters[].queue`, with `max_active` caps),
 * bound to an endpoint only when a slot frees ("late binding", as HAProxy's backend queue does).
 *
 * Order: priority first (lower is served first), within one priority the flows (the
 * `fairness_header` values) take turns, FIFO within a flow. A call pinned to one endpoint (affinity,
 * a Triton sequence) waits in that endpoint's own line and is served first when a slot frees there.
 * When the queue is full, a call of a better priority than the worst queued one evicts the newest
 * call of that worst priority; otherwise the new call is shed. Negative priorities never queue.
 *
 * The queue never calls back while its caller is inside `offer`, `leave` or `slotFreed`: binding
 * runs in a microtask, so a release in the middle of a stream's bookkeeping does not start another
 * stream inside it.
 */
import { performance } from "node:perf_hooks";
import type { Endpoint } from "../balancer/endpoint-set.js";

/** Why a call was shed (`fulcrum_shed_total`'s `reason`). */
export type ShedReason = "queue_full" | "queue_timeout" | "evicted" | "sheddable" | "no_queue" | "deadline";

/** A call that waits: the stream core's side of the queue. */
export interface QueuedCall {
  /**
   * A slot may be free: try to take one now. True when the call left the queue (bound, or answered
   * for another reason); false when it found no slot and keeps its place.
   */
  bind(): boolean;
  /** Shed while waiting (evicted or timed out): the call answers RESOURCE_EXHAUSTED. */
  shed(reason: ShedReason): void;
}

export interface WorkQueueSettings {
  readonly maxSize: number;
  readonly timeoutMs: number;
}

/** What the queue reports, for the metrics (bounded labels: the priority is clamped). */
export interface WorkQueueReports {
  depthChanged(priority: number, delta: number): void;
  waited(seconds: number): void;
  shed(reason: ShedReason): void;
}

/** Priorities are clamped to this range, so the metric's `priority` label stays bounded. */
export const MIN_PRIORITY = -100;
export const MAX_PRIORITY = 100;

/** The priority a header value gives: an integer (clamped), or 0 when absent or not an integer. */
export function priorityOf(value: string | undefined): number {
  if (value === undefined || !/^[+-]?\d{1,9}$/.test(value.trim())) return 0;
  return Math.max(MIN_PRIORITY, Math.min(MAX_PRIORITY, Number(value.trim())));
}

/** One queued call; `live` turns false when it leaves, and dead entries are skipped lazily. */
export class QueueEntry {
  live = true;
  timer: NodeJS.Timeout | undefined;
  constructor(
    readonly call: QueuedCall,
    readonly priority: number,
    readonly flow: string,
    readonly pinned: Endpoint | undefined,
    readonly seq: number,
    readonly enqueuedAt: number,
  ) {}
}

/** The calls of one priority: flows in turn, FIFO within each. */
class Band {
  readonly flows = new Map<string, QueueEntry[]>();
  /** Flows with entries, in turn order; `turn` is the next to serve. */
  readonly ring: string[] = [];
  turn = 0;
  size = 0;

  push(e: QueueEntry): void {
    let line = this.flows.get(e.flow);
    if (!line) {
      line = [];
      this.flows.set(e.flow, line);
      this.ring.push(e.flow);
    }
    line.push(e);
    this.size++;
  }

  /** The live entry served next, dead ones dropped on the way; undefined when none is live. */
  peek(): QueueEntry | undefined {
    while (this.ring.length > 0) {
      if (this.turn >= this.ring.length) this.turn = 0;
      const flow = this.ring[this.turn] as string;
      const line = this.flows.get(flow) as QueueEntry[];
      while (line.length > 0 && !(line[0] as QueueEntry).live) line.shift();
      if (line.length > 0) return line[0];
      this.dropFlow(this.turn);
    }
    return undefined;
  }

  /** `e` (which `peek` returned) was served: it leaves its line and the next flow's turn comes. */
  served(e: QueueEntry): void {
    const flow = this.ring[this.turn];
    const line = flow === undefined ? undefined : this.flows.get(flow);
    if (!line || line[0] !== e) return; // left otherwise; `peek` drops it
    line.shift();
    if (line.length === 0) this.dropFlow(this.turn);
    else this.turn++;
  }

  /** The newest live entry (the one eviction sheds), or undefined. */
  newest(): QueueEntry | undefined {
    let best: QueueEntry | undefined;
    for (const line of this.flows.values()) {
      for (let i = line.length - 1; i >= 0; i--) {
        const e = line[i] as QueueEntry;
        if (!e.live) continue;
        if (!best || e.seq > best.seq) best = e;
        break;
      }
    }
    return best;
  }

  private dropFlow(index: number): void {
    const flow = this.ring[index] as string;
    this.flows.delete(flow);
    this.ring.splice(index, 1);
    if (this.turn > index) this.turn--;
  }
}

export class WorkQueue {
  /** Bands by priority, and their priorities in ascending order. */
  private readonly bands = new Map<number, Band>();
  private priorities: number[] = [];
  /** Pinned calls per endpoint, FIFO by priority then arrival. */
  private readonly pinnedLines = new Map<Endpoint, QueueEntry[]>();
  private count = 0;
  private unpinned = 0;
  private seq = 0;
  private settings: WorkQueueSettings;
  private scheduled = false;
  private readonly freed = new Set<Endpoint>();
  private watching = false;

  /**
   * `otherThreads`: with worker threads, resolves when another thread frees a slot (or after a
   * while); the queue listens while it holds calls, since those slots are not released here.
   */
  constructor(
    settings: WorkQueueSettings,
    private readonly reports: WorkQueueReports,
    private readonly now: () => number = () => performance.now(),
    private readonly otherThreads?: () => Promise<void>,
  ) {
    this.settings = settings;
  }

  /** Listens for other threads' releases while calls wait. */
  private watchOtherThreads(): void {
    const listen = this.otherThreads;
    if (!listen || this.watching) return;
    this.watching = true;
    const loop = (): void => {
      if (this.count === 0) {
        this.watching = false;
        return;
      }
      void listen().then(() => {
        this.retry();
        loop();
      });
    };
    loop();
  }

  /** A reload's settings; calls already queued keep waiting (a smaller max_size only refuses new ones). */
  configure(settings: WorkQueueSettings): void {
    this.settings = settings;
  }

  get size(): number {
    return this.count;
  }

  /** Calls waiting for any endpoint (not pinned to one): a new call queues behind them. */
  get waiting(): number {
    return this.unpinned;
  }

  /** Queued calls per priority (the status page and `/status`). */
  depthByPriority(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const p of this.priorities) {
      const band = this.bands.get(p) as Band;
      if (band.size > 0) out[String(p)] = band.size;
    }
    for (const line of this.pinnedLines.values())
      for (const e of line) if (e.live) out[String(e.priority)] = (out[String(e.priority)] ?? 0) + 1;
    return out;
  }

  /**
   * Queues `call` (it found no free slot), or returns why it is shed instead. `pinned`: the one
   * endpoint it may use. The entry is what `leave` takes when the call goes for another reason.
   */
  offer(
    call: QueuedCall,
    priority: number,
    flow: string,
    pinned: Endpoint | undefined,
  ): QueueEntry | ShedReason {
    if (priority < 0) return this.refuse("sheddable");
    if (this.settings.maxSize <= 0) return this.refuse("no_queue");
    if (this.count >= this.settings.maxSize) {
      const victim = this.worstQueued();
      if (!victim || victim.priority <= priority) return this.refuse("queue_full");
      this.remove(victim);
      this.reports.shed("evicted");
      victim.call.shed("evicted");
    }
    const entry = new QueueEntry(call, priority, flow, pinned, this.seq++, this.now());
    if (pinned) this.pinLine(pinned).push(entry);
    else {
      this.band(priority).push(entry);
      this.unpinned++;
    }
    this.count++;
    this.reports.depthChanged(priority, 1);
    entry.timer = setTimeout(() => this.timedOut(entry), this.settings.timeoutMs);
    entry.timer.unref();
    this.watchOtherThreads();
    return entry;
  }

  /** The call left the queue on its own (client cancel, deadline, Fulcrum's answer). */
  leave(entry: QueueEntry): void {
    if (entry.live) this.remove(entry);
  }

  /** A slot freed on `endpoint`: queued calls try to bind, in a microtask. */
  slotFreed(endpoint: Endpoint): void {
    if (this.count === 0) return;
    this.freed.add(endpoint);
    this.schedule();
  }

  /**
   * Capacity may have grown without a release (an endpoint added, undrained or healthy again, caps
   * raised by a reload): waiting calls try to bind, in a microtask.
   */
  retry(): void {
    if (this.count === 0) return;
    for (const endpoint of this.pinnedLines.keys()) this.freed.add(endpoint);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.dispatch());
  }

  /** Counts a call its owner shed on the queue's behalf (`deadline`: it could not be answered in time). */
  countShed(reason: ShedReason): void {
    this.reports.shed(reason);
  }

  private dispatch(): void {
    this.scheduled = false;
    // Pinned calls first on the endpoints that freed a slot: they cannot go anywhere else.
    for (const endpoint of this.freed) {
      const line = this.pinnedLines.get(endpoint);
      while (line && line.length > 0) {
        const e = line[0] as QueueEntry;
        if (e.live && !this.tryBind(e)) break;
        if (line[0] === e) line.shift();
      }
      if (line && line.length === 0) this.pinnedLines.delete(endpoint);
    }
    this.freed.clear();
    for (;;) {
      const band = this.headBand();
      const next = band?.peek();
      if (!band || !next || !this.tryBind(next)) return;
      band.served(next);
    }
  }

  /** The band of the best priority that has a live call. */
  private headBand(): Band | undefined {
    for (const p of this.priorities) {
      const band = this.bands.get(p) as Band;
      if (band.peek()) return band;
    }
    return undefined;
  }

  /** True when `e` no longer waits (bound, or answered otherwise); false: no slot, it keeps its place. */
  private tryBind(e: QueueEntry): boolean {
    if (!e.call.bind()) return false;
    if (e.live) this.remove(e);
    this.reports.waited((this.now() - e.enqueuedAt) / 1000);
    return true;
  }

  private timedOut(entry: QueueEntry): void {
    entry.timer = undefined;
    if (!entry.live) return;
    this.remove(entry);
    this.reports.shed("queue_timeout");
    this.reports.waited((this.now() - entry.enqueuedAt) / 1000);
    entry.call.shed("queue_timeout");
  }

  /** Bookkeeping of a call leaving; its dead entry is dropped from its line lazily. */
  private remove(entry: QueueEntry): void {
    entry.live = false;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    this.count--;
    this.reports.depthChanged(entry.priority, -1);
    if (!entry.pinned) {
      this.unpinned--;
      const band = this.bands.get(entry.priority);
      if (band) band.size--;
    }
  }

  private worstQueued(): QueueEntry | undefined {
    let worst: QueueEntry | undefined;
    for (let i = this.priorities.length - 1; i >= 0 && !worst; i--)
      worst = (this.bands.get(this.priorities[i] as number) as Band).newest();
    for (const line of this.pinnedLines.values()) {
      for (const e of line) {
        if (
          e.live &&
          (!worst || e.priority > worst.priority || (e.priority === worst.priority && e.seq > worst.seq))
        )
          worst = e;
      }
    }
    return worst;
  }

  private refuse(reason: ShedReason): ShedReason {
    this.reports.shed(reason);
    return reason;
  }

  private band(priority: number): Band {
    let band = this.bands.get(priority);
    if (!band) {
      band = new Band();
      this.bands.set(priority, band);
      this.priorities = [...this.bands.keys()].sort((a, b) => a - b);
    }
    return band;
  }

  private pinLine(endpoint: Endpoint): QueueEntry[] {
    let line = this.pinnedLines.get(endpoint);
    if (!line) {
      line = [];
      this.pinnedLines.set(endpoint, line);
    }
    return line;
  }
}
