/**
 * h2load for gRPC over h2c: a 100-byte message framed as gRPC (5-byte prefix) in a file sent with
 * `-d` (so the method is POST), `content-type: application/grpc` and `te: trailers`. Percentiles come
 * from its per-request `--log-file` (end-to-end microseconds per request). h2load sees only HTTP
 * status 200; that the answers were gRPC OK is checked at the worker (worker-pool.ts counters).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TOOLS } from "../proc/proc-debian.js";
import { LatencyHistogram } from "../loadgen/loadgen-histogram.js";
import type { ToolResult } from "./tool-result.js";
import { runTool } from "./tool-run.js";

export interface H2loadOptions {
  readonly port: number;
  readonly path: string;
  readonly seconds: number;
  readonly connections: number;
  readonly streams: number;
  readonly payloadBytes: number;
  /** The message to send instead of `payloadBytes` of 'x' (serialized, without the gRPC prefix). */
  readonly body?: Buffer | undefined;
  readonly headers?: readonly string[];
  /** A directory for the message file and the log. */
  readonly dir: string;
}

/** A gRPC length-prefixed message: flag 0, u32 BE length, then `bytes` bytes of 'x'. */
export function grpcFrame(bytes: number): Buffer {
  const b = Buffer.alloc(5 + bytes, "x");
  b.writeUInt8(0, 0);
  b.writeUInt32BE(bytes, 1);
  return b;
}

/** `body` framed as one gRPC message. */
export function grpcMessage(body: Buffer): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b.writeUInt32BE(body.length, 1);
  body.copy(b, 5);
  return b;
}

export function parseH2load(out: string): Omit<ToolResult, "p50Ms" | "p99Ms"> {
  const fin = /finished in ([\d.]+)(ms|s)/.exec(out);
  const req =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      out,
    );
  if (!fin || !req) throw new Error(`h2load: cannot parse:\n${out}`);
  const seconds = Number(fin[1]) / (fin[2] === "ms" ? 1000 : 1);
  const [, , , , succeeded, failed, errored, timeout] = req.map(Number);
  return {
    requests: succeeded ?? 0,
    bytes: 0,
    seconds,
    errors: (failed ?? 0) + (errored ?? 0) + (timeout ?? 0),
  };
}

export async function h2load(o: H2loadOptions): Promise<ToolResult> {
  const data = join(o.dir, o.body ? "grpc-body.bin" : `grpc-${o.payloadBytes}.bin`);
  writeFileSync(data, o.body ? grpcMessage(o.body) : grpcFrame(o.payloadBytes));
  const log = join(o.dir, "h2load.log");
  writeFileSync(log, "");
  const args = [
    `-c${o.connections}`,
    `-m${o.streams}`,
    "-t1",
    "-D",
    String(o.seconds),
    "-d",
    data,
    "-H",
    "content-type: application/grpc",
    "-H",
    "te: trailers",
    ...(o.headers ?? []).flatMap((h) => ["-H", h]),
    `--log-file=${log}`,
    `http://127.0.0.1:${o.port}${o.path}`,
  ];
  const result = parseH2load(await runTool("h2load", TOOLS.h2load.binary, args, (o.seconds + 30) * 1000));
  const histogram = new LatencyHistogram();
  let non200 = 0;
  for (const line of readFileSync(log, "utf8").split("\n")) {
    const [, status, micros] = line.split("\t");
    if (micros === undefined) continue;
    if (status !== "200") non200++;
    histogram.recordMicros(Number(micros));
  }
  return {
    ...result,
    errors: result.errors + non200,
    p50Ms: histogram.percentileMs(50),
    p99Ms: histogram.percentileMs(99),
  };
}
