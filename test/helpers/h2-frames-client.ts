/**
 * A raw HTTP/2 client on node:net for the conformance and defence tests of the gRPC listener (RFC 9113,
 * RFC 7541). It writes whatever bytes a test builds, valid or not, and parses what comes back frame by
 * frame, so the same tests can judge any engine behind the listener: node:http2 rejects most malformed
 * frames before they could be sent, and hides GOAWAY and RST_STREAM codes behind its own errors.
 *
 * Writing: a minimal frame writer and an HPACK encoder that uses only indexed static-table entries and
 * literals without Huffman coding (plus literal-with-incremental-indexing for HPACK bombs). Reading:
 * frame headers, SETTINGS, GOAWAY, RST_STREAM, PING, WINDOW_UPDATE, and header blocks decoded by a small
 * HPACK decoder (dynamic table and Huffman included, since servers use both). The client acks the
 * server's SETTINGS and answers its PINGs, like any well-behaved peer, unless told not to.
 *
 * Also here: `expectConnectionError` and `expectStreamError`, which accept every outcome RFC 9113 allows
 * for a given error (a connection error may close without GOAWAY; any stream error may be escalated to a
 * connection error, §5.4).
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";

/** Frame types (RFC 9113 §6). */
export const FRAME = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags; ACK shares its bit with END_STREAM. */
export const FLAG = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** Error codes (RFC 9113 §7). */
export const ERROR = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/** SETTINGS parameters (RFC 9113 §6.5.2). */
export const SETTING = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/** SETTINGS_MAX_FRAME_SIZE's initial value: what a server accepts until it advertises more. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;

/** `PROTOCOL_ERROR (0x1)`, for assertion messages. */
export function errorName(code: number): string {
  const name = Object.entries(ERROR).find(([, c]) => c === code)?.[0] ?? "unknown";
  return `${name} (0x${code.toString(16)})`;
}

// ---------------------------------------------------------------------------------------------------
// Frame writer

/** One frame: 9-byte header then payload. `streamId` is written as given (the R bit included). */
export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header.writeUInt8(type, 3);
  header.writeUInt8(flags, 4);
  header.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([header, payload]);
}

export function settingsFrame(entries: readonly (readonly [number, number])[] = []): Buffer {
  const payload = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value >>> 0, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, payload);
}

export function settingsAckFrame(): Buffer {
  return frame(FRAME.SETTINGS, FLAG.ACK, 0);
}

export function pingFrame(data: Buffer = Buffer.alloc(8), ack = false): Buffer {
  return frame(FRAME.PING, ack ? FLAG.ACK : 0, 0, data);
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment >>> 0);
  return frame(FRAME.WINDOW_UPDATE, 0, streamId, payload);
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code >>> 0);
  return frame(FRAME.RST_STREAM, 0, streamId, payload);
}

export function goawayFrame(lastStreamId: number, code: number, debug = ""): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(lastStreamId >>> 0, 0);
  payload.writeUInt32BE(code >>> 0, 4);
  return frame(FRAME.GOAWAY, 0, 0, Buffer.concat([payload, Buffer.from(debug, "utf8")]));
}

export interface HeadersFrameOptions {
  readonly endStream?: boolean;
  /** Default true; false leaves the header block open for CONTINUATION frames. */
  readonly endHeaders?: boolean;
  /** Sets PADDED with this Pad Length and appends that many zero bytes. */
  readonly padLength?: number;
  /** Sets PADDED with a Pad Length byte of this value but appends no padding (for bad-padding tests). */
  readonly declaredPadLength?: number;
}

export function headersFrame(streamId: number, block: Buffer, options: HeadersFrameOptions = {}): Buffer {
  let flags = options.endHeaders === false ? 0 : FLAG.END_HEADERS;
  if (options.endStream) flags |= FLAG.END_STREAM;
  return frame(FRAME.HEADERS, flags | padFlag(options), streamId, padded(block, options));
}

export function continuationFrame(streamId: number, block: Buffer, endHeaders = true): Buffer {
  return frame(FRAME.CONTINUATION, endHeaders ? FLAG.END_HEADERS : 0, streamId, block);
}

export function dataFrame(
  streamId: number,
  data: Buffer,
  options: { endStream?: boolean; padLength?: number } = {},
): Buffer {
  const flags = (options.endStream ? FLAG.END_STREAM : 0) | padFlag(options);
  return frame(FRAME.DATA, flags, streamId, padded(data, options));
}

function padFlag(options: { padLength?: number; declaredPadLength?: number }): number {
  return options.padLength !== undefined || options.declaredPadLength !== undefined ? FLAG.PADDED : 0;
}

function padded(body: Buffer, options: { padLength?: number; declaredPadLength?: number }): Buffer {
  if (options.declaredPadLength !== undefined)
    return Buffer.concat([Buffer.from([options.declaredPadLength]), body]);
  if (options.padLength === undefined) return body;
  return Buffer.concat([Buffer.from([options.padLength]), body, Buffer.alloc(options.padLength)]);
}

/** One length-prefixed, uncompressed gRPC message. */
export function grpcMessage(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

// ---------------------------------------------------------------------------------------------------
// HPACK (RFC 7541)

export type HeaderList = readonly (readonly [string, string])[];

/** RFC 7541 Appendix A, index 1..61. */
const STATIC_TABLE: HeaderList = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/** An HPACK integer with an N-bit prefix; `high` holds the representation's pattern bits. */
export function hpackInteger(value: number, prefixBits: number, high = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([high | value]);
  const bytes = [high | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** A string literal without Huffman coding; names and values are taken byte for byte (latin1). */
export function hpackString(s: string | Buffer): Buffer {
  const bytes = typeof s === "string" ? Buffer.from(s, "latin1") : s;
  return Buffer.concat([hpackInteger(bytes.length, 7, 0x00), bytes]);
}

/** Indexed Header Field (§6.1): one static (1..61) or dynamic (62..) table entry. */
export function hpackIndexed(index: number): Buffer {
  return hpackInteger(index, 7, 0x80);
}

/** Literal Header Field with Incremental Indexing, new name (§6.2.1): the entry becomes index 62. */
export function hpackLiteralIndexed(name: string, value: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
}

/**
 * A header block: a full static-table match is sent indexed; anything else as a literal without
 * indexing (§6.2.2), with the name indexed when the static table has it. Names are sent as given, so
 * a test can send upper-case or otherwise malformed names.
 */
export function encodeHeaderBlock(headers: HeaderList): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of headers) {
    const full = STATIC_TABLE.findIndex(([n, v]) => n === name && v === value);
    if (full >= 0) {
      parts.push(hpackIndexed(full + 1));
      continue;
    }
    const byName = STATIC_TABLE.findIndex(([n]) => n === name);
    parts.push(
      byName >= 0 ? hpackInteger(byName + 1, 4, 0x00) : Buffer.concat([Buffer.from([0]), hpackString(name)]),
    );
    parts.push(hpackString(value));
  }
  return Buffer.concat(parts);
}

/** The request headers of a gRPC call, in the order RFC 9113 §8.3 requires (pseudo-headers first). */
export function grpcRequestHeaders(
  authority: string,
  path: string,
  extra: HeaderList = [],
): [string, string][] {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", authority],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...extra.map(([n, v]): [string, string] => [n, v]),
  ];
}

/**
 * Code length of every symbol 0..256 of the HPACK Huffman code (RFC 7541 Appendix B), grouped by
 * length. The code is canonical (codes of one length are consecutive, in symbol order, and shorter
 * codes come first), so the lengths alone rebuild it; `huffmanTree` checks the result is complete.
 */
const HUFFMAN_LENGTHS: readonly (readonly [number, string | readonly number[]])[] = [
  [5, "012aceiost"],
  [6, " %-./3456789=A_bdfghlmnpru"],
  [7, ":BCDEFGHIJKLMNOPQRSTUVWYjkqvwxyz"],
  [8, "&*,;XZ"],
  [10, '!"()?'],
  [11, "'+|"],
  [12, "#>"],
  [13, [0, 36, 64, 91, 93, 126]],
  [14, "^}"],
  [15, "<`{"],
  [19, [92, 195, 208]],
  [20, [128, 130, 131, 162, 184, 194, 224, 226]],
  [21, [153, 161, 167, 172, 176, 177, 179, 209, 216, 217, 227, 229, 230]],
  [
    22,
    [
      129, 132, 133, 134, 136, 146, 154, 156, 160, 163, 164, 169, 170, 173, 178, 181, 185, 186, 187, 189, 190,
      196, 198, 228, 232, 233,
    ],
  ],
  [
    23,
    [
      1, 135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152, 155, 157, 158, 165, 166, 168, 174, 175,
      180, 182, 183, 188, 191, 197, 231, 239,
    ],
  ],
  [24, [9, 142, 144, 145, 148, 159, 171, 206, 215, 225, 236, 237]],
  [25, [199, 207, 234, 235]],
  [26, [192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242, 243, 255]],
  [27, [203, 204, 211, 212, 214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250, 251, 252, 253, 254]],
  [
    28,
    [
      2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31, 127,
      220, 249,
    ],
  ],
  [30, [10, 13, 22, 256]],
];

const EOS = 256;

/** A binary decoding tree: node i has children `tree[i][0|1]`, a leaf is `-(symbol + 1)`. */
let huffmanTreeCache: number[][] | undefined;

function huffmanTree(): number[][] {
  if (huffmanTreeCache) return huffmanTreeCache;
  const tree: number[][] = [[0, 0]];
  const seen = new Set<number>();
  let code = 0;
  let previousLength = HUFFMAN_LENGTHS[0]?.[0] ?? 0;
  for (const [length, group] of HUFFMAN_LENGTHS) {
    code <<= length - previousLength;
    previousLength = length;
    const symbols = typeof group === "string" ? [...group].map((c) => c.charCodeAt(0)) : group;
    for (const symbol of [...symbols].sort((a, b) => a - b)) {
      assert.ok(!seen.has(symbol), `Huffman symbol ${symbol} listed twice`);
      seen.add(symbol);
      let node = 0;
      for (let bit = length - 1; bit >= 0; bit--) {
        const b = (code >>> bit) & 1;
        const children = tree[node] as number[];
        if (bit === 0) {
          children[b] = -(symbol + 1);
        } else {
          if (children[b] === 0) {
            tree.push([0, 0]);
            children[b] = tree.length - 1;
          }
          node = children[b] as number;
        }
      }
      code++;
    }
  }
  // A complete code ends with EOS as all ones: 2^30 codes of 30 bits were used exactly.
  assert.equal(seen.size, 257, "Huffman table covers 257 symbols");
  assert.equal(code, 2 ** 30, "Huffman code is complete");
  huffmanTreeCache = tree;
  return tree;
}

export function huffmanDecode(bytes: Buffer): Buffer {
  const tree = huffmanTree();
  const out: number[] = [];
  let node = 0;
  let depth = 0;
  let allOnes = true;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >> bit) & 1;
      allOnes &&= b === 1;
      const next = (tree[node] as number[])[b] as number;
      depth++;
      if (next < 0) {
        const symbol = -next - 1;
        if (symbol === EOS) throw new Error("HPACK: EOS inside a Huffman string");
        out.push(symbol);
        node = 0;
        depth = 0;
        allOnes = true;
      } else {
        node = next;
      }
    }
  }
  // §5.2: padding is shorter than 8 bits and is the most significant bits of EOS (all ones).
  if (depth > 7 || !allOnes) throw new Error("HPACK: bad Huffman padding");
  return Buffer.from(out);
}

/** Decodes the header blocks of one connection, in order (the dynamic table spans blocks). */
export class HpackDecoder {
  private table: [string, string][] = [];
  private size = 0;

  constructor(private maxSize = 4096) {}

  decode(block: Buffer): [string, string][] {
    const out: [string, string][] = [];
    let at = 0;
    const integer = (prefixBits: number): number => {
      const max = (1 << prefixBits) - 1;
      let value = (block[at++] ?? 0) & max;
      if (value < max) return value;
      let shift = 0;
      for (;;) {
        if (at >= block.length) throw new Error("HPACK: truncated integer");
        const b = block[at++] as number;
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if ((b & 0x80) === 0) return value;
      }
    };
    const string = (): string => {
      const huffman = ((block[at] ?? 0) & 0x80) !== 0;
      const length = integer(7);
      if (at + length > block.length) throw new Error("HPACK: truncated string");
      const raw = block.subarray(at, at + length);
      at += length;
      return (huffman ? huffmanDecode(raw) : raw).toString("latin1");
    };
    while (at < block.length) {
      const b = block[at] as number;
      if (b & 0x80) {
        out.push(this.entry(integer(7)));
      } else if (b & 0x40) {
        const index = integer(6);
        const name = index === 0 ? string() : this.entry(index)[0];
        const field: [string, string] = [name, string()];
        out.push(field);
        this.insert(field);
      } else if (b & 0x20) {
        this.maxSize = integer(5);
        this.evict();
      } else {
        const index = integer(4);
        const name = index === 0 ? string() : this.entry(index)[0];
        out.push([name, string()]);
      }
    }
    return out;
  }

  private entry(index: number): [string, string] {
    const field = index <= STATIC_TABLE.length ? STATIC_TABLE[index - 1] : this.table[index - 62];
    if (index === 0 || !field) throw new Error(`HPACK: no table entry ${index}`);
    return [field[0], field[1]];
  }

  private insert(field: [string, string]): void {
    this.table.unshift(field);
    this.size += field[0].length + field[1].length + 32;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.maxSize) {
      const last = this.table.pop();
      if (!last) break;
      this.size -= last[0].length + last[1].length + 32;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The client

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

export interface Goaway {
  readonly lastStreamId: number;
  readonly errorCode: number;
  readonly debug: string;
}

/** What the server sent on one stream. */
export interface StreamRecord {
  /** Each complete header block (response headers, then trailers), decoded. */
  readonly headerBlocks: [string, string][][];
  readonly data: Buffer[];
  /** A frame with END_STREAM arrived. */
  endStream: boolean;
  /** The code of the RST_STREAM that closed it. */
  rstCode: number | undefined;
}

/** How a stream ended as seen by the client; `connection` when the whole connection ended first. */
export type StreamEnd =
  | { readonly kind: "end"; readonly stream: StreamRecord }
  | { readonly kind: "rst"; readonly code: number; readonly stream: StreamRecord }
  | { readonly kind: "connection"; readonly goaway: Goaway | undefined; readonly stream: StreamRecord };

export interface ConnectOptions {
  /** Send the client preface (magic + SETTINGS) on connect. Default true. */
  readonly preface?: boolean;
  /** The client's SETTINGS in the preface. Default none (all initial values). */
  readonly settings?: readonly (readonly [number, number])[];
  /**
   * Ack the server's SETTINGS and answer its PINGs. Default: as `preface`, since an ACK written before
   * a preface would itself be a bad preface.
   */
  readonly autoAck?: boolean;
  /** At most this many received frames are kept in `frames` (all are counted). Default 10,000. */
  readonly keepFrames?: number;
}

type Waiter = () => boolean;

export class H2FramesClient {
  /** Received frames, in order (up to `keepFrames`). */
  readonly frames: Frame[] = [];
  /** Received frames per type, all of them. */
  readonly counts = new Map<number, number>();
  /** The server's first non-ACK SETTINGS, once it arrived. */
  serverSettings: Map<number, number> | undefined;
  /** SETTINGS ACKs received. */
  settingsAcks = 0;
  /** The first GOAWAY received. */
  goaway: Goaway | undefined;
  /** Per-stream record of what the server sent. */
  readonly streams = new Map<number, StreamRecord>();
  /** The server ended its side (FIN), or the socket errored or closed. */
  closed = false;
  /** Set when the server's bytes were not valid HTTP/2 frames or HPACK. */
  protocolViolation: string | undefined;
  /** Bytes received in total. */
  bytesIn = 0;

  private buffered: Buffer = Buffer.alloc(0);
  private nextStreamId = 1;
  private headerBlock: { streamId: number; fragments: Buffer[]; endStream: boolean } | undefined;
  private readonly decoder = new HpackDecoder();
  private readonly waiters = new Set<Waiter>();
  private readonly autoAck: boolean;
  private readonly keepFrames: number;

  private constructor(
    readonly socket: Socket,
    options: ConnectOptions,
  ) {
    this.autoAck = options.autoAck ?? options.preface ?? true;
    this.keepFrames = options.keepFrames ?? 10_000;
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("end", () => {
      this.onClosed();
      socket.end();
    });
    socket.on("error", () => this.onClosed());
    socket.on("close", () => this.onClosed());
  }

  /** Connects; with `preface` (the default) the client preface is written at once. */
  static connect(
    target: { host: string; port: number },
    options: ConnectOptions = {},
  ): Promise<H2FramesClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
      const client = new H2FramesClient(socket, options);
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        if (options.preface ?? true)
          socket.write(Buffer.concat([CLIENT_PREFACE, settingsFrame(options.settings ?? [])]));
        resolve(client);
      });
    });
  }

  /** Writes raw bytes; false once the server closed. */
  write(...chunks: Buffer[]): boolean {
    if (this.closed || this.socket.destroyed || this.socket.writableEnded) return false;
    this.socket.write(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    return true;
  }

  /** The next unused odd stream id of this client (tests that pick ids themselves skip this). */
  newStreamId(): number {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    return id;
  }

  /** Waits until the server's SETTINGS arrived (and were acked) and the server acked the client's. */
  async handshake(timeoutMs = 5000): Promise<void> {
    await this.waitUntil(
      () => this.serverSettings !== undefined && this.settingsAcks > 0,
      timeoutMs,
      "the SETTINGS exchange",
    );
  }

  /** A full gRPC request on `streamId`: HEADERS, then one message with END_STREAM. */
  sendGrpcRequest(streamId: number, headers: HeaderList, message = Buffer.alloc(0)): boolean {
    return this.write(
      headersFrame(streamId, encodeHeaderBlock(headers)),
      dataFrame(streamId, grpcMessage(message), { endStream: true }),
    );
  }

  /** Sends a PING and resolves with the ACK that answers it (same payload, received after it was sent). */
  async ping(data: Buffer = Buffer.from("fulcrum!"), timeoutMs = 5000): Promise<Frame> {
    const from = this.frames.length;
    this.write(pingFrame(data));
    return this.waitForFrame(
      (f) => f.type === FRAME.PING && (f.flags & FLAG.ACK) !== 0 && f.payload.equals(data),
      timeoutMs,
      "PING ACK",
      from,
    );
  }

  count(type: number): number {
    return this.counts.get(type) ?? 0;
  }

  stream(streamId: number): StreamRecord {
    let s = this.streams.get(streamId);
    if (!s) {
      s = { headerBlocks: [], data: [], endStream: false, rstCode: undefined };
      this.streams.set(streamId, s);
    }
    return s;
  }

  /** Drops what was recorded for `streamId`, so later waits see only what arrives from now on. */
  forgetStream(streamId: number): void {
    this.streams.delete(streamId);
  }

  /**
   * The first received frame matching `predicate`, looking from index `from` of `frames` on (pass
   * `frames.length` to see only frames still to come). Frames past `keepFrames` are not seen.
   */
  waitForFrame(
    predicate: (f: Frame) => boolean,
    timeoutMs: number,
    what = "a frame",
    from = 0,
  ): Promise<Frame> {
    let seen = from;
    let found: Frame | undefined;
    return this.waitUntil(
      () => {
        for (; seen < this.frames.length && !found; seen++) {
          const f = this.frames[seen] as Frame;
          if (predicate(f)) found = f;
        }
        return found !== undefined;
      },
      timeoutMs,
      what,
      true,
    ).then(() => found as Frame);
  }

  /** Resolves with the GOAWAY; rejects if the connection closed without one or time ran out. */
  async waitForGoaway(timeoutMs = 5000): Promise<Goaway> {
    await this.waitUntil(() => this.goaway !== undefined, timeoutMs, "GOAWAY", true);
    return this.goaway as Goaway;
  }

  /** Resolves with the RST_STREAM code of `streamId`; rejects if the connection closed first. */
  async waitForRst(streamId: number, timeoutMs = 5000): Promise<number> {
    await this.waitUntil(
      () => this.streams.get(streamId)?.rstCode !== undefined,
      timeoutMs,
      `RST_STREAM on stream ${streamId}`,
      true,
    );
    return this.stream(streamId).rstCode as number;
  }

  /** Resolves once the server has closed the connection (FIN, reset or close). */
  waitForClose(timeoutMs = 5000): Promise<void> {
    return this.waitUntil(() => this.closed, timeoutMs, "the connection to close");
  }

  /** Resolves when `streamId` ended: END_STREAM, RST_STREAM, or the connection closing. */
  async waitForStreamEnd(streamId: number, timeoutMs = 5000): Promise<StreamEnd> {
    const s = this.stream(streamId);
    await this.waitUntil(
      () => s.endStream || s.rstCode !== undefined || this.closed,
      timeoutMs,
      `the end of stream ${streamId}`,
    );
    if (s.rstCode !== undefined) return { kind: "rst", code: s.rstCode, stream: s };
    if (s.endStream) return { kind: "end", stream: s };
    return { kind: "connection", goaway: this.goaway, stream: s };
  }

  /**
   * Writes `count` copies of `bytes` (batched, honouring backpressure) until done, the server closed,
   * or `timeoutMs` passed. Resolves with how many copies were handed to the socket.
   */
  async flood(bytes: Buffer, count: number, timeoutMs: number): Promise<number> {
    const perBatch = Math.max(1, Math.floor(65_536 / bytes.length));
    const batch = Buffer.concat(Array.from({ length: perBatch }, () => bytes));
    const deadline = Date.now() + timeoutMs;
    let written = 0;
    while (written < count && !this.closed && Date.now() < deadline) {
      const n = Math.min(perBatch, count - written);
      const ok = this.socket.write(n === perBatch ? batch : batch.subarray(0, n * bytes.length));
      written += n;
      if (!ok) await this.drained(deadline);
    }
    return written;
  }

  /** Destroys the socket and resolves once it is closed. */
  destroy(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.closed) return resolve();
      this.socket.once("close", () => resolve());
      this.socket.destroy();
    });
  }

  private drained(deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
      this.socket.once("drain", done);
      this.socket.once("close", done);
    });
  }

  /**
   * Resolves when `check` holds, re-checked after every frame and on close. With `failOnClose`, a
   * connection that closes before `check` holds rejects at once, naming the GOAWAY if there was one.
   */
  private waitUntil(
    check: () => boolean,
    timeoutMs: number,
    what: string,
    failOnClose = false,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const finish = (err?: Error): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        if (err) reject(err);
        else resolve();
      };
      const waiter: Waiter = () => {
        if (check()) {
          finish();
          return true;
        }
        if (failOnClose && this.closed) {
          finish(new Error(`connection closed (${this.describeClose()}) while waiting for ${what}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(
        () =>
          finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${this.describeClose()})`)),
        timeoutMs,
      );
      if (!waiter()) this.waiters.add(waiter);
    });
  }

  /** A short account of the connection's state, for failure messages. */
  describeClose(): string {
    const goaway = this.goaway ? `GOAWAY ${errorName(this.goaway.errorCode)}` : "no GOAWAY";
    return `${this.closed ? "closed" : "open"}, ${goaway}${this.protocolViolation ? `, ${this.protocolViolation}` : ""}`;
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.notify();
  }

  private onData(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    let at = 0;
    while (this.buffered.length - at >= 9) {
      const length = this.buffered.readUIntBE(at, 3);
      if (this.buffered.length - at < 9 + length) break;
      const f: Frame = {
        type: this.buffered.readUInt8(at + 3),
        flags: this.buffered.readUInt8(at + 4),
        streamId: this.buffered.readUInt32BE(at + 5) & 0x7fffffff,
        payload: Buffer.from(this.buffered.subarray(at + 9, at + 9 + length)),
      };
      at += 9 + length;
      this.onFrame(f);
    }
    this.buffered = this.buffered.subarray(at);
    this.notify();
  }

  private onFrame(f: Frame): void {
    this.counts.set(f.type, this.count(f.type) + 1);
    if (this.frames.length < this.keepFrames) this.frames.push(f);
    if (this.headerBlock && f.type !== FRAME.CONTINUATION)
      this.protocolViolation ??= `frame type ${f.type} inside a header block`;
    switch (f.type) {
      case FRAME.SETTINGS:
        if (f.flags & FLAG.ACK) {
          this.settingsAcks++;
        } else {
          const settings = new Map<number, number>();
          for (let i = 0; i + 6 <= f.payload.length; i += 6)
            settings.set(f.payload.readUInt16BE(i), f.payload.readUInt32BE(i + 2));
          this.serverSettings ??= settings;
          if (this.autoAck) this.write(settingsAckFrame());
        }
        break;
      case FRAME.PING:
        if (this.autoAck && (f.flags & FLAG.ACK) === 0) this.write(pingFrame(f.payload, true));
        break;
      case FRAME.GOAWAY:
        this.goaway ??= {
          lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff,
          errorCode: f.payload.readUInt32BE(4),
          debug: f.payload.subarray(8).toString("utf8"),
        };
        break;
      case FRAME.RST_STREAM:
        this.stream(f.streamId).rstCode = f.payload.readUInt32BE(0);
        break;
      case FRAME.DATA: {
        const s = this.stream(f.streamId);
        s.data.push(unpad(f));
        if (f.flags & FLAG.END_STREAM) s.endStream = true;
        break;
      }
      case FRAME.HEADERS: {
        let block = unpad(f);
        if (f.flags & FLAG.PRIORITY) block = block.subarray(5);
        this.headerBlock = {
          streamId: f.streamId,
          fragments: [block],
          endStream: (f.flags & FLAG.END_STREAM) !== 0,
        };
        if (f.flags & FLAG.END_HEADERS) this.endHeaderBlock();
        break;
      }
      case FRAME.CONTINUATION:
        if (!this.headerBlock || this.headerBlock.streamId !== f.streamId) {
          this.protocolViolation ??= `CONTINUATION on stream ${f.streamId} outside a header block`;
          break;
        }
        this.headerBlock.fragments.push(f.payload);
        if (f.flags & FLAG.END_HEADERS) this.endHeaderBlock();
        break;
      default:
        break;
    }
  }

  private endHeaderBlock(): void {
    const block = this.headerBlock;
    this.headerBlock = undefined;
    if (!block) return;
    const s = this.stream(block.streamId);
    try {
      s.headerBlocks.push(this.decoder.decode(Buffer.concat(block.fragments)));
    } catch (err) {
      this.protocolViolation ??= (err as Error).message;
    }
    if (block.endStream) s.endStream = true;
  }
}

function unpad(f: Frame): Buffer {
  if ((f.flags & FLAG.PADDED) === 0) return f.payload;
  const padLength = f.payload[0] ?? 0;
  return f.payload.subarray(1, Math.max(1, f.payload.length - padLength));
}

/** The value of `name` in a decoded header block. */
export function headerValue(block: HeaderList | undefined, name: string): string | undefined {
  return block?.find(([n]) => n === name)?.[1];
}

// ---------------------------------------------------------------------------------------------------
// Outcomes RFC 9113 allows

/**
 * Asserts a connection error: the server closes the connection, after a GOAWAY whose code is one of
 * `codes` or without one (§5.4.1: the GOAWAY is a SHOULD; for a bad preface §3.4 says it MAY be
 * omitted). A GOAWAY with another code, or a connection still open after `timeoutMs`, fails.
 */
export async function expectConnectionError(
  client: H2FramesClient,
  codes: readonly number[],
  timeoutMs = 5000,
): Promise<Goaway | undefined> {
  await client.waitForClose(timeoutMs);
  if (client.goaway) {
    assert.ok(
      codes.includes(client.goaway.errorCode),
      `GOAWAY ${errorName(client.goaway.errorCode)}, expected one of ${codes.map(errorName).join(", ")}`,
    );
  }
  return client.goaway;
}

/**
 * Asserts a stream error on `streamId`: RST_STREAM with one of `codes`, or the same error as a
 * connection error (§5.4: "an endpoint MAY choose to treat a stream error as a connection error").
 * A server may answer before it resets (§8.1.1), so a response with END_STREAM passes only when a
 * RST_STREAM follows it before the answer to a PING sent after it; a stream that just ends fails.
 */
export async function expectStreamError(
  client: H2FramesClient,
  streamId: number,
  codes: readonly number[],
  timeoutMs = 5000,
): Promise<StreamEnd> {
  let end = await client.waitForStreamEnd(streamId, timeoutMs);
  if (end.kind === "end") {
    await client.ping(undefined, timeoutMs).catch(() => undefined);
    const s = end.stream;
    if (s.rstCode !== undefined) end = { kind: "rst", code: s.rstCode, stream: s };
    else if (client.closed) end = { kind: "connection", goaway: client.goaway, stream: s };
  }
  const expected = codes.map(errorName).join(", ");
  if (end.kind === "rst") {
    assert.ok(codes.includes(end.code), `RST_STREAM ${errorName(end.code)}, expected one of ${expected}`);
  } else if (end.kind === "connection") {
    await expectConnectionError(client, codes, timeoutMs);
  } else {
    assert.fail(
      `stream ${streamId} ended normally (headers ${JSON.stringify(end.stream.headerBlocks)}), expected ${expected}`,
    );
  }
  return end;
}
