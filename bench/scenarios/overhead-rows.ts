/**
 * The rows of the `overhead` scenario: which C load generator runs, through which listener, with what
 * shape, and how its result turns into throughput, latency and proxy CPU per unit of work.
 */
import type { ToolResult } from "../tools/tool-result.js";
import { h2load } from "../tools/tool-h2load.js";
import { iperf3 } from "../tools/tool-iperf3.js";
import { wrk } from "../tools/tool-wrk.js";
import { tritonService } from "../../src/protos/inference-protos.js";
import { bytesElement } from "../../src/sim/sim-llm-worker.js";

/**
 * The listeners every target gets: TCP to iperf3, TCP to the HTTP backend, gRPC to the sim worker,
 * and gRPC to a simulated Triton worker, plain (`infer`) and, on Fulcrum, with prompt-prefix
 * affinity (`infer-prefix`; the peers have none and proxy it plain).
 */
export type OverheadListener = "bulk" | "http" | "grpc" | "infer" | "infer-prefix";

/** How many response messages one streaming call carries (the sim worker's `x-repeat`). */
export const STREAM_REPEAT = 1000;

export interface OverheadRow {
  readonly id: string;
  readonly title: string;
  readonly listener: OverheadListener;
  /** Throughput unit; CPU is per GiB for `GB/s`, else µs per unit of work. */
  readonly unit: "GB/s" | "req/s" | "conn/s" | "msg/s";
  readonly cpuUnit: "s/GiB" | "µs/req" | "µs/conn" | "µs/msg";
  /** Response messages per completed request, checked against the worker's counters (gRPC rows). */
  readonly messagesPerRequest?: number;
  /** Calls in flight at most (gRPC rows): those the end of a run may cut, CANCELLED at the worker. */
  readonly inFlight?: number;
  run(port: number, seconds: number, dir: string): Promise<ToolResult>;
}

const unary = (connections: number, streams: number): OverheadRow => ({
  id: `grpc-unary-${connections}x${streams}`,
  title: `gRPC unary 100 B echo, h2load ${connections} conn × ${streams} streams`,
  listener: "grpc",
  unit: "req/s",
  cpuUnit: "µs/req",
  messagesPerRequest: 1,
  inFlight: connections * streams,
  run: (port, seconds, dir) =>
    h2load({ port, seconds, dir, connections, streams, payloadBytes: 100, path: "/fulcrum.sim.Worker/Echo" }),
});

/** Bytes of the prompt in the `infer` rows' ModelInferRequest (16 blocks of 64). */
export const INFER_PROMPT_BYTES = 1024;

/** Triton ModelInfer with a 1 KiB BYTES `text_input` (what prefix affinity reads and hashes). */
const infer = (prefix: boolean): OverheadRow => ({
  id: prefix ? "grpc-infer-prefix-8x16" : "grpc-infer-8x16",
  title:
    `Triton ModelInfer, 1 KiB text_input echoed, h2load 8 conn × 16 streams` +
    (prefix ? ", Fulcrum with prompt-prefix affinity" : ""),
  listener: prefix ? "infer-prefix" : "infer",
  unit: "req/s",
  cpuUnit: "µs/req",
  messagesPerRequest: 1,
  inFlight: 8 * 16,
  run: (port, seconds, dir) =>
    h2load({
      port,
      seconds,
      dir,
      connections: 8,
      streams: 16,
      payloadBytes: INFER_PROMPT_BYTES,
      body: inferRequestBody(),
      path: "/inference.GRPCInferenceService/ModelInfer",
    }),
});

/** The ModelInferRequest of the `infer` rows, serialized by the Triton proto (model `simple`). */
function inferRequestBody(): Buffer {
  const prompt = "You are a helpful assistant. Answer briefly. ".repeat(30).slice(0, INFER_PROMPT_BYTES);
  const method = tritonService().service["ModelInfer"];
  if (method === undefined) throw new Error("the Triton proto has no ModelInfer");
  return method.requestSerialize({
    model_name: "simple",
    inputs: [{ name: "text_input", datatype: "BYTES", shape: [1, 1] }],
    raw_input_contents: [bytesElement(prompt)],
  });
}

export const OVERHEAD_ROWS: readonly OverheadRow[] = [
  {
    id: "tcp-bulk-1",
    title: "TCP bulk, iperf3 1 stream",
    listener: "bulk",
    unit: "GB/s",
    cpuUnit: "s/GiB",
    run: (port, seconds) => iperf3(port, seconds, 1),
  },
  {
    id: "tcp-bulk-8",
    title: "TCP bulk, iperf3 8 streams",
    listener: "bulk",
    unit: "GB/s",
    cpuUnit: "s/GiB",
    run: (port, seconds) => iperf3(port, seconds, 8),
  },
  {
    id: "tcp-rr",
    title: "TCP request/response, wrk 32 kept-alive connections",
    listener: "http",
    unit: "req/s",
    cpuUnit: "µs/req",
    run: (port, seconds) => wrk(port, seconds, 32, false),
  },
  {
    id: "tcp-connect",
    title: "TCP new connection per request, wrk 8 connections, Connection: close",
    listener: "http",
    unit: "conn/s",
    cpuUnit: "µs/conn",
    run: (port, seconds) => wrk(port, seconds, 8, true),
  },
  unary(8, 16),
  unary(1, 1),
  {
    id: "grpc-stream",
    title: `gRPC server streaming, 100 B messages, ${STREAM_REPEAT} per call, h2load 1 conn × 4 streams`,
    listener: "grpc",
    unit: "msg/s",
    cpuUnit: "µs/msg",
    messagesPerRequest: STREAM_REPEAT,
    inFlight: 4,
    run: async (port, seconds, dir) => {
      const r = await h2load({
        port,
        seconds,
        dir,
        connections: 1,
        streams: 4,
        payloadBytes: 100,
        path: "/fulcrum.sim.Worker/ServerStream",
        headers: [`x-repeat: ${STREAM_REPEAT}`],
      });
      return { ...r, requests: r.requests * STREAM_REPEAT };
    },
  },
  infer(false),
  infer(true),
];
