/**
 * One load run, closed or open loop, in measurement windows.
 *
 * - Closed loop: `connections × concurrency` requests in flight; each answer sends the next.
 * - Open loop (`rate`): requests are sent on a fixed schedule whatever the answers do, and latency
 *   is measured from each request's intended send time, so a stalled target shows as latency instead
 *   of hiding as fewer requests (coordinated omission).
 *
 * Every `windowMs` the counts and the histogram of the window are closed; `isStable` (see
 * loadgen-windows.ts) may end the run early, like perf_analyzer's stability check.
 */
import { grpcFrame } from "../tools/tool-h2load.js";
import { GrpcConnection } from "./loadgen-client.js";
import { LatencyHistogram } from "./loadgen-histogram.js";
import { streamLane, unaryLane, type Lane } from "./loadgen-lanes.js";

export interface LoadSpec {
  /** `host:port` of the target. */
  readonly address: string;
  /** e.g. `/fulcrum.sim.Worker/Echo`; streaming needs a bidi echo method such as `/fulcrum.sim.Worker/Bidi`. */
  readonly path: string;
  readonly streaming: boolean;
  readonly payloadBytes: number;
  /** The request message's protobuf bytes (framed here); default `payloadBytes` of filler. */
  readonly message?: Buffer | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  readonly deadlineMs: number;
  readonly connections: number;
  /** Closed loop: requests in flight per connection (streaming: streams per connection). */
  readonly concurrency: number;
  /** Open loop when set: requests per second over all connections. */
  readonly rate?: number | undefined;
  /** Stop after this long, or after `count` requests, whichever comes first. */
  readonly durationMs: number;
  readonly count?: number | undefined;
  readonly windowMs?: number | undefined;
  readonly isStable?: ((windows: readonly WindowStats[]) => number | undefined) | undefined;
  readonly onProgress?: ((doneMs: number, requests: number) => void) | undefined;
}

export interface WindowStats {
  readonly seconds: number;
  readonly requests: number;
  readonly ok: number;
  readonly errors: number;
  readonly histogram: LatencyHistogram;
  /** Latency of the calls answered OK only. */
  readonly okHistogram: LatencyHistogram;
  readonly statuses: Record<string, number>;
}

export interface LoadRun {
  /** All windows in order; `measured` is the number at the end that make up the result. */
  readonly windows: readonly WindowStats[];
  readonly measured: number;
  /** True when `isStable` ended the run. */
  readonly stable: boolean;
}

export async function runLoad(spec: LoadSpec): Promise<LoadRun> {
  const conns = await Promise.all(
    Array.from({ length: spec.connections }, () => GrpcConnection.connect(spec.address)),
  );
  const message = spec.message ? framed(spec.message) : grpcFrame(spec.payloadBytes);
  const windows: WindowStats[] = [];
  let current = newWindow();
  let total = 0;
  let stopped = false;
  let inFlight = 0;
  let measured: number | undefined;
  const closedLoop = spec.rate === undefined;
  const lanes: Lane[] = [];
  const reportFor =
    (index: number) =>
    (status: number, sentAtMs: number): void => {
      inFlight--;
      current.requests++;
      if (status === 0) current.ok++;
      else current.errors++;
      current.statuses[String(status)] = (current.statuses[String(status)] ?? 0) + 1;
      const ms = performance.now() - sentAtMs;
      current.histogram.recordMs(ms);
      if (status === 0) current.okHistogram.recordMs(ms);
      // Closed loop: the lane that answered sends the next request (a stream keeps one in flight).
      if (closedLoop && !stopped) sendOn(lanes[index], performance.now());
    };
  const sendOn = (lane: Lane | undefined, at: number): void => {
    if (!lane || stopped || (spec.count !== undefined && total >= spec.count)) return;
    total++;
    inFlight++;
    lane.send(at);
  };
  const perConn = spec.streaming ? spec.concurrency : 1;
  for (const conn of conns) {
    for (let i = 0; i < perConn; i++) {
      const o = { path: spec.path, metadata: spec.metadata, deadlineMs: spec.deadlineMs };
      const report = reportFor(lanes.length);
      lanes.push(spec.streaming ? streamLane(conn, o, message, report) : unaryLane(conn, o, message, report));
    }
  }
  const start = performance.now();
  let windowStart = start;
  const windowMs = spec.windowMs ?? spec.durationMs;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      if (!closedLoop && spec.rate) {
        const due = Math.floor(((now - start) / 1000) * spec.rate);
        while (total < due && !stopped && (spec.count === undefined || total < spec.count)) {
          sendOn(lanes[total % lanes.length], start + (total * 1000) / spec.rate);
        }
      }
      spec.onProgress?.(now - start, total);
      const countDone = spec.count !== undefined && total >= spec.count && inFlight === 0;
      if (now - windowStart >= windowMs || now - start >= spec.durationMs || countDone) {
        windows.push({ ...current, seconds: (now - windowStart) / 1000 });
        current = newWindow();
        windowStart = now;
        measured = spec.isStable?.(windows);
      }
      if (now - start >= spec.durationMs || countDone || measured !== undefined) {
        clearInterval(tick);
        stopped = true;
        resolve();
      }
    }, 1);
    if (closedLoop) {
      const perLane = spec.streaming ? 1 : spec.concurrency;
      for (let i = 0; i < perLane; i++) for (const lane of lanes) sendOn(lane, performance.now());
    }
  });
  for (const lane of lanes) lane.close();
  const drainUntil = performance.now() + spec.deadlineMs + 1000;
  while (inFlight > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 10));
  await Promise.all(conns.map((c) => c.close()));
  return { windows, measured: measured ?? windows.length, stable: measured !== undefined };
}

function newWindow(): {
  requests: number;
  ok: number;
  errors: number;
  histogram: LatencyHistogram;
  okHistogram: LatencyHistogram;
  statuses: Record<string, number>;
} {
  return {
    requests: 0,
    ok: 0,
    errors: 0,
    histogram: new LatencyHistogram(),
    okHistogram: new LatencyHistogram(),
    statuses: {},
  };
}

/** `bytes` behind the 5-byte gRPC message prefix (uncompressed). */
function framed(bytes: Buffer): Buffer {
  const b = Buffer.alloc(5 + bytes.length);
  b.writeUInt32BE(bytes.length, 1);
  bytes.copy(b, 5);
  return b;
}
