/**
 * The load generator's gRPC client on raw `node:http2` (no protobuf, no grpc-js: a Node client must
 * cost as little CPU per call as possible). Requests carry an already framed message; the answer's
 * status comes from the trailers (or the headers of a trailers-only response); response messages are
 * counted from their 5-byte prefixes. A local deadline timer cancels a call that the server did not
 * end in time, so an overloaded target can never hold the run.
 */
import { connect, constants as h2, type ClientHttp2Session, type ClientHttp2Stream } from "node:http2";

/** gRPC status, or -1 when the stream failed below gRPC (reset, lost connection). */
export interface CallOutcome {
  readonly status: number;
  readonly messages: number;
}

export const DEADLINE_EXCEEDED = 4;

export interface CallOptions {
  readonly path: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Sent as `grpc-timeout` and enforced locally (a little later, so the server's answer wins). */
  readonly deadlineMs: number;
}

/** Counts whole gRPC messages in a DATA stream split at any byte. */
export class MessageCounter {
  private need = 5;
  private header = true;
  private prefix = Buffer.alloc(5);
  private got = 0;
  messages = 0;

  push(chunk: Buffer): number {
    let i = 0;
    let completed = 0;
    while (i < chunk.length) {
      const take = Math.min(this.need, chunk.length - i);
      if (this.header) chunk.copy(this.prefix, this.got, i, i + take);
      this.got += take;
      this.need -= take;
      i += take;
      if (this.need > 0) break;
      if (this.header) {
        this.header = false;
        this.need = this.prefix.readUInt32BE(1);
        this.got = 0;
      }
      if (!this.header && this.need === 0) {
        this.header = true;
        this.need = 5;
        this.got = 0;
        completed++;
      }
    }
    this.messages += completed;
    return completed;
  }
}

export class GrpcConnection {
  private constructor(readonly session: ClientHttp2Session) {}

  static connect(address: string): Promise<GrpcConnection> {
    return new Promise((resolve, reject) => {
      const session = connect(`http://${address}`, {
        settings: { initialWindowSize: 4 * 1024 * 1024, enablePush: false },
        maxSessionMemory: 256,
      });
      session.once("error", reject);
      session.once("connect", () => {
        session.off("error", reject);
        session.on("error", () => undefined);
        session.setLocalWindowSize(32 * 1024 * 1024);
        resolve(new GrpcConnection(session));
      });
    });
  }

  /** Opens a stream with gRPC request headers; the caller writes messages and ends it. */
  open(o: CallOptions): ClientHttp2Stream {
    return this.session.request({
      ":method": "POST",
      ":path": o.path,
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": `${Math.max(1, Math.round(o.deadlineMs))}m`,
      ...o.metadata,
    });
  }

  /** One unary call; `done` is called exactly once. `onMessage` sees each response message. */
  call(
    o: CallOptions,
    message: Buffer,
    done: (outcome: CallOutcome) => void,
    onMessage?: () => void,
  ): ClientHttp2Stream {
    const stream = this.open(o);
    let status = -1;
    let finished = false;
    const counter = new MessageCounter();
    const finish = (s: number): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      done({ status: s, messages: counter.messages });
    };
    const timer = setTimeout(() => {
      finish(DEADLINE_EXCEEDED);
      stream.close(h2.NGHTTP2_CANCEL);
    }, o.deadlineMs + 250);
    const readStatus = (headers: Record<string, unknown>): void => {
      const s = headers["grpc-status"];
      if (s !== undefined) status = Number(s);
    };
    stream.on("response", readStatus);
    stream.on("trailers", readStatus);
    stream.on("data", (chunk: Buffer) => {
      const n = counter.push(chunk);
      for (let i = 0; i < n; i++) onMessage?.();
    });
    stream.on("error", () => undefined);
    stream.on("close", () => finish(status));
    stream.end(message);
    return stream;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.session.closed || this.session.destroyed) return resolve();
      const t = setTimeout(() => {
        this.session.destroy();
        resolve();
      }, 2000);
      this.session.close(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
