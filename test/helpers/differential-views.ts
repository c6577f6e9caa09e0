/**
 * Views for the differential test of the two gRPC engines: what a client or the worker received,
 * reduced to plain JSON values (strings, numbers, arrays, objects) that `deepStrictEqual` can compare
 * and a person can read, and `describeDiff`, which lists only the paths where two views differ.
 *
 * The reductions drop nothing that an engine decides; each one is justified where it is made:
 * - header fields are sorted by name, keeping the order of fields of one name (RFC 9110 §5.3: the
 *   order of field lines with different names carries no meaning, while one name's order does);
 * - field lines of one name are combined into one, their values joined with ", " in order (RFC 9110
 *   §5.3 makes the two forms equivalent, and node:http2's header objects can carry only the combined
 *   one: the `http2` engine forwards `x: a` + `x: b` as `x: a, b`, the `frames` engine unchanged);
 * - `date` keeps its presence but not its value (a worker stamps the wall-clock second);
 * - bytes are shown as their length and SHA-256 (and in hex when short), since DATA frame boundaries
 *   are a hop's own choice (RFC 9113 §6.1) while the byte stream is not.
 */
import { createHash } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import type { RecordedStream } from "./grpc-recording-worker.js";
import { FLAG, FRAME, errorName, type H2FramesClient } from "./h2-frames-client.js";

/** Bytes as `N bytes` plus hex (up to 64 bytes) or a SHA-256 prefix. */
export function describeBytes(bytes: Buffer): string {
  if (bytes.length === 0) return "0 bytes";
  if (bytes.length <= 64) return `${bytes.length} bytes ${bytes.toString("hex")}`;
  const sha = createHash("sha256").update(bytes).digest("hex").slice(0, 16);
  return `${bytes.length} bytes sha256:${sha}`;
}

/** Field names whose values are masked (presence kept), with the mask. */
export type Masks = Readonly<Record<string, string>>;

/** The masks every view applies: see the file comment. */
export const DATE_MASK: Masks = { date: "<date>" };

/** Header pairs as `name: value` lines, one per name (values combined in order), masked, sorted by name. */
export function fieldLines(
  fields: readonly (readonly [string, string])[],
  masks: Masks = DATE_MASK,
): string[] {
  const combined = new Map<string, string[]>();
  for (const [name, value] of fields) {
    const values = combined.get(name);
    if (values) values.push(value);
    else combined.set(name, [value]);
  }
  return [...combined]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, values]) => `${name}: ${masks[name] ?? values.join(", ")}`);
}

/** One frame (DATA frames in a row merged) of a stream as a raw client saw it. */
export type FrameView =
  | { readonly HEADERS: string[]; readonly endStream: boolean }
  | { readonly DATA: string; readonly endStream: boolean }
  | { readonly RST_STREAM: string };

/**
 * What the raw client received on `streamId`, frame by frame in order: header blocks (decoded,
 * masked, sorted), DATA (consecutive frames merged into one byte string) and RST_STREAM.
 */
export function streamView(client: H2FramesClient, streamId: number): FrameView[] {
  const blocks = client.stream(streamId).headerBlocks;
  let block = 0;
  const out: FrameView[] = [];
  let data: Buffer[] | undefined;
  const flushData = (endStream: boolean): void => {
    if (!data) return;
    out.push({ DATA: describeBytes(Buffer.concat(data)), endStream });
    data = undefined;
  };
  for (const f of client.frames) {
    if (f.streamId !== streamId) continue;
    const endStream = (f.flags & FLAG.END_STREAM) !== 0;
    if (f.type === FRAME.DATA) {
      (data ??= []).push(unpadded(f.payload, f.flags));
      if (endStream) flushData(true);
      continue;
    }
    flushData(false);
    if (f.type === FRAME.HEADERS) {
      out.push({ HEADERS: fieldLines(blocks[block++] ?? [["<undecodable block>", ""]]), endStream });
    } else if (f.type === FRAME.RST_STREAM) {
      out.push({ RST_STREAM: errorName(f.payload.readUInt32BE(0)) });
    }
  }
  flushData(false);
  return out;
}

function unpadded(payload: Buffer, flags: number): Buffer {
  if ((flags & FLAG.PADDED) === 0) return payload;
  const pad = payload[0] ?? 0;
  return payload.subarray(1, Math.max(1, payload.length - pad));
}

/** The raw client's connection: GOAWAY (code, last stream id) and whether it closed. */
export function connectionView(client: H2FramesClient): string {
  const goaway = client.goaway
    ? `GOAWAY ${errorName(client.goaway.errorCode)} last-stream ${client.goaway.lastStreamId}`
    : "no GOAWAY";
  return `${goaway}, ${client.closed ? "closed" : "open"}`;
}

/** grpc-js Metadata as sorted `name: value` lines (`-bin` values in hex), masked. */
export function metadataLines(md: grpc.Metadata | undefined, masks: Masks = DATE_MASK): string[] {
  if (!md) return [];
  const fields: [string, string][] = [];
  for (const [name, values] of Object.entries(md.toJSON())) {
    for (const v of values) fields.push([name, Buffer.isBuffer(v) ? `hex ${v.toString("hex")}` : String(v)]);
  }
  return fieldLines(fields, masks);
}

/** What a worker received on one stream: fields (masked, sorted), bytes, trailers, END_STREAM, close. */
export function workerView(r: RecordedStream, masks: Masks): unknown {
  let close = "closed";
  if (!r.closed) close = "still open (3 s after the client's part ended)";
  else if (r.connectionClosedByScript) close = "connection closed by the worker";
  else if (r.rstCode !== 0) close = `RST_STREAM ${errorName(r.rstCode)}`;
  return {
    headers: fieldLines(r.headers, masks),
    data: describeBytes(Buffer.concat(r.data)),
    trailers: r.trailers ? fieldLines(r.trailers, masks) : "none",
    end: r.endStream ? "END_STREAM" : "no END_STREAM",
    close,
  };
}

// ---------------------------------------------------------------------------------------------------
// Diffs

function show(v: unknown): string {
  return v === undefined ? "(absent)" : JSON.stringify(v);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

/**
 * The paths where `a` and `b` differ, one line each, naming the two sides `aName` and `bName`.
 * String arrays (header lines) are compared as lists: the lines only one side has, then order.
 */
export function describeDiff(a: unknown, b: unknown, aName: string, bName: string, path = "$"): string[] {
  if (isStringArray(a) && isStringArray(b)) {
    const onlyA = a.filter((x) => !b.includes(x));
    const onlyB = b.filter((x) => !a.includes(x));
    const lines: string[] = [];
    if (onlyA.length > 0) lines.push(`${path}: only ${aName} has ${show(onlyA)}`);
    if (onlyB.length > 0) lines.push(`${path}: only ${bName} has ${show(onlyB)}`);
    if (lines.length === 0 && show(a) !== show(b))
      lines.push(`${path}: ${aName} ${show(a)}, ${bName} ${show(b)}`);
    return lines;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const lines: string[] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++)
      lines.push(...describeDiff(a[i], b[i], aName, bName, `${path}[${i}]`));
    return lines;
  }
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    const ao = a as Record<string, unknown>;
    const bo = b as Record<string, unknown>;
    // Objects of different shapes (a HEADERS frame against a DATA frame) read best whole.
    const keysA = Object.keys(ao).join(",");
    const keysB = Object.keys(bo).join(",");
    if (keysA !== keysB && (keysA.includes("HEADERS") || keysA.includes("DATA") || keysA.includes("RST")))
      return [`${path}: ${aName} ${show(a)}, ${bName} ${show(b)}`];
    const lines: string[] = [];
    for (const key of new Set([...Object.keys(ao), ...Object.keys(bo)]))
      lines.push(...describeDiff(ao[key], bo[key], aName, bName, `${path}.${key}`));
    return lines;
  }
  return show(a) === show(b) ? [] : [`${path}: ${aName} ${show(a)}, ${bName} ${show(b)}`];
}
