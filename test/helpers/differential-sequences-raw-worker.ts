/**
 * Differential sequences on the raw-frames worker (h2-raw-worker.ts): answers node:http2 will not
 * send, chosen by `:path` (connection-specific fields in headers and trailers, an upper-case name, a
 * pseudo-header in trailers, HTTP 503 without grpc-status, trailers without grpc-status).
 */
import type { RawAnswer } from "./h2-raw-worker.js";
import { grpcMessage, grpcRequestHeaders, type HeaderList } from "./h2-frames-client.js";
import { AUTHORITY, call, raw, type Sequence } from "./differential-sequence.js";

const RAW_PATH = "/test.Diff/Raw";
const OK_HEADERS: HeaderList = [
  [":status", "200"],
  ["content-type", "application/grpc"],
];
const OK_TRAILERS: HeaderList = [["grpc-status", "0"]];
const RAW_BODY = grpcMessage(Buffer.from("raw"));

/** Connection-specific fields (RFC 9113 §8.2.2) and other HTTP/1.1-only fields, as a worker might send them. */
const RESPONSE_HOP_FIELDS: readonly (readonly [string, string])[] = [
  ["connection", "close"],
  ["keep-alive", "timeout=5"],
  ["proxy-connection", "keep-alive"],
  ["transfer-encoding", "chunked"],
  ["upgrade", "h2c"],
  ["http2-settings", "AAMAAABkAAQAoAAAAAIAAAAA"],
  ["te", "trailers"],
];

const RAW_ANSWERS: Readonly<Record<string, RawAnswer>> = {
  ...Object.fromEntries(
    RESPONSE_HOP_FIELDS.map(([name, value]) => [
      `${RAW_PATH}/header/${name}`,
      { headers: [...OK_HEADERS, [name, value]], data: RAW_BODY, trailers: OK_TRAILERS },
    ]),
  ),
  [`${RAW_PATH}/trailer/connection`]: {
    headers: OK_HEADERS,
    data: RAW_BODY,
    trailers: [...OK_TRAILERS, ["connection", "close"]],
  },
  [`${RAW_PATH}/upper-case`]: {
    headers: [...OK_HEADERS, ["X-Upper", "1"]],
    data: RAW_BODY,
    trailers: OK_TRAILERS,
  },
  [`${RAW_PATH}/pseudo-in-trailers`]: {
    headers: OK_HEADERS,
    data: RAW_BODY,
    trailers: [[":status", "200"], ...OK_TRAILERS],
  },
  [`${RAW_PATH}/http-503`]: {
    headers: [
      [":status", "503"],
      ["content-type", "text/plain"],
    ],
    data: Buffer.from("overloaded"),
  },
  [`${RAW_PATH}/no-grpc-status`]: { headers: OK_HEADERS, data: RAW_BODY, trailers: [["x-trailer", "only"]] },
};

export function rawAnswer(path: string): RawAnswer {
  return RAW_ANSWERS[path] ?? { headers: OK_HEADERS, data: RAW_BODY, trailers: OK_TRAILERS };
}

export const RAW_WORKER_SEQUENCES: readonly Sequence[] = [
  ...RESPONSE_HOP_FIELDS.map(([name, value]): Sequence => ({
    name: `the worker's response headers carry ${name}: ${value}`,
    listener: "raw",
    run: (t) => raw(t, call(grpcRequestHeaders(AUTHORITY, `${RAW_PATH}/header/${name}`))),
  })),
  ...(
    [
      ["trailer/connection", "the worker's trailers carry connection: close"],
      ["upper-case", "the worker's response has an upper-case field name (malformed, RFC 9113 §8.2.1)"],
      ["pseudo-in-trailers", "the worker's trailers carry :status (malformed, RFC 9113 §8.1)"],
      ["http-503", "the worker answers HTTP 503 text/plain without grpc-status"],
      ["no-grpc-status", "the worker's trailers lack grpc-status"],
    ] as const
  ).map(([path, name]): Sequence => ({
    name,
    listener: "raw",
    run: (t) => raw(t, call(grpcRequestHeaders(AUTHORITY, `${RAW_PATH}/${path}`))),
  })),
];
