/**
 * A worker that speaks HTTP/2 frame by frame on node:net (h2c), for answers node:http2 refuses to
 * send: connection-specific fields in a response (RFC 9113 §8.2.2), upper-case field names, a
 * pseudo-header in trailers, a `:status` without `grpc-status`. Each stream is answered with the
 * `RawAnswer` its `:path` selects, written as given (HEADERS, optional DATA, optional trailers), and
 * recorded like `RecordingWorker` records it. It acks SETTINGS and PINGs and ignores everything else;
 * requests are small, so its receive windows never run out.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { RecordedStream } from "./grpc-recording-worker.js";
import {
  CLIENT_PREFACE,
  FLAG,
  FRAME,
  HpackDecoder,
  dataFrame,
  encodeHeaderBlock,
  headersFrame,
  pingFrame,
  settingsAckFrame,
  settingsFrame,
  type HeaderList,
} from "./h2-frames-client.js";

export interface RawAnswer {
  readonly headers: HeaderList;
  /** The body (already gRPC-framed); absent: no DATA frame. */
  readonly data?: Buffer;
  /** Trailers; absent: the last frame before them carries END_STREAM. */
  readonly trailers?: HeaderList;
}

interface StreamState {
  readonly record: RecordedStream;
  readonly path: string;
}

export class H2RawWorker {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** One per open connection: sends a PING and resolves on its ACK (or after `timeoutMs`). */
  private readonly pings = new Set<(timeoutMs: number) => Promise<void>>();
  private records: RecordedStream[] = [];
  private boundPort = 0;

  /** `answer(path)`: what to send back on a stream whose request had that `:path`. */
  constructor(private readonly answer: (path: string) => RawAnswer) {
    this.server = createServer((socket) => this.onSocket(socket));
  }

  get address(): string {
    return `127.0.0.1:${this.boundPort}`;
  }

  listen(): Promise<void> {
    return new Promise((resolve) => {
      this.server.listen(0, "127.0.0.1", () => {
        this.boundPort = (this.server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  /**
   * The streams that arrived since the last call. Each was answered at once; a PING round trip on
   * every connection first lets a RST_STREAM that Fulcrum sent in reply to an answer arrive.
   */
  async take(timeoutMs = 1000): Promise<RecordedStream[]> {
    await Promise.all([...this.pings].map((ping) => ping(timeoutMs)));
    const taken = this.records;
    this.records = [];
    return taken;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private onSocket(socket: Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    socket.on("error", () => {});
    socket.setNoDelay(true);
    socket.write(settingsFrame([]));
    const decoder = new HpackDecoder();
    let pingCount = 0;
    const pingWaiters = new Map<string, () => void>();
    const ping = (timeoutMs: number): Promise<void> =>
      new Promise((resolve) => {
        const data = Buffer.alloc(8);
        data.writeUInt32BE(++pingCount, 4);
        const done = (): void => {
          clearTimeout(timer);
          pingWaiters.delete(data.toString("hex"));
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        pingWaiters.set(data.toString("hex"), done);
        socket.write(pingFrame(data));
      });
    this.pings.add(ping);
    socket.once("close", () => {
      this.pings.delete(ping);
      for (const done of [...pingWaiters.values()]) done();
    });
    const streams = new Map<number, StreamState>();
    let buffered = Buffer.alloc(0);
    let prefaceSeen = false;
    // A header block split over CONTINUATION frames is gathered here until END_HEADERS.
    let block: { id: number; fragments: Buffer[]; endStream: boolean } | undefined;

    const finishBlock = (id: number, fragments: Buffer[], endStream: boolean): void => {
      const fields = decoder.decode(Buffer.concat(fragments));
      let s = streams.get(id);
      if (!s) {
        s = {
          record: {
            headers: fields,
            data: [],
            trailers: undefined,
            endStream: false,
            closed: false,
            rstCode: 0,
            connectionClosedByScript: false,
          },
          path: fields.find(([n]) => n === ":path")?.[1] ?? "",
        };
        streams.set(id, s);
        this.records.push(s.record);
      } else {
        s.record.trailers = fields;
      }
      if (endStream) respond(id, s);
    };

    const respond = (id: number, s: StreamState): void => {
      s.record.endStream = true;
      s.record.closed = true;
      const a = this.answer(s.path);
      const out = [headersFrame(id, encodeHeaderBlock(a.headers), { endStream: !a.data && !a.trailers })];
      if (a.data) out.push(dataFrame(id, a.data, { endStream: !a.trailers }));
      if (a.trailers) out.push(headersFrame(id, encodeHeaderBlock(a.trailers), { endStream: true }));
      socket.write(Buffer.concat(out));
    };

    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!prefaceSeen) {
        if (buffered.length < CLIENT_PREFACE.length) return;
        prefaceSeen = true;
        buffered = buffered.subarray(CLIENT_PREFACE.length);
      }
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) break;
        const type = buffered.readUInt8(3);
        const flags = buffered.readUInt8(4);
        const id = buffered.readUInt32BE(5) & 0x7fffffff;
        let payload = buffered.subarray(9, 9 + length);
        buffered = buffered.subarray(9 + length);
        if ((flags & FLAG.PADDED) !== 0 && (type === FRAME.DATA || type === FRAME.HEADERS))
          payload = payload.subarray(1, payload.length - (payload[0] ?? 0));
        const endStream = (flags & FLAG.END_STREAM) !== 0;
        switch (type) {
          case FRAME.SETTINGS:
            if ((flags & FLAG.ACK) === 0) socket.write(settingsAckFrame());
            break;
          case FRAME.PING:
            if ((flags & FLAG.ACK) === 0) socket.write(pingFrame(payload, true));
            else pingWaiters.get(payload.toString("hex"))?.();
            break;
          case FRAME.HEADERS: {
            const fragment = (flags & FLAG.PRIORITY) !== 0 ? payload.subarray(5) : payload;
            if ((flags & FLAG.END_HEADERS) !== 0) finishBlock(id, [fragment], endStream);
            else block = { id, fragments: [fragment], endStream };
            break;
          }
          case FRAME.CONTINUATION:
            if (!block) break;
            block.fragments.push(payload);
            if ((flags & FLAG.END_HEADERS) !== 0) {
              const b = block;
              block = undefined;
              finishBlock(b.id, b.fragments, b.endStream);
            }
            break;
          case FRAME.DATA: {
            const s = streams.get(id);
            if (!s) break;
            s.record.data.push(Buffer.from(payload));
            if (endStream) respond(id, s);
            break;
          }
          case FRAME.RST_STREAM: {
            // Recorded even after the answer: Fulcrum may reset a stream whose answer it refused.
            const s = streams.get(id);
            if (s) {
              s.record.closed = true;
              s.record.rstCode = payload.readUInt32BE(0);
            }
            break;
          }
          default:
            break;
        }
      }
    });
  }
}
