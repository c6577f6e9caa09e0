/**
 * The rows of the `overhead` scenario: which C load generator runs, through which listener, with what
 * shape, and how its result turns into throughput, latency and proxy CPU per unit of work.
 */
import type { ToolResult } from "../tools/tool-result.js";
import { h2load } from "../tools/tool-h2load.js";
import { iperf3 } from "../tools/tool-iperf3.js";
import { wrk } from "../tools/tool-wrk.js";

/** The listeners every target gets: TCP to iperf3, TCP to the HTTP backend, gRPC to the sim worker. */
export type OverheadListener = "bulk" | "http" | "grpc";

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
];
