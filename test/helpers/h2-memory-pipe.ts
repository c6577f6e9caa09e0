/**
 * An in-memory link for a `frames` connection (src/grpc/engine-frames/frames-link.ts): no socket, a
 * fake clock, and the peer's side played by the test frame by frame. `deliver` feeds the connection
 * bytes the test built (h2-frames-client.ts builds any frame, valid or not); `turn` ends the event-loop
 * turn, which hands the connection's output to the sink; `take` parses what it wrote into frames,
 * header blocks decoded by the test's own HPACK decoder.
 *
 * Also here, the peers the unit tests put on a pipe: a minimal server role (every valid stream opened
 * for a recording handler, nothing of the proxy), the engine's own UpstreamConnection as the client
 * role, and helpers that read the frames they wrote.
 */
import type {
  ByteSink,
  ConnectionLink,
  LinkInput,
  TimerHandle,
  Timers,
} from "../../src/grpc/engine-frames/frames-link.js";
import assert from "node:assert/strict";
import {
  H2Connection,
  StreamEnd,
  type DecodeStatus,
} from "../../src/grpc/engine-frames/frames-connection.js";
import type { StreamHandler } from "../../src/grpc/engine-frames/frames-stream-end.js";
import { UpstreamConnection, type UpstreamEvents } from "../../src/grpc/engine-frames/frames-upstream.js";
import { HeaderList } from "../../src/h2/hpack-header-list.js";
import {
  CLIENT_PREFACE,
  FLAG,
  FRAME,
  HpackDecoder,
  encodeHeaderBlock,
  settingsFrame,
  type Frame,
  type HeaderList as Fields,
} from "./h2-frames-client.js";

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

// ---------------------------------------------------------------------------------------------------
// Connections on a pipe

export const MAX_HEADER_LIST = 16 * 1024;
export const REQUEST: Fields = [
  [":method", "POST"],
  [":scheme", "http"],
  [":path", "/pkg.Svc/M"],
  [":authority", "fulcrum"],
  ["content-type", "application/grpc"],
  ["te", "trailers"],
];

/** Everything a stream's handler heard, as short strings. */
export class Recorder implements StreamHandler {
  readonly events: string[] = [];
  /** Hand received DATA on at once (give its window back). */
  autoConsume = false;

  onHeaders(end: StreamEnd, list: HeaderList, endStream: boolean): void {
    const first = list.length > 0 ? `${list.name(0)}=${list.value(0)}` : "";
    this.events.push(`headers ${end.id} ${first}${endStream ? " end" : ""}`);
  }

  onData(end: StreamEnd, data: Buffer, endStream: boolean): void {
    this.events.push(`data ${end.id} ${data.length}${endStream ? " end" : ""}`);
    if (this.autoConsume) end.conn.consumed(end, data.length);
  }

  onReset(end: StreamEnd, code: number, why: string): void {
    this.events.push(`reset ${end.id} ${code} ${why}`);
  }

  onWritten(end: StreamEnd, n: number): void {
    this.events.push(`written ${end.id} ${n}`);
  }

  onLocalEnd(end: StreamEnd): void {
    this.events.push(`local-end ${end.id}`);
  }
}

/** The server role with nothing of the proxy: every valid stream is opened for `handler`. */
export class TestServer extends H2Connection {
  readonly opened = new Map<number, StreamEnd>();
  closedWhy: string | undefined;
  private lastId = 0;

  constructor(
    pipe: H2MemoryPipe,
    readonly handler: Recorder,
  ) {
    super(pipe, "server", MAX_HEADER_LIST);
    this.sendPrefaceSettings({ maxConcurrentStreams: 100 });
  }

  protected override onNewStreamHeaders(
    id: number,
    list: HeaderList,
    endStream: boolean,
    status: DecodeStatus,
  ): void {
    if (id % 2 === 0 || id <= this.lastId) {
      if (this.wasReset(id)) return;
      return this.connectionError("PROTOCOL_ERROR", "bad stream id");
    }
    this.lastId = id;
    const end = new StreamEnd(this, id, this.handler);
    this.register(end);
    this.opened.set(id, end);
    const refusal = this.acceptHeaders(end, list, endStream);
    if (status !== "ok" || refusal !== undefined) return this.resetStream(end, refusal ?? "PROTOCOL_ERROR");
    this.handler.onHeaders(end, list, endStream);
  }

  protected override onPeerSettings(): void {}
  protected override onGoaway(): void {}
  protected override onClosed(why: string): void {
    this.closedWhy = why;
  }
  protected override isIdle(id: number): boolean {
    return id % 2 === 1 ? id > this.lastId : true;
  }
  protected override lastPeerStreamId(): number {
    return this.lastId;
  }

  end(id: number): StreamEnd {
    const end = this.opened.get(id);
    assert.ok(end, `stream ${id} was opened`);
    return end;
  }
}

export function memoryServer(): { pipe: H2MemoryPipe; conn: TestServer; handler: Recorder } {
  const pipe = new H2MemoryPipe();
  const handler = new Recorder();
  const conn = new TestServer(pipe, handler);
  pipe.deliver(CLIENT_PREFACE, settingsFrame());
  const preface = pipe.take();
  assert.deepEqual(
    preface.map((f) => f.type),
    [FRAME.SETTINGS, FRAME.WINDOW_UPDATE, FRAME.SETTINGS],
  );
  return { pipe, conn, handler };
}

export const NO_EVENTS: UpstreamEvents = {
  onOpen: () => {},
  onStateChange: () => {},
  onStreamEnded: () => {},
};

export function memoryClient(settings: readonly (readonly [number, number])[] = []): {
  pipe: H2MemoryPipe;
  conn: UpstreamConnection;
  handler: Recorder;
} {
  const pipe = new H2MemoryPipe();
  const conn = new UpstreamConnection(pipe, MAX_HEADER_LIST, NO_EVENTS);
  pipe.deliver(settingsFrame(settings));
  pipe.take();
  assert.equal(conn.state, "open");
  return { pipe, conn, handler: new Recorder() };
}

export function requestList(): HeaderList {
  const l = new HeaderList();
  for (const [n, v] of REQUEST) l.add(n, v);
  return l;
}

export function fieldList(...pairs: [string, string][]): HeaderList {
  const l = new HeaderList();
  for (const [n, v] of pairs) l.add(n, v);
  return l;
}

export function headerBlock(headers: Fields): Buffer {
  return encodeHeaderBlock(headers);
}

/** The RST_STREAM and GOAWAY frames in `frames`, as "rst ID CODE" / "goaway CODE". */
export function errorFrames(frames: readonly PipeFrame[]): string[] {
  const out: string[] = [];
  for (const f of frames) {
    if (f.type === FRAME.RST_STREAM) out.push(`rst ${f.streamId} ${f.payload.readUInt32BE(0)}`);
    if (f.type === FRAME.GOAWAY) out.push(`goaway ${f.payload.readUInt32BE(4)}`);
  }
  return out;
}

export function windowUpdates(frames: readonly PipeFrame[]): [number, number][] {
  return frames
    .filter((f) => f.type === FRAME.WINDOW_UPDATE)
    .map((f) => [f.streamId, f.payload.readUInt32BE(0)]);
}
