/**
 * An in-memory link for a `frames` connection (src/grpc/engine-frames/frames-link.ts): no socket, a
 * fake clock, and the peer's side played by the test frame by frame. `deliver` feeds the connection
 * bytes the test built (h2-frames-client.ts builds any frame, valid or not); `turn` ends the event-loop
 * turn, which hands the connection's output to the sink; `take` parses what it wrote into frames,
 * header blocks decoded by the test's own HPACK decoder.
 */
import type {
  ByteSink,
  ConnectionLink,
  LinkInput,
  TimerHandle,
  Timers,
} from "../../src/grpc/engine-frames/frames-link.js";
import { CLIENT_PREFACE, FLAG, FRAME, HpackDecoder, type Frame } from "./h2-frames-client.js";

interface PendingTimer {
  at: number;
  fn: () => void;
  cleared: boolean;
}

/** Timers on a clock that moves only when the test says so. */
export class FakeClock implements Timers {
  time = 0;
  private readonly timers: PendingTimer[] = [];
  private immediates: (() => void)[] = [];

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t: PendingTimer = { at: this.time + ms, fn, cleared: false };
    this.timers.push(t);
    return t;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) (handle as PendingTimer).cleared = true;
  }

  setImmediate(fn: () => void): void {
    this.immediates.push(fn);
  }

  now(): number {
    return this.time;
  }

  /** Runs what was deferred to the end of this turn (again, for what that deferred). */
  runImmediates(): void {
    while (this.immediates.length > 0) {
      const run = this.immediates;
      this.immediates = [];
      for (const fn of run) fn();
    }
  }

  /** Moves the clock by `ms`, firing the timers that fall due, in order. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => !t.cleared && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.cleared = true;
      this.time = due.at;
      due.fn();
    }
    this.time = until;
  }
}

/** A received frame with its header block decoded (HEADERS, after any CONTINUATION). */
export interface PipeFrame extends Frame {
  readonly headers?: [string, string][];
}

export class H2MemoryPipe implements ConnectionLink, ByteSink {
  readonly timers = new FakeClock();
  readonly remoteAddress = "192.0.2.1";
  /** What the sink holds and has not handed on: set it to make the connection congested. */
  backlog = 0;
  closed = false;
  /** The connection ended its side (`end()`). */
  ended = false;
  /** Writes that reached the sink, a corked run counting as one (what a socket makes one writev of). */
  batches = 0;
  private corked = false;
  private input: LinkInput | undefined;
  private written: Buffer[] = [];
  private readonly decoder = new HpackDecoder();
  /** Header block fragments of a HEADERS frame awaiting its CONTINUATION. */
  private pendingBlock: { frame: Frame; parts: Buffer[] } | undefined;

  get sink(): ByteSink {
    return this;
  }

  attach(input: LinkInput): void {
    this.input = input;
  }

  write(chunk: Buffer): boolean {
    if (!this.corked) this.batches++;
    this.written.push(Buffer.from(chunk));
    return this.backlog === 0;
  }

  cork(): void {
    this.corked = true;
  }

  uncork(): void {
    this.corked = false;
    this.batches++;
  }

  end(): void {
    this.ended = true;
    this.closed = true;
  }

  /** Feeds the connection `frames` (one chunk), then ends the turn. */
  deliver(...frames: Buffer[]): void {
    this.connection().receive(Buffer.concat(frames));
    this.turn();
  }

  /** The end of an event-loop turn: deferred work runs and the output reaches the sink. */
  turn(): void {
    this.timers.runImmediates();
  }

  /** The sink wrote its backlog out. */
  drain(): void {
    this.backlog = 0;
    this.connection().drained();
    this.turn();
  }

  peerEnds(): void {
    this.connection().peerEnded();
    this.turn();
  }

  /** Every frame written since the last call, header blocks decoded. */
  take(): PipeFrame[] {
    this.turn();
    const bytes = Buffer.concat(this.written);
    this.written = [];
    const frames: PipeFrame[] = [];
    // A client connection's first bytes are the preface, which is not a frame.
    const start = bytes.subarray(0, CLIENT_PREFACE.length).equals(CLIENT_PREFACE) ? CLIENT_PREFACE.length : 0;
    for (let at = start; at + 9 <= bytes.length;) {
      const length = bytes.readUIntBE(at, 3);
      const f: Frame = {
        type: bytes[at + 3] as number,
        flags: bytes[at + 4] as number,
        streamId: bytes.readUInt32BE(at + 5) & 0x7fffffff,
        payload: bytes.subarray(at + 9, at + 9 + length),
      };
      at += 9 + length;
      const decoded = this.headersOf(f);
      if (decoded !== "partial") frames.push(decoded ? { ...f, headers: decoded } : f);
    }
    return frames;
  }

  private headersOf(f: Frame): [string, string][] | undefined | "partial" {
    if (f.type === FRAME.HEADERS) {
      if ((f.flags & FLAG.END_HEADERS) === 0) {
        this.pendingBlock = { frame: f, parts: [f.payload] };
        return "partial";
      }
      return this.decoder.decode(f.payload);
    }
    if (f.type !== FRAME.CONTINUATION || !this.pendingBlock) return undefined;
    this.pendingBlock.parts.push(f.payload);
    if ((f.flags & FLAG.END_HEADERS) === 0) return "partial";
    const block = Buffer.concat(this.pendingBlock.parts);
    this.pendingBlock = undefined;
    return this.decoder.decode(block);
  }

  private connection(): LinkInput {
    if (!this.input) throw new Error("no connection attached to the pipe");
    return this.input;
  }
}
