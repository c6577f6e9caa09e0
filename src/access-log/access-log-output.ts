/**
 * The buffered, asynchronous writer behind the access log: lines are encoded into 4 KiB chunks of
 * whole lines, and each full chunk is one write, so the thread serving traffic does one write per
 * ten-odd lines and never waits for stdout. A chunk is at most PIPE_BUF (4096 bytes): a pipe writes it
 * atomically, so lines never interleave mid-line with the ordinary log's lines or with other worker
 * threads' chunks on the same stdout (a regular file does not interleave writes either).
 *
 * When stdout is a pipe or a socket (a container runtime, a log shipper, the bench) chunks go through
 * a libuv pipe handle: the write is tried at once without blocking, and queued by libuv only when the
 * pipe is full (one chunk at a time, so a queued write never merges chunks past PIPE_BUF). Otherwise
 * (a file, a terminal) each chunk is an asynchronous `fs.write` on libuv's thread pool. Measured on the
 * overhead bench's gRPC 8×16 row (bench/RESULTS.md, 2026-12-06): sonic-boom (`pino.destination({ sync:
 * false })`) cost +54 % CPU per RPC, these chunks through the thread pool about the same (a thread
 * hand-off per write), through the pipe handle within the 15 % bar.
 */
import { fstatSync, write as fsWrite, writeSync } from "node:fs";
import { Socket } from "node:net";

/** Most bytes of one write: PIPE_BUF on Linux. */
export const CHUNK_BYTES = 4096;
/**
 * Full chunks written together, back to back: the reader of the pipe wakes once for them rather
 * than once per chunk (a wake-up of another process costs more than the write on a VM).
 */
const BATCH_CHUNKS = 16;
/** Free chunks kept for reuse. */
const SPARE_CHUNKS = 24;
/** Full chunks waiting beyond which new lines are dropped (a stalled stdout must not grow memory). */
const MAX_QUEUED_CHUNKS = 1024;
/** Longest a shutdown flush may wait for a full stdout, over all chunks; the rest is dropped. */
const FLUSH_SYNC_MS = 1000;
/** After EAGAIN (a non-blocking stdout that is full), the next try. */
const RETRY_MS = 10;

export class ChunkedFdWriter {
  private chunk: Buffer;
  private used = 0;
  private readonly queue: { buf: Buffer; length: number }[] = [];
  private readonly spare: Buffer[] = [];
  private writing = false;
  private flushing = false;
  /** The pipe handle over `fd` when it is a pipe or a socket. */
  private readonly pipe: Socket | undefined;
  /** Chunks dropped because stdout did not keep up. */
  dropped = 0;
  /** The end of the current shutdown flush. */
  private flushDeadline = 0;

  constructor(private readonly fd: number) {
    this.chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
    this.pipe = openPipe(fd);
    this.pipe?.on("drain", () => this.pump());
  }

  /** Queues one line (ending with "\n"); a full chunk goes out at once, asynchronously. */
  write(line: string): void {
    // A UTF-16 unit is at most 3 UTF-8 bytes: below that bound no byte count is needed.
    let room = CHUNK_BYTES - this.used;
    if (line.length * 3 > room) {
      const bytes = Buffer.byteLength(line);
      if (bytes > room) {
        this.seal();
        room = CHUNK_BYTES;
        if (bytes > room) return this.enqueue(Buffer.from(line), bytes); // a huge line: its own write
      }
    }
    this.used += this.chunk.write(line, this.used);
    if (CHUNK_BYTES - this.used < 512) this.seal();
  }

  /** Starts writing what is pending (the timer). */
  flush(): void {
    this.flushing = true;
    this.seal();
    if (this.pipe) this.pump();
    else if (!this.writing) this.next(0);
    this.flushing = false;
  }

  /** Writes everything pending now, synchronously (shutdown). */
  flushSync(): void {
    this.seal();
    this.flushDeadline = Date.now() + FLUSH_SYNC_MS;
    if (this.pipe) {
      // A chunk libuv still holds (the pipe was full) is written by libuv if the loop runs on.
      for (const q of this.queue.splice(0)) this.writeAllSync(q.buf, q.length);
      return;
    }
    if (this.writing) {
      // The write in flight finishes on its own; what is queued behind it goes now.
      const queued = this.queue.splice(1);
      for (const q of queued) this.writeAllSync(q.buf, q.length);
      return;
    }
    for (const q of this.queue.splice(0)) this.writeAllSync(q.buf, q.length);
  }

  private seal(): void {
    if (this.used === 0) return;
    this.enqueue(this.chunk, this.used);
    this.chunk = this.spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
    this.used = 0;
  }

  private enqueue(buf: Buffer, length: number): void {
    if (this.queue.length >= MAX_QUEUED_CHUNKS) {
      this.dropped++;
      return;
    }
    this.queue.push({ buf, length });
    if (this.queue.length < BATCH_CHUNKS && !this.flushing) return;
    if (this.pipe) this.pump();
    else if (!this.writing) this.next(0);
  }

  /** Pipe handle: writes queued chunks while each goes out at once; a queued one waits for 'drain'. */
  private pump(): void {
    const pipe = this.pipe as Socket;
    while (pipe.writableLength === 0 && !pipe.destroyed) {
      const head = this.queue.shift();
      if (!head) return;
      pipe.write(head.length === head.buf.length ? head.buf : head.buf.subarray(0, head.length));
      // Written through (the usual case): nothing refers to the chunk any more.
      if (pipe.writableLength === 0 && head.buf.length === CHUNK_BYTES && this.spare.length < SPARE_CHUNKS)
        this.spare.push(head.buf);
    }
    if (pipe.destroyed) this.queue.length = 0;
  }

  /** Writes the head of the queue from `offset`. */
  private next(offset: number): void {
    const head = this.queue[0];
    if (!head) {
      this.writing = false;
      return;
    }
    this.writing = true;
    fsWrite(this.fd, head.buf, offset, head.length - offset, null, (err, n) => {
      if (err) {
        if (err.code === "EAGAIN") {
          setTimeout(() => this.next(offset), RETRY_MS).unref();
          return;
        }
        // stdout is gone (EPIPE, EBADF): the chunk is lost, later ones are tried.
        n = head.length - offset;
      }
      if (offset + n < head.length) return this.next(offset + n);
      this.queue.shift();
      if (head.buf.length === CHUNK_BYTES && this.spare.length < SPARE_CHUNKS) this.spare.push(head.buf);
      this.next(0);
    });
  }

  private writeAllSync(buf: Buffer, length: number): void {
    let offset = 0;
    let tries = 0;
    while (offset < length && tries < 100 && Date.now() < this.flushDeadline) {
      try {
        offset += writeSync(this.fd, buf, offset, length - offset);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") return;
        tries++;
        pause();
      }
    }
  }
}

/** A libuv pipe handle over `fd` when it is a pipe or a socket (never closed: libuv keeps stdio open). */
function openPipe(fd: number): Socket | undefined {
  try {
    const stat = fstatSync(fd);
    if (!stat.isFIFO() && !stat.isSocket()) return undefined;
    const socket = new Socket({ fd, readable: false, writable: true });
    socket.on("error", noop);
    socket.unref();
    return socket;
  } catch {
    return undefined;
  }
}

/** Blocks the thread for RETRY_MS (shutdown only). */
function pause(): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, RETRY_MS);
}

function noop(): void {}
