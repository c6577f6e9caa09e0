#!/usr/bin/env -S node --min-semi-space-size=8 --max-semi-space-size=8
/**
 * The command line of docs/architecture.md: `fulcrum [run] --config FILE`, `fulcrum check --config FILE`,
 * `fulcrum demo`, and the tools `fulcrum sim` (cli-sim.ts) and `fulcrum call` (cli-call.ts). These cli
 * modules are the only ones that read argv, env and signals.
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
import { callCommand } from "./cli-call.js";
import { simCommand } from "./cli-sim.js";
import { startDemo } from "./demo.js";

const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error"];

const HELP = `Usage:
  fulcrum [run] --config FILE   run until SIGTERM/SIGINT (graceful drain; a second signal stops at once)
  fulcrum check --config FILE   validate; print the resolved config as JSON (exit 0) or every error (exit 1)
  fulcrum demo [--listen HOST:PORT] [--grpc-listen HOST:PORT] [--admin-listen HOST:PORT] [--no-traffic]
                                simulated workers behind a built-in config, the status page and a
                                gentle built-in load (what \`npm start\` runs)
  fulcrum sim grpc|triton|torchserve|tcp|llm --name NAME --listen HOST:PORT [--latency 20ms] [--slots 4]
              [--speed 1] [--models a,b]
                                one simulated worker in the foreground (--speed 2: twice as slow)
  fulcrum call --address HOST:PORT [--method /pkg.Service/Method] [--count N] [--concurrency C]
               [--metadata k=v ...] [--data JSON] [--model NAME] [--deadline 5s] [--tcp]
                                N calls over one HTTP/2 connection: which worker answered, and the status

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
  // `sim` and `call` have options of their own.
  const own = argv[0] === "sim" ? simCommand : argv[0] === "call" ? callCommand : undefined;
  if (own) {
    if (!nodeIsSupported()) {
      process.stderr.write(`fulcrum needs Node.js >= 22.12; this is ${process.version}\n`);
      return 1;
    }
    return own(argv.slice(1));
  }
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
        "admin-listen": { type: "string" },
        "no-traffic": { type: "boolean" },
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
        {
          listen: values.listen ?? "127.0.0.1:9000",
          grpcListen: values["grpc-listen"] ?? "127.0.0.1:9001",
          adminListen: values["admin-listen"] ?? "127.0.0.1:9901",
          traffic: values["no-traffic"] !== true,
        },
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
  const early = holdSignals();
  let fulcrum: Fulcrum;
  try {
    fulcrum = await Fulcrum.start(config, { log, metrics, configFile: file });
  } catch (err) {
    early.release();
    if (err instanceof ConfigError) {
      for (const issue of err.issues) log.error({ path: issue.path }, issue.message);
      printConfigError(err);
      return 1;
    }
    throw err;
  }
  log.info({ version: version(), listeners: fulcrum.listeners.length }, "started");
  return waitForSignals(log, fulcrum, undefined, early);
}

async function demo(
  where: { listen: string; grpcListen: string; adminListen: string; traffic: boolean },
  level: LogLevel,
): Promise<number> {
  const log = createLogger({ level });
  const metrics = createMetrics(new Registry());
  const early = holdSignals();
  try {
    const running = await startDemo({ log, metrics, ...where });
    const grpc = running.listeners.find((l) => l.protocol === "grpc");
    const tcp = running.listeners.find((l) => l.protocol === "tcp");
    const lines = [
      "",
      "Fulcrum demo is running.",
      `  status page: ${running.statusPage}   (also ${running.statusPage}status and ${running.statusPage}metrics)`,
      ...running.listeners.map(
        (l) =>
          `  ${l.protocol} listener "${l.name}": ${l.address}` +
          (l.protocol === "grpc"
            ? "   (every call balanced on its own: least connections, Triton health checks)"
            : "   (each connection greeted with the name of the worker it reached, then echoed)"),
      ),
      ...running.workers.map((w) => `  simulated worker ${w.name}: ${w.address}, ${w.description}`),
      running.traffic
        ? "  built-in load: ModelInfer at up to 100 calls/s, 8 at once, over one HTTP/2 connection (--no-traffic: none)"
        : "  built-in load: off (--no-traffic)",
      "Send calls by hand (another terminal, in this directory):",
      ...(grpc
        ? [
            `  npx fulcrum call --address ${grpc.address} --method /inference.GRPCInferenceService/ModelInfer --count 10`,
          ]
        : []),
      ...(tcp ? [`  npx fulcrum call --address ${tcp.address} --tcp --data hello --count 3`] : []),
      "Ctrl-C stops.",
      "",
    ];
    process.stderr.write(lines.join("\n") + "\n");
    return await waitForSignals(log, running.fulcrum, () => running.stop(), early);
  } catch (err) {
    early.release();
    if (err instanceof ConfigError) {
      printConfigError(err);
      return 1;
    }
    throw err;
  }
}

/**
 * SIGTERM/SIGINT that arrive while Fulcrum starts: its "listening" lines go out before start-up has
 * returned, and a tool that reads them may signal at once. Held here, they are handled as soon as
 * the signal handlers are in place (instead of Node's default: dying mid-start with no drain).
 * Release only after the next handlers are added: when a signal's last listener goes, Node stops
 * watching it, and a signal caught but not yet dispatched is lost (or, in the gap, kills).
 */
function holdSignals(): { release(): NodeJS.Signals[] } {
  const held: NodeJS.Signals[] = [];
  const hold = (signal: NodeJS.Signals): void => {
    held.push(signal);
    if (held.length > 1) process.exit(0); // a second signal stops at once, even mid-start
  };
  process.on("SIGTERM", hold);
  process.on("SIGINT", hold);
  let released = false;
  return {
    release: () => {
      if (!released) {
        released = true;
        process.off("SIGTERM", hold);
        process.off("SIGINT", hold);
      }
      return held;
    },
  };
}

/**
 * Runs until SIGTERM/SIGINT: `stop` (default: drain), then resolve 0; a second signal closes everything
 * at once. `early`: the signals held during start-up, released once these handlers are in place.
 */
function waitForSignals(
  log: Logger,
  fulcrum: Fulcrum,
  stop = () => fulcrum.stop(),
  early?: { release(): NodeJS.Signals[] },
): Promise<number> {
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
      void stop().then(() => resolve(0));
    };
    process.on("SIGTERM", onStop);
    process.on("SIGINT", onStop);
    process.on("SIGHUP", () => {
      log.info("SIGHUP: reloading the config");
      // reloadFile logs and counts failures itself; the old config keeps serving.
      fulcrum.reloadFile().catch((err: unknown) => log.error({ err }, "reload failed"));
    });
    for (const signal of early?.release() ?? []) onStop(signal);
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
