/**
 * In-process TCP peers for the bad-input tests, where Fulcrum is the only other process: workers
 * (an echo that records the SHA-256 of what each connection brought, a source that pushes a fixed
 * amount) and small client operations.
 */
import { createHash } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";

/** What the recording worker saw on one connection. */
export interface Received {
  readonly bytes: number;
  readonly sha256: string;
  /** True when the client's FIN arrived (false: the connection was reset or destroyed). */
  readonly ended: boolean;
}

/** An echo worker that also records the SHA-256 of each connection's bytes, in connection order. */
export function recordingEchoWorker(): { server: Server; received: Received[] } {
  const received: Received[] = [];
  const server = tracked(
    createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      const hash = createHash("sha256");
      let bytes = 0;
      let ended = false;
      socket.on("data", (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      socket.once("end", () => (ended = true));
      socket.on("error", () => socket.destroy());
      socket.once("close", () => received.push({ bytes, sha256: hash.digest("hex"), ended }));
      socket.pipe(socket);
    }),
  );
  return { server, received };
}

/**
 * A worker that sends `total` bytes, `pattern` repeated, to each connection, honouring backpressure;
 * `progress.accepted` is how much of it the kernel has taken so far.
 */
export function sourceWorker(
  total: number,
  pattern: Buffer,
): { server: Server; progress: { accepted: number; done: boolean } } {
  const progress = { accepted: 0, done: false };
  const server = tracked(
    createServer({ noDelay: true }, (socket) => {
      socket.on("error", () => socket.destroy());
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          sent += pattern.length;
          if (!socket.write(pattern)) break;
        }
        // What the kernel took: written minus what still waits in Node's buffer.
        progress.accepted = sent - socket.writableLength;
        if (sent >= total) socket.end(() => (progress.done = true));
      };
      socket.on("drain", pump);
      pump();
      const timer = setInterval(() => (progress.accepted = sent - socket.writableLength), 50);
      socket.once("close", () => clearInterval(timer));
    }),
  );
  return { server, progress };
}

/** Binds 127.0.0.1 port 0; resolves with the port. */
export function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
  );
}

/** Stops listening and destroys what is still connected. */
export function closeServer(server: Server): Promise<void> {
  const open = (server as Server & { tracked?: Set<Socket> }).tracked ?? new Set<Socket>();
  for (const s of open) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A server that remembers its open connections, for closeServer. */
function tracked(server: Server): Server {
  const open = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    open.add(s);
    s.once("close", () => open.delete(s));
  });
  return Object.assign(server, { tracked: open });
}

/** Connects to 127.0.0.1:`port`; resolves once connected. */
export function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, noDelay: true });
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Resolves when the socket has closed (at once if it has). */
export function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.closed) return resolve();
    socket.once("close", () => resolve());
  });
}

/** Writes one byte and resolves with what comes back first (rejects when the socket closes). */
export function echoByte(socket: Socket, byte: number, timeoutMs = 5000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error("no echo within timeout")), timeoutMs);
    const onData = (d: Buffer): void => done(undefined, d[0]);
    const onClose = (): void => done(new Error("closed before the echo"));
    function done(err: Error | undefined, value?: number): void {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.pause();
      if (err) reject(err);
      else resolve(value as number);
    }
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.resume();
    socket.write(Buffer.of(byte));
  });
}

/** Connects and reports how the server ended a connection the client never wrote to. */
export function refusedConnection(port: number): Promise<{ end: string; bytes: number; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    let bytes = 0;
    let end = "still_open";
    const socket = connect({ host: "127.0.0.1", port });
    socket.on("data", (d: Buffer) => (bytes += d.length));
    socket.once("end", () => (end = "fin"));
    socket.on("error", (err: NodeJS.ErrnoException) => (end = err.code ?? "error"));
    const timer = setTimeout(() => socket.destroy(), 3000);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve({ end, bytes, ms: Date.now() - started });
    });
  });
}
