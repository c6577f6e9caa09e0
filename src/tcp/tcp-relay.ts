/**
 * Relays bytes between a downstream connection and its upstream connection, both ways, without
 * `stream.pipe()`: a FIN in one direction is passed on as a FIN (half-close: a reply sent after the
 * client's FIN still arrives), a reset is passed on as a reset, an error on either side tears down
 * both, and `released` runs exactly once, after both sockets have closed. A bare
 * `a.pipe(b); b.pipe(a)` leaks both sockets when one of them resets.
 *
 * Why not `pipe()`: it is not the piping that costs, it is the memory. Every socket read gets a fresh
 * 64 KiB ArrayBuffer; the garbage collector frees them in batches of megabytes, glibc then trims its
 * heap and the next reads regrow it, so the kernel faults in fresh pages for nearly every byte read.
 * Measured with iperf3 through Fulcrum (bench/RESULTS.md, "Lean TCP path"): 110k–220k page faults
 * and 2.3–4.6 s of CPU per GiB with `pipe()`, against 1k–2k faults and 0.9–1.1 s here (HAProxy:
 * 1.1–1.2 s). Two remedies, one per direction:
 * - client → upstream: Node 22's `net.Server` cannot give accepted sockets an `onread`, so these
 *   bytes come as `'data'` chunks. Each is written straight on, with `pipe()`'s backpressure, and
 *   once the upstream socket has taken it whole (no pending write refers to it) its ArrayBuffer is
 *   freed at once (`freeNow`), so the next read reuses the same block;
 * - upstream → client: the upstream socket reads into memory the relay owns (`onread`). At first
 *   that is one landing buffer shared by every connection of the thread, so an idle or chatty
 *   connection holds no read buffer of its own. Reads are synchronous, and with nothing queued on
 *   the client socket its write goes to the kernel at once: the landing buffer itself is written,
 *   no copy, no allocation. Should the kernel take only part of it, the pending write keeps that
 *   landing buffer and the thread takes a new one; with writes already queued the bytes are copied
 *   into a chunk of their own. (Copying every reply into slices of Node's 8 KiB Buffer pool, as
 *   before, cost RSS under load: a slice carried into the old generation holds its whole slab until
 *   a full GC, and once one came late glibc kept the memory — the saturated soak, +16 MiB.) After
 *   one read of `BULK_READ_BYTES` or more the connection gets its own
 *   ring of two buffers, written on without a copy. A slot is reused only once the client socket has
 *   flushed the write made from it; with both slots in flight upstream reading stops until one is
 *   flushed, so a slow client holds the upstream back with at most 128 KiB in flight. Measured with
 *   iperf3 -R: 0.8–0.9 s of CPU per GiB against 1.1 s for the same path with `'data'` chunks.
 */
import type { OnReadOpts, Socket } from "node:net";

/** One read's worth: libuv asks for 64 KiB per stream read, so this is what `pipe()` reads too. */
const READ_BYTES = 64 * 1024;
/** An upstream read at least this large marks a bulk transfer: the connection gets its own ring. */
const BULK_READ_BYTES = 16 * 1024;
const RING_SLOTS = 2;

/**
 * Shared by every relay of this thread. Replaced when a pending write keeps it (see `fromLanding`),
 * so a read never lands in memory that a write still refers to.
 */
let landing = Buffer.allocUnsafeSlow(READ_BYTES);

export interface RelayHooks {
  /** Runs once, after both sockets have closed. */
  readonly released: () => void;
  /**
   * Runs once, at the first error; `upstreamFault` when the upstream side reset or failed, `reset`
   * when that side's error was a reset (ECONNRESET).
   */
  readonly failed: (upstreamFault: boolean, reset: boolean) => void;
}

type Stopped = "no" | "drain" | "slot";

export class TcpRelay {
  /** Give this to every upstream connect attempt: its reads land where the relay says. */
  readonly onread: OnReadOpts;
  private upstream: Socket | undefined;
  private ring: Buffer[] | undefined;
  /** Per slot: `queued` after its last write; the slot is free once that much has been flushed. */
  private ringEnds: number[] = [];
  private slot = 0;
  /** Bytes handed to `client.write` so far; minus `client.writableLength`, the bytes flushed. */
  private queued = 0;
  private stopped: Stopped = "no";
  /** A FIN has come in and is to be passed on once this turn of the event loop has polled. */
  private finPending = false;
  private hooks: RelayHooks | undefined;
  private closedCount = 0;
  private torn = false;

  constructor(private readonly client: Socket) {
    this.onread = {
      buffer: () => (this.ring ? (this.ring[this.slot] as Buffer) : landing),
      callback: (n) => (this.ring ? this.fromRing(n) : this.fromLanding(n)),
    };
  }

  /** Starts relaying once `upstream` (created with `this.onread`) is connected. */
  start(upstream: Socket, hooks: RelayHooks): void {
    const client = this.client;
    this.upstream = upstream;
    this.hooks = hooks;
    client.on("data", (chunk: Buffer) => {
      const more = upstream.write(chunk);
      if (upstream.writableLength === 0) freeNow(chunk);
      if (!more) client.pause();
    });
    upstream.on("drain", () => client.resume());
    client.on("drain", () => this.resumeUpstream("drain"));
    client.on("end", this.ended);
    upstream.on("end", this.ended);
    client.on("error", (err: NodeJS.ErrnoException) => this.teardown(false, err));
    upstream.on("error", (err: NodeJS.ErrnoException) => this.teardown(true, err));
    client.on("close", () => this.closed(client, upstream));
    upstream.on("close", () => this.closed(upstream, client));
    client.resume();
  }

  /**
   * A side sent its FIN: pass it on, but only after the rest of this poll's events, which often hold
   * the other side's FIN too (a request/response peer closes as soon as it has the reply). With both
   * read sides ended and nothing left to write, both sockets are closed at once — `close()` sends the
   * FIN after the bytes the kernel still holds, as HAProxy does — saving a `shutdown()` per socket;
   * otherwise the FIN goes on with `end()`, after the bytes still queued.
   */
  private readonly ended = (): void => {
    if (this.finPending) return;
    this.finPending = true;
    setImmediate(this.passFins);
  };

  private readonly passFins = (): void => {
    this.finPending = false;
    const client = this.client;
    const upstream = this.upstream as Socket;
    if (client.readableEnded && upstream.readableEnded && flushed(client) && flushed(upstream)) {
      client.destroy();
      upstream.destroy();
      return;
    }
    if (client.readableEnded && !upstream.writableEnded && !upstream.destroyed) upstream.end();
    if (upstream.readableEnded && !client.writableEnded && !client.destroyed) client.end();
  };

  /** An upstream read in the shared landing buffer: written from there, or copied out when queued. */
  private fromLanding(n: number): boolean {
    const client = this.client;
    if (client.destroyed) return false; // torn down: the close handlers end the upstream too
    if (n >= BULK_READ_BYTES) {
      this.ring = Array.from({ length: RING_SLOTS }, () => Buffer.allocUnsafeSlow(READ_BYTES));
      this.ringEnds = this.ring.map(() => 0);
    }
    this.queued += n;
    // No write callback here: without one, Node 22 skips a nextTick per synchronous write.
    let more: boolean;
    if (client.writableLength === 0) {
      more = client.write(landing.subarray(0, n));
      if (client.writableLength !== 0) landing = Buffer.allocUnsafeSlow(READ_BYTES);
    } else {
      const chunk = Buffer.allocUnsafeSlow(n);
      landing.copy(chunk, 0, 0, n);
      more = client.write(chunk);
    }
    if (more) return true;
    this.stopped = "drain";
    return false;
  }

  /** An upstream read in the connection's own slot: written on as it is, no copy. */
  private fromRing(n: number): boolean {
    const client = this.client;
    if (client.destroyed) return false; // torn down: the close handlers end the upstream too
    const ring = this.ring as Buffer[];
    const slot = ring[this.slot] as Buffer;
    this.queued += n;
    this.ringEnds[this.slot] = this.queued;
    client.write(n === READ_BYTES ? slot : slot.subarray(0, n), this.onFlushed);
    // Written through to the kernel at once (the usual case): the same slot takes the next read.
    if (client.writableLength === 0) return true;
    this.slot = (this.slot + 1) % RING_SLOTS;
    if (this.slotFree()) return true;
    this.stopped = "slot";
    return false;
  }

  private slotFree(): boolean {
    return this.queued - this.client.writableLength >= (this.ringEnds[this.slot] as number);
  }

  /** Every write from a ring slot reports here: a stop for a busy slot may end. */
  private readonly onFlushed = (): void => {
    if (this.stopped === "slot" && this.slotFree()) this.resumeUpstream("slot");
  };

  private resumeUpstream(reason: Stopped): void {
    if (this.stopped !== reason) return;
    this.stopped = "no";
    if (this.upstream && !this.upstream.destroyed) this.upstream.resume();
  }

  private teardown(upstreamFault: boolean, err: NodeJS.ErrnoException): void {
    if (this.torn) return;
    this.torn = true;
    this.hooks?.failed(upstreamFault, err.code === "ECONNRESET");
    const upstream = this.upstream as Socket;
    const other = upstreamFault ? this.client : upstream;
    const self = upstreamFault ? upstream : this.client;
    // Pass a reset on as a reset, so the peer learns the connection was aborted, not finished. Not
    // once that socket's FIN is under way: libuv refuses to reset it (EINVAL) and Node then never
    // closes the handle, so "close" would never come and the endpoint would never be released.
    if (err.code === "ECONNRESET" && !other.destroyed && !other.writableEnded) other.resetAndDestroy();
    else other.destroy();
    self.destroy();
  }

  /**
   * `gone` has closed, so nothing more can be delivered to it: `other` closes too, at once if `gone`
   * was cut off without a FIN or nothing is left to write to `other`, else once the bytes `gone` sent
   * before its FIN are flushed (its FIN is passed on here if `passFins` has not yet done so).
   */
  private closed(gone: Socket, other: Socket): void {
    if (++this.closedCount === 2) this.hooks?.released();
    if (other.destroyed) return;
    if (!gone.readableEnded || flushed(other)) return void other.destroy();
    if (!other.writableEnded) other.end();
    other.once("finish", () => other.destroy());
  }
}

/** True when `socket` holds no bytes of ours that the kernel has not taken (or is gone). */
function flushed(socket: Socket): boolean {
  return socket.destroyed || socket.writableLength === 0;
}

/** `ArrayBuffer.prototype.transfer` (ES2024, in Node 22), beyond this project's ES2023 typings. */
interface TransferableBuffer {
  readonly byteLength: number;
  transfer?: (length: number) => ArrayBuffer;
}

/**
 * Frees a chunk's memory now rather than at the next garbage collection (see the file comment). Only
 * for a chunk the socket has written through synchronously: a pending write keeps a reference. Node
 * 22 gives each socket read its own ArrayBuffer; a chunk that does not span its whole ArrayBuffer (a
 * small Buffer on a pooled slab, a slice) is left alone, since others may share that memory.
 */
function freeNow(chunk: Buffer): void {
  const backing = chunk.buffer as TransferableBuffer;
  if (chunk.byteOffset === 0 && chunk.byteLength === backing.byteLength) backing.transfer?.(0);
}
