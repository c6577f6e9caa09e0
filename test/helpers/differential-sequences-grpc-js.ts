/**
 * Differential sequences of real grpc-js calls through the pair's channels: metadata (`-bin`
 * included), server and bidi streaming, 1 MiB, concurrency, a trailers-only error, a deadline and a
 * cancel. grpc-js computes `grpc-timeout` from its deadline, so the worker's view masks its value.
 */
import { BIN_VALUE } from "./grpc-recording-worker.js";
import {} from "./h2-frames-client.js";
import { GRPC_JS_MASKS, MESSAGES, grpcCall, type Sequence } from "./differential-sequence.js";

export const GRPC_JS_SEQUENCES: readonly Sequence[] = [
  {
    name: "grpc-js: unary call with metadata to the metadata script",
    workerMasks: GRPC_JS_MASKS,
    run: (_t, side) =>
      grpcCall(side.grpc, {
        metadata: { "x-script": "metadata", "x-request": "grpc-js", "x-request-bin": BIN_VALUE },
      }),
  },
  {
    name: "grpc-js: server streaming, 5 messages",
    workerMasks: GRPC_JS_MASKS,
    run: (_t, side) =>
      grpcCall(side.grpc, {
        stream: true,
        metadata: { "x-script": "stream", "x-count": "5", "x-size": "64" },
      }),
  },
  {
    name: "grpc-js: a 1 MiB request echoed",
    workerMasks: GRPC_JS_MASKS,
    run: (_t, side) =>
      grpcCall(side.grpc, { metadata: { "x-script": "echo" }, body: Buffer.alloc(1 << 20, 0x42) }),
  },
  {
    name: "grpc-js: bidi call, 5 request messages echoed once the client ended",
    workerMasks: GRPC_JS_MASKS,
    run: (_t, side) =>
      grpcCall(side.grpc, {
        metadata: { "x-script": "echo" },
        bidi: MESSAGES.concat([Buffer.alloc(0), Buffer.alloc(20_000, 0x33)]),
      }),
  },
  {
    name: "grpc-js: 20 concurrent unary calls on one channel",
    workerMasks: GRPC_JS_MASKS,
    unorderedWorker: true,
    run: (_t, side) =>
      Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          grpcCall(side.grpc, {
            metadata: { "x-script": "echo", "x-id": String(i) },
            body: Buffer.from(`call ${i}`),
          }),
        ),
      ),
  },
  {
    name: "grpc-js: trailers-only NOT_FOUND with a non-ASCII message",
    workerMasks: GRPC_JS_MASKS,
    run: (_t, side) => grpcCall(side.grpc, { metadata: { "x-script": "error" } }),
  },
  {
    name: "grpc-js: deadline of 300 ms on a worker that does not answer",
    workerMasks: GRPC_JS_MASKS,
    run: (_t, side) =>
      grpcCall(side.grpc, { metadata: { "x-script": "silent" }, deadlineMs: 300, codeOnly: true }),
  },
  {
    name: "grpc-js: cancelled after the first message of a slow stream",
    workerMasks: GRPC_JS_MASKS,
    run: (_t, side) =>
      grpcCall(side.grpc, { stream: true, cancelAfterFirst: true, metadata: { "x-script": "slow" } }),
  },
];
