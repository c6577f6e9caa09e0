/**
 * One sequence of the differential test of the two gRPC engines (grpc-engine-differential.test.ts)
 * and the clients a sequence drives: the raw frame client (h2-frames-client.ts), which writes every
 * header and frame as a sequence states it, and grpc-js for real calls. Each returns what its client
 * received, as a plain value to compare (differential-views.ts).
 */
import * as grpc from "@grpc/grpc-js";
import {
  DATE_MASK,
  connectionView,
  describeBytes,
  metadataLines,
  streamView,
  type Masks,
} from "./differential-views.js";
import { metadataOf } from "./grpc-client.js";
import {
  FRAME,
  H2FramesClient,
  SETTING,
  dataFrame,
  grpcRequestHeaders,
  windowUpdateFrame,
  type HeaderList,
} from "./h2-frames-client.js";

/** The `:authority` of every request (raw and grpc-js), so no listener port reaches the worker. */
export const AUTHORITY = "differential.test";
export const PATH = "/test.Diff/Call";
const MAX_WINDOW = 2 ** 31 - 1;
const DEFAULT_WINDOW = 65_535;
/** How long a raw client waits for a stream to end before it reports the frames it has. */
export const STREAM_WAIT_MS = 5000;

/** Request messages of several shapes: short text, 300 bytes, bytes that are not text. */
export const MESSAGES = [Buffer.from("first"), Buffer.alloc(300, 0x61), Buffer.from([0, 1, 2, 0xff])];

/** One Fulcrum of the pair. */
export interface Side {
  /** A grpc-js channel on listener `g` (`:authority` = AUTHORITY). */
  readonly grpc: grpc.Client;
}

export interface Sequence {
  readonly name: string;
  /**
   * The listener: `g` (the recording worker, default), `none` (no healthy endpoint), `dead` (refuses
   * connections), `explain` (the recording worker, `explain: true`), `raw` (the raw-frames worker).
   */
  readonly listener?: "g" | "none" | "dead" | "explain" | "raw";
  /** Masks for the worker's view of request fields (DATE_MASK by default). */
  readonly workerMasks?: Masks;
  /** Concurrent streams: the worker's records are compared in sorted order, not arrival order. */
  readonly unorderedWorker?: boolean;
  /** Sends the sequence to `target` and returns what the client received. */
  run(target: { host: string; port: number }, side: Side): Promise<unknown>;
}

// ---------------------------------------------------------------------------------------------------
// Raw client sequences (h2-frames-client: every header and frame as written here)

/** Request headers of a call on PATH with script `script`, plus `extra`. */
export function request(script: string, extra: HeaderList = [], path = PATH): [string, string][] {
  return grpcRequestHeaders(AUTHORITY, path, [["x-script", script], ...extra]);
}

interface RawOptions {
  /** Wait for each stream's END_STREAM or RST_STREAM (false when the client reset them itself). */
  readonly awaitEnd?: boolean;
}

/**
 * Connects a raw client with the largest receive windows (so a 1 MiB answer never waits on the
 * client's flow control), runs `send` (it writes its frames and returns the stream ids to report),
 * waits for those streams to end and for a PING round trip (anything sent after them arrives first),
 * and returns every frame of each stream and the connection's state.
 */
export async function raw(
  target: { host: string; port: number },
  send: (c: H2FramesClient) => number[] | Promise<number[]>,
  options: RawOptions = {},
): Promise<unknown> {
  const c = await H2FramesClient.connect(target, { settings: [[SETTING.INITIAL_WINDOW_SIZE, MAX_WINDOW]] });
  try {
    c.write(windowUpdateFrame(0, MAX_WINDOW - DEFAULT_WINDOW));
    await c.handshake();
    const ids = await send(c);
    if (options.awaitEnd ?? true)
      for (const id of ids) await c.waitForStreamEnd(id, STREAM_WAIT_MS).catch(() => undefined);
    await c.ping(undefined, 2000).catch(() => undefined);
    const streams: Record<string, unknown> = {};
    for (const id of ids) streams[`stream ${id}`] = streamView(c, id);
    return { streams, connection: connectionView(c) };
  } finally {
    await c.destroy();
  }
}

/** One request: HEADERS, then one DATA frame with `message` and END_STREAM. */
export function call(
  headers: HeaderList,
  message: Buffer<ArrayBuffer> = Buffer.from("hello"),
): (c: H2FramesClient) => number[] {
  return (c) => {
    const id = c.newStreamId();
    c.sendGrpcRequest(id, headers, message);
    return [id];
  };
}

/** `bytes` as DATA frames of at most 16 KiB (the initial SETTINGS_MAX_FRAME_SIZE), the last ending the stream. */
export function dataFrames(id: number, bytes: Buffer, endStream = true): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += 16_384) {
    const last = at + 16_384 >= bytes.length;
    out.push(dataFrame(id, bytes.subarray(at, at + 16_384), { endStream: endStream && last }));
  }
  return out;
}

export async function waitForData(c: H2FramesClient, id: number): Promise<void> {
  await c.waitForFrame((f) => f.streamId === id && f.type === FRAME.DATA, STREAM_WAIT_MS, "DATA");
}

// ---------------------------------------------------------------------------------------------------
// grpc-js calls

/** A grpc-js call's view: response headers, messages, status, details and trailers. */
export function grpcCall(
  client: grpc.Client,
  options: {
    metadata: Readonly<Record<string, string | Buffer>>;
    /** The request message; default "hello". */
    body?: Buffer;
    /** A server-streaming call (the request is one empty message). */
    stream?: boolean;
    /** A bidi call that writes these messages, then ends. */
    bidi?: readonly Buffer[];
    deadlineMs?: number;
    /** Cancel once the first message arrived. */
    cancelAfterFirst?: boolean;
    /** Compare only the status code (details carry timings). */
    codeOnly?: boolean;
  },
): Promise<unknown> {
  const identity = (b: Buffer): Buffer => b;
  const md = metadataOf(options.metadata);
  const callOptions = { deadline: Date.now() + (options.deadlineMs ?? 10_000) };
  return new Promise((resolve) => {
    let headers: string[] | undefined;
    const messages: string[] = [];
    // A unary call's callback (its message) may run after 'status': resolve on the next turn.
    const onStatus = (s: grpc.StatusObject): void =>
      void setImmediate(() => {
        if (options.codeOnly) return resolve({ code: grpc.status[s.code] });
        resolve({
          headers: headers ?? "none",
          messages,
          code: grpc.status[s.code],
          details: s.details,
          trailers: metadataLines(s.metadata),
        });
      });
    if (options.bidi) {
      const call = client.makeBidiStreamRequest(PATH, identity, identity, md, callOptions);
      call.on("metadata", (m: grpc.Metadata) => (headers = metadataLines(m)));
      call.on("data", (m: Buffer) => messages.push(describeBytes(m)));
      call.on("error", () => {});
      call.on("status", onStatus);
      for (const m of options.bidi) call.write(m);
      call.end();
      return;
    }
    if (options.stream) {
      const call = client.makeServerStreamRequest(PATH, identity, identity, Buffer.alloc(0), md, callOptions);
      call.on("metadata", (m: grpc.Metadata) => (headers = metadataLines(m)));
      call.on("data", (m: Buffer) => {
        messages.push(describeBytes(m));
        if (options.cancelAfterFirst) call.cancel();
      });
      call.on("error", () => {});
      call.on("status", onStatus);
      return;
    }
    const call = client.makeUnaryRequest(
      PATH,
      identity,
      identity,
      options.body ?? Buffer.from("hello"),
      md,
      callOptions,
      (err, m) => {
        if (!err && m) messages.push(describeBytes(m));
      },
    );
    call.on("metadata", (m: grpc.Metadata) => (headers = metadataLines(m)));
    call.on("status", onStatus);
  });
}

/** grpc-js computes `grpc-timeout` from its deadline when it sends: only its presence is compared. */
export const GRPC_JS_MASKS: Masks = { ...DATE_MASK, "grpc-timeout": "<from the deadline>" };
