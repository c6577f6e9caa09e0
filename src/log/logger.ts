/**
 * The one root logger, built at start-up and passed down; components take `child({ component })`.
 * JSON lines on stdout (tests and log shippers parse them); pretty-printed when stdout is a terminal.
 */
import { pino, type Logger, type DestinationStream } from "pino";

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";
export type { Logger };

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Where lines go; default stdout. Tests pass an in-memory stream. */
  readonly destination?: DestinationStream | undefined;
  /** Force pretty output on or off; default: pretty only when stdout is a TTY. */
  readonly pretty?: boolean | undefined;
}

export function createLogger(options: LoggerOptions): Logger {
  const base = {
    level: options.level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (options.destination) return pino(base, options.destination);
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  if (pretty) {
    return pino({
      ...base,
      formatters: {},
      transport: { target: "pino-pretty", options: { colorize: true, translateTime: "SYS:HH:MM:ss.l" } },
    });
  }
  return pino(base, pino.destination({ dest: 1, sync: true }));
}
