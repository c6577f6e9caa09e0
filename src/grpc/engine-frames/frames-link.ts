/**
 * What a `frames` connection runs over, so that it owns no socket: a byte sink it writes to, the
 * events it is fed (bytes received, the peer's end, the sink drained, the link lost), and timers.
 * frames-socket-link.ts puts a TCP or TLS socket behind it; tests put an in-memory pipe with a fake
 * clock, and drive a connection frame by frame.
 */
import { performance } from "node:perf_hooks";

/** Where a connection's bytes go. A net.Socket's own methods have these shapes. */
export interface ByteSink {
  /** Queues `chunk`; false when the sink asks the writer to wait for `drained()`. */
  write(chunk: Buffer): boolean;
  /** Between `cork` and `uncork`, writes are gathered into one (a writev). */
  cork(): void;
  uncork(): void;
  /** Octets written and not yet handed on (to the kernel): what congestion is measured by. */
  readonly backlog: number;
  /** Closed: writes go nowhere. */
  readonly closed: boolean;
  /** The connection is done: what was written still leaves, then the sink closes (bounded in time). */
  end(): void;
}

/** A handle of `Timers.setTimeout`. */
export type TimerHandle = object;

/** The clock a connection uses. Timers do not keep the process alive. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  /** Runs `fn` once this turn of the event loop is over (the output's one write per turn). */
  setImmediate(fn: () => void): void;
  /** Milliseconds, monotonic. */
  now(): number;
}

/** The events a connection is fed. */
export interface LinkInput {
  /** Bytes from the peer (a chunk the caller never writes over afterwards). */
  receive(chunk: Buffer): void;
  /** The peer ended its side (TCP FIN): no more bytes will come. */
  peerEnded(): void;
  /** The sink wrote out its backlog: writing may resume. */
  drained(): void;
  /** The link failed or closed under the connection. */
  lost(why: string): void;
}

/** One connection's link: its sink, its clock, and where its events come from. */
export interface ConnectionLink {
  readonly sink: ByteSink;
  readonly timers: Timers;
  /** The peer's address, when the link has one. */
  readonly remoteAddress: string | undefined;
  /** Starts feeding `input`; called once, by the connection's constructor. */
  attach(input: LinkInput): void;
}

/** Node's timers, unref'd. */
export const NODE_TIMERS: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
  setImmediate: (fn) => {
    setImmediate(fn);
  },
  now: () => performance.now(),
};
