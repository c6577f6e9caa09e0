/**
 * A lane is where the load generator sends one request: a unary call on one of the connections, or
 * one message on a long-lived bidi stream (the echo answers in order, so a FIFO of send times gives
 * each message's latency). Both report `(status, sentAtMs)` once per request.
 */
import { constants as h2, type ClientHttp2Stream } from "node:http2";
import { MessageCounter, type CallOptions, type GrpcConnection } from "./loadgen-client.js";

export type Report = (status: number, sentAtMs: number) => void;

export interface Lane {
  /** Sends one request; `intendedAtMs` is when it should have been sent (open loop), for latency. */
  send(intendedAtMs: number): void;
  /** Ends the lane's stream (stream lanes); pending requests then report their final status. */
  close(): void;
}

export function unaryLane(conn: GrpcConnection, o: CallOptions, message: Buffer, report: Report): Lane {
  return {
    send(intendedAtMs) {
      conn.call(o, message, (outcome) => report(outcome.status, intendedAtMs));
    },
    close() {},
  };
}

export function streamLane(conn: GrpcConnection, o: CallOptions, message: Buffer, report: Report): Lane {
  const pending: number[] = [];
  let stream: ClientHttp2Stream | undefined;
  let status = -1;
  const counter = new MessageCounter();
  const open = (): ClientHttp2Stream => {
    const s = conn.open({ ...o, deadlineMs: 3_600_000 });
    s.on("trailers", (t: Record<string, unknown>) => (status = Number(t["grpc-status"] ?? -1)));
    s.on("response", (hd: Record<string, unknown>) => {
      if (hd["grpc-status"] !== undefined) status = Number(hd["grpc-status"]);
    });
    s.on("data", (chunk: Buffer) => {
      const n = counter.push(chunk);
      for (let i = 0; i < n; i++) {
        const sentAt = pending.shift();
        if (sentAt !== undefined) report(0, sentAt);
      }
    });
    s.on("error", () => undefined);
    s.on("close", () => {
      // Anything unanswered when the stream ends failed with the stream's status (or as reset).
      for (const sentAt of pending.splice(0)) report(status === 0 ? -1 : status, sentAt);
      if (stream === s) stream = undefined;
    });
    return s;
  };
  return {
    send(intendedAtMs) {
      stream ??= open();
      pending.push(intendedAtMs);
      stream.write(message);
    },
    close() {
      const s = stream;
      if (!s) return;
      s.end();
      setTimeout(() => s.close(h2.NGHTTP2_CANCEL), o.deadlineMs).unref();
    },
  };
}
