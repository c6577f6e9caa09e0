#!/usr/bin/env -S node --min-semi-space-size=8 --max-semi-space-size=8
/**
 * The command line of docs/architecture.md: `fulcrum [run] --config FILE`, `fulcrum check --config FILE`,
 * `fulcrum demo`. The only module that reads argv, env and signals.
 * Exit codes: 0 normal, 1 invalid config or a port that cannot be bound, 2 usage error.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Registry } from "prom-client";
import { ConfigError } from "./config/config-error.js";
import { loadConfigFile, redactConfig } from "./config/config-load.js";
import type { FulcrumConfig } from "./config/config-schema.js";
import { createLogger, type LogLevel, type Logger } from "./log/logger.js";
import { createMetrics } from "./metrics/metrics.js";
import { Fulcrum } from "./runtime/fulcrum.js";
import { startDemo } from "./demo.js";

const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error"];

const HELP = `Usage:
  fulcrum [run] --config FILE   run until SIGTERM/SIGINT (graceful drain; a second signal stops at once)
  fulcrum check --config FILE   validate; print the resolved config as JSON (exit 0) or every error (exit 1)
  fulcrum demo [--listen HOST:PORT] [--grpc-listen HOST:PORT]
                                simulated workers behind a built-in config (what \`npm start\` runs)

Options:
  --config FILE        the YAML config (see examples/ and fulcrum.schema.json)
  --log-level LEVEL    trace | debug | info | warn | error (overrides log.level)
  --version            print the version
  --help               print this help

Exit codes: 0 normal, 1 invalid config or a port that cannot be bound, 2 usage error.
`;

class UsageError extends Error {}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

function nodeIsSupported(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  return major > 22 || (major === 22 && minor >= 12);
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: "string", short: "c" },
        "log-level": { type: "string" },
        listen: { type: "string" },
        "grpc-listen": { type: "string" },
        version: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`fulcrum ${version()}\n`);
    return 0;
  }
  if (!nodeIsSupported()) {
    process.stderr.write(`fulcrum needs Node.js >= 22.12; this is ${process.version}\n`);
    return 1;
  }
  const level = values["log-level"];
  if (level !== undefined && !LOG_LEVELS.includes(level as LogLevel)) {
    throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(" | ")}, got "${level}"`);
  }
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const command = positionals[0] ?? "run";
  switch (command) {
    case "run":
      return run(requireConfig(values.config), level as LogLevel | undefined);
    case "check":
      return check(requireConfig(values.config));
    case "demo":
      return demo(
        values.listen ?? "127.0.0.1:9000",
        values["grpc-listen"] ?? "127.0.0.1:9001",
        (level as LogLevel | undefined) ?? "info",
      );
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function requireConfig(file: string | undefined): string {
  if (file === undefined) throw new UsageError("--config FILE is required");
  return file;
}

function printConfigError(err: ConfigError): void {
  for (const issue of err.issues) process.stderr.write(`${issue.path}: ${issue.message}\n`);
}

function check(file: string): number {
  try {
    const config = loadConfigFile(file);
    process.stdout.write(`${JSON.stringify(redactConfig(config), null, 2)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      printConfigError(err);
      return 1;
    }
    throw err;
  }
}

async function run(file: string, levelOverride: LogLevel | undefined): Promise<number> {
  let config: FulcrumConfig;
  try {
    config = loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      createLogger({ level: levelOverride ?? "info" }).error(
        { config: file, errors: err.issues.map((i) => `${i.path}: ${i.message}`) },
        "invalid config: nothing started",
      );
      printConfigError(err);
      return 1;
    }
    throw err;
  }
  const log = createLogger({ level: levelOverride ?? config.log.level });
  const metrics = createMetrics(new Registry());
  let fulcrum: Fulcrum;
  try {
    fulcrum = await Fulcrum.start(config, { log, metrics, configFile: file });
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const issue of err.issues) log.error({ path: issue.path }, issue.message);
      printConfigError(err);
      return 1;
    }
    throw err;
  }
  log.info({ version: version(), listeners: fulcrum.listeners.length }, "started");
  return waitForSignals(log, fulcrum);
}

async function demo(listen: string, grpcListen: string, level: LogLevel): Promise<number> {
  const log = createLogger({ level });
  const metrics = createMetrics(new Registry());
  try {
    const running = await startDemo({ log, metrics, listen, grpcListen });
    const lines = [
      "",
      "Fulcrum demo is running.",
      ...running.listeners.map(
        (l) =>
          `  ${l.protocol} listener "${l.name}": ${l.address}` +
          (l.protocol === "tcp" ? `   (try: nc ${l.address.replace(/:(\d+)$/, " $1")})` : ""),
      ),
      ...running.workers.map((w) => `  simulated worker ${w.name}: ${w.address}`),
      "TCP: each connection is greeted with the name of the worker it reached, then echoed.",
      "gRPC: fulcrum.sim.Worker/Infer (raw bytes) answers with the worker's name; every call of one",
      "  connection is balanced on its own (least connections). Ctrl-C stops.",
      "",
    ];
    process.stderr.write(lines.join("\n") + "\n");
    return await waitForSignals(log, running.fulcrum, () => running.stopWorkers());
  } catch (err) {
    if (err instanceof ConfigError) {
      printConfigError(err);
      return 1;
    }
    throw err;
  }
}

/** Runs until SIGTERM/SIGINT: drain, then resolve 0; a second signal closes everything at once. */
function waitForSignals(log: Logger, fulcrum: Fulcrum, after?: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let signals = 0;
    const onStop = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        log.warn({ signal }, "second signal: stopping now");
        fulcrum.closeNow();
        resolve(0);
        return;
      }
      log.info({ signal }, "draining");
      void fulcrum
        .stop()
        .then(() => after?.())
        .then(() => resolve(0));
    };
    process.on("SIGTERM", onStop);
    process.on("SIGINT", onStop);
    process.on("SIGHUP", () => {
      log.info("SIGHUP: reloading the config");
      // reloadFile logs and counts failures itself; the old config keeps serving.
      fulcrum.reloadFile().catch((err: unknown) => log.error({ err }, "reload failed"));
    });
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    if (code !== 0) return;
    // Listeners and timers are closed; anything left (a stuck socket) must not hold the exit.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`fulcrum: ${err.message}\n\n${HELP}`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`fulcrum: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
