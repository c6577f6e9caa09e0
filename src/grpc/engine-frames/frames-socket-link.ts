/**
 * A TCP or TLS socket as a `frames` connection's link (frames-link.ts): the socket is the byte sink,
 * its events feed the connection, and the end of a connection lets queued bytes leave before FIN,
 * with a timer that bounds a peer that does not read.
 */
import type { Socket } from "node:net";
import {
  NODE_TIMERS,
  type ByteSink,
  type ConnectionLink,
  type LinkInput,
  type Timers,
} from "./frames-link.js";

/** How long an ended connection waits for its queued bytes to leave before the socket is destroyed. */
const END_TIMEOUT_MS = 1000;

export class SocketLink implements ConnectionLink, ByteSink {
  readonly timers: Timers = NODE_TIMERS;

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
  }

  get sink(): ByteSink {
    return this;
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  attach(input: LinkInput): void {
    const socket = this.socket;
    socket.on("data", (chunk: Buffer) => input.receive(chunk));
    socket.on("drain", () => input.drained());
    socket.on("error", () => input.lost("socket error"));
    socket.on("close", () => input.lost("socket closed"));
    socket.on("end", () => input.peerEnded());
  }

  write(chunk: Buffer): boolean {
    return this.socket.write(chunk);
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  get backlog(): number {
    return this.socket.writableLength;
  }

  get closed(): boolean {
    return this.socket.destroyed;
  }

  end(): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    if (socket.writableLength === 0) {
      socket.destroy();
      return;
    }
    // Let the queued bytes leave, then FIN; the timer bounds a peer that does not read.
    if (!socket.writableEnded) socket.end();
    setTimeout(() => socket.destroy(), END_TIMEOUT_MS).unref();
  }
}
