/**
 * Access logs (`listeners[].access_log`): one JSON line per gRPC stream or TCP connection when it
 * ends, `"msg":"access"`, sampled per listener. The data path pays for building the line and nothing
 * else: lines go to a per-thread buffer (sonic-boom, asynchronous) that is written to stdout once a
 * few KiB are pending, on a timer and at shutdown, never with a synchronous write per line.
 *
 * Lines never interleave mid-line with the ordinary log, which writes whole lines synchronously: every
 * write of the buffer holds whole lines and at most PIPE_BUF (4096) bytes, which a pipe writes
 * atomically, and writes to a regular file do not interleave either. Each worker thread has its own
 * buffer on the same stdout.
 */
import { pino } from "pino";
import type { RandomSource } from "../balancer/picker.js";
import type { ListenerConfig } from "../config/config-schema.js";
import type { StreamOutcome } from "../grpc/grpc-stream-proxy.js";
import { statusName } from "../grpc/grpc-status.js";

type SonicBoom = ReturnType<typeof pino.destination>;

/** Where access lines go: whole lines, each ending with "\n". */
export interface AccessLogDestination {
  write(line: string): unknown;
}

/** Most bytes of one write: PIPE_BUF on Linux, so a write to a pipe is atomic. */
const MAX_WRITE = 4096;
/** Pending bytes that start a write (below MAX_WRITE, as sonic-boom requires). */
const MIN_WRITE = 3584;
/** Pending lines are written at least this often. */
const FLUSH_EVERY_MS = 1000;

/**
 * One thread's access-log output. Over stdout it buffers (see the file comment); over an injected
 * destination (tests) each line is handed on at once.
 */
export class AccessLogSink {
  private boom: SonicBoom | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending = false;

  /** `destination` absent: stdout, opened at the first line. */
  constructor(private readonly destination?: AccessLogDestination) {}

  write(line: string): void {
    if (this.destination) {
      this.destination.write(line);
      return;
    }
    (this.boom ??= this.open()).write(line);
    this.pending = true;
  }

  /** Writes what is pending now (shutdown, the end of a worker thread). */
  flush(): void {
    const boom = this.boom;
    if (!boom || !this.pending) return;
    this.pending = false;
    try {
      boom.flushSync();
    } catch {
      // stdout closed or busy beyond retries: the lines are lost, the shutdown goes on.
    }
  }

  /** Flushes and stops the timer; a later line opens the buffer again. */
  close(): void {
    this.flush();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private open(): SonicBoom {
    const boom = pino.destination({ dest: 1, sync: false, minLength: MIN_WRITE, maxWrite: MAX_WRITE });
    boom.on("error", noop);
    this.timer = setInterval(() => {
      if (!this.pending) return;
      this.pending = false;
      boom.flush();
    }, FLUSH_EVERY_MS);
    this.timer.unref();
    return boom;
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

  /** True when the stream or connection now ending (or starting, for tcp) is to be logged. */
  take(): boolean {
    if (!this.enabled) return false;
    return this.sample >= 1 || this.random() < this.sample;
  }

  /** The line of a gRPC stream of `cluster` that ended with `a`. */
  stream(cluster: string, a: StreamOutcome): void {
    let line = `{"level":"info","time":"${new Date().toISOString()}${this.head}`;
    if (a.client !== undefined) line += `,"client":${JSON.stringify(a.client)}`;
    if (a.method !== undefined) line += `,"method":${JSON.stringify(a.method)}`;
    line += `,"cluster":${JSON.stringify(cluster)}`;
    if (a.endpoint !== undefined) line += `,"endpoint":${JSON.stringify(a.endpoint)}`;
    line += `,"grpc_status":${a.status},"grpc_code":"${statusName(a.status)}","duration_ms":${ms(a.seconds)}`;
    line += `,"bytes_in":${a.bytesIn},"bytes_out":${a.bytesOut},"retries":${a.retries}`;
    if (a.route !== undefined) line += `,"route":"${a.route}"`;
    this.sink.write(line + "}\n");
  }

  /** The line of a TCP connection that ended. */
  connection(a: ConnectionAccess): void {
    let line = `{"level":"info","time":"${new Date().toISOString()}${this.head}`;
    if (a.client !== undefined) line += `,"client":${JSON.stringify(a.client)}`;
    line += `,"cluster":${JSON.stringify(a.cluster)}`;
    if (a.endpoint !== undefined) line += `,"endpoint":${JSON.stringify(a.endpoint)}`;
    line += `,"close_reason":"${a.closeReason}","duration_ms":${ms(a.seconds)}`;
    line += `,"bytes_in":${a.bytesIn},"bytes_out":${a.bytesOut},"retries":${a.retries}`;
    if (a.route !== undefined) line += `,"route":"${a.route}"`;
    this.sink.write(line + "}\n");
  }
}

/** Seconds as milliseconds to the microsecond. */
function ms(seconds: number): number {
  return Math.round(seconds * 1e6) / 1000;
}

function noop(): void {}
