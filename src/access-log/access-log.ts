/**
 * Access logs (`listeners[].access_log`): one JSON line per gRPC stream or TCP connection when it
 * ends, `"msg":"access"`, sampled per listener. The data path pays for building the line and little
 * else: lines go to a per-thread buffer that is written to stdout asynchronously in chunks of whole
 * lines (access-log-output.ts: never interleaved mid-line with the ordinary log), on a timer and at
 * shutdown, never with a synchronous write per line. Each worker thread has its own buffer.
 *
 * A folder of its own, not part of log/: it reads the gRPC status names (grpc/grpc-status.ts) and is
 * written by the listeners of every transport, while log/ sits below everything.
 */
import type { RandomSource } from "../balancer/picker.js";
import type { ListenerConfig } from "../config/config-schema.js";
import { statusName } from "../grpc/grpc-status.js";
import { ChunkedFdWriter } from "./access-log-output.js";
import type { StreamOutcome } from "../grpc/stream-outcome.js";

/** Where access lines go: whole lines, each ending with "\n". */
export interface AccessLogDestination {
  write(line: string): unknown;
}

/** Most quoted values an AccessLog keeps. */
const MAX_QUOTED = 256;
/**
 * Longest value written as it is; a longer one (a client-chosen `:path` may be 16 KiB) is cut, so a
 * line stays far below the 4096-byte chunk a pipe writes whole, and the cache stays small.
 */
const MAX_VALUE = 256;
/** Pending lines are written at least this often. */
const FLUSH_EVERY_MS = 1000;

/**
 * One thread's access-log output. Over stdout it buffers (see the file comment); over an injected
 * destination (tests) each line is handed on at once.
 */
export class AccessLogSink {
  private out: ChunkedFdWriter | undefined;
  private timer: NodeJS.Timeout | undefined;

  /** `destination` absent: stdout, opened at the first line. */
  constructor(private readonly destination?: AccessLogDestination) {}

  write(line: string): void {
    if (this.destination) {
      this.destination.write(line);
      return;
    }
    (this.out ??= this.open()).write(line);
  }

  /** Writes what is pending now (shutdown, the end of a worker thread). */
  flush(): void {
    this.out?.flushSync();
  }

  /** Flushes and stops the timer; a later line opens the buffer again. */
  close(): void {
    this.flush();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.out = undefined;
  }

  private open(): ChunkedFdWriter {
    const out = new ChunkedFdWriter(1);
    this.timer = setInterval(() => out.flush(), FLUSH_EVERY_MS);
    this.timer.unref();
    return out;
  }
}

/** How a TCP connection ended, as its access line tells it. */
export interface ConnectionAccess {
  readonly client: string | undefined;
  readonly cluster: string;
  readonly endpoint: string | undefined;
  readonly closeReason: string;
  readonly seconds: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly retries: number;
  readonly route: string | undefined;
}

/**
 * One listener's access log: whether a stream or connection is logged (`enabled`, then a `sample`
 * fraction drawn from `random`), and its line. A reload changes `enabled` and `sample` in place.
 */
export class AccessLog {
  private enabled = false;
  private sample = 1;
  private head = "";
  /** JSON strings of the values lines repeat (clients, methods, clusters, endpoints), bounded. */
  private readonly quoted = new Map<string, string>();

  constructor(
    config: ListenerConfig,
    private readonly sink: AccessLogSink,
    private readonly random: RandomSource = Math.random,
  ) {
    this.configure(config);
  }

  configure(config: ListenerConfig): void {
    this.enabled = config.access_log.enabled && config.access_log.sample > 0;
    this.sample = config.access_log.sample;
    this.head = `","pid":${process.pid},"msg":"access","listener":${JSON.stringify(config.name)},"protocol":"${config.protocol}"`;
  }

  private quote(value: string): string {
    if (value.length > MAX_VALUE) return JSON.stringify(`${value.slice(0, MAX_VALUE)}...`);
    let q = this.quoted.get(value);
    if (q === undefined) {
      if (this.quoted.size >= MAX_QUOTED) this.quoted.clear();
      q = JSON.stringify(value);
      this.quoted.set(value, q);
    }
    return q;
  }

  /** True when the stream or connection now ending (or starting, for tcp) is to be logged. */
  take(): boolean {
    if (!this.enabled) return false;
    return this.sample >= 1 || this.random() < this.sample;
  }

  /** The line of a gRPC stream of `cluster` that ended with `a`. */
  stream(cluster: string, a: StreamOutcome): void {
    let line = `{"level":"info","time":"${isoNow()}${this.head}`;
    if (a.client !== undefined) line += `,"client":${this.quote(a.client)}`;
    if (a.method !== undefined) line += `,"method":${this.quote(a.method)}`;
    line += `,"cluster":${this.quote(cluster)}`;
    if (a.endpoint !== undefined) line += `,"endpoint":${this.quote(a.endpoint)}`;
    line += `,"grpc_status":${a.status},"grpc_code":"${statusName(a.status)}","duration_ms":${ms(a.seconds)}`;
    line += `,"bytes_in":${a.bytesIn},"bytes_out":${a.bytesOut},"retries":${a.retries}`;
    if (a.route !== undefined) line += `,"route":"${a.route}"`;
    this.sink.write(line + "}\n");
  }

  /** The line of a TCP connection that ended. */
  connection(a: ConnectionAccess): void {
    let line = `{"level":"info","time":"${isoNow()}${this.head}`;
    if (a.client !== undefined) line += `,"client":${this.quote(a.client)}`;
    line += `,"cluster":${this.quote(a.cluster)}`;
    if (a.endpoint !== undefined) line += `,"endpoint":${this.quote(a.endpoint)}`;
    line += `,"close_reason":"${a.closeReason}","duration_ms":${ms(a.seconds)}`;
    line += `,"bytes_in":${a.bytesIn},"bytes_out":${a.bytesOut},"retries":${a.retries}`;
    if (a.route !== undefined) line += `,"route":"${a.route}"`;
    this.sink.write(line + "}\n");
  }
}

let isoMs = 0;
let iso = "";

/** The time now as ISO 8601, formatted once per millisecond (many lines share one under load). */
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    iso = new Date(now).toISOString();
  }
  return iso;
}

/** Seconds as milliseconds to the microsecond. */
function ms(seconds: number): number {
  return Math.round(seconds * 1e6) / 1000;
}
