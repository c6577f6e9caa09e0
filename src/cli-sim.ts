/**
 * `fulcrum sim grpc|triton|torchserve|tcp|llm --name NAME --listen HOST:PORT [--latency 20ms] [--slots 4]
 * [--speed 1] [--models a,b]`: one simulated worker of src/sim/ in the foreground, for the README's
 * tour and for trying a config without GPUs. Logs `{"msg":"listening","worker":NAME,"address":...}`
 * once bound (port 0 picks a free port), a human banner on stderr, and stops on SIGTERM/SIGINT.
 * Exit codes: 0 stopped by a signal, 1 the address cannot be bound, 2 usage error.
 */
import { parseArgs } from "node:util";
import { splitAddress } from "./balancer/endpoint-set.js";
import { durationMs } from "./config/config-units.js";
import { createLogger } from "./log/logger.js";
import { describeSim, type SimKind } from "./sim/sim-describe.js";
import { SimGrpcWorker } from "./sim/sim-grpc-worker.js";
import { SimLlmWorker } from "./sim/sim-llm-worker.js";
import { SimTcpWorker } from "./sim/sim-tcp-worker.js";
import { SimTorchServeWorker } from "./sim/sim-torchserve-worker.js";
import { SimTritonWorker } from "./sim/sim-triton-worker.js";

export const SIM_USAGE =
  "usage: fulcrum sim grpc|triton|torchserve|tcp|llm --name NAME --listen HOST:PORT [--latency 20ms] [--slots 4] [--speed 1] [--models a,b]";

const KINDS: readonly SimKind[] = ["grpc", "triton", "torchserve", "tcp", "llm"];

/** What `fulcrum sim` was asked to start. */
export interface SimSpec {
  readonly kind: SimKind;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly latencyMs: number;
  readonly slots: number;
  readonly speed: number;
  readonly models: readonly string[];
}

interface SimWorker {
  listen(host: string, port: number): Promise<{ address: string }>;
  close(): Promise<void>;
}

class SimUsageError extends Error {}

/** Parses the arguments after `sim`; throws SimUsageError naming the bad one. */
export function parseSimArgs(argv: string[]): SimSpec {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        name: { type: "string" },
        listen: { type: "string" },
        latency: { type: "string" },
        slots: { type: "string" },
        speed: { type: "string" },
        models: { type: "string" },
      },
    });
  } catch (err) {
    throw new SimUsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const kind = positionals[0] as SimKind | undefined;
  if (kind === undefined || !KINDS.includes(kind)) {
    throw new SimUsageError(`expected a kind: ${KINDS.join(" | ")}, got ${JSON.stringify(kind ?? "")}`);
  }
  if (positionals.length > 1) throw new SimUsageError(`unexpected argument "${positionals[1]}"`);
  const name = values.name;
  if (name === undefined || name === "") throw new SimUsageError("--name NAME is required");
  if (values.listen === undefined) throw new SimUsageError("--listen HOST:PORT is required");
  const where = splitAddress(values.listen);
  if (!where) throw new SimUsageError(`--listen: expected host:port, got "${values.listen}"`);
  if (kind === "tcp") {
    for (const option of ["latency", "slots", "speed", "models"] as const) {
      if (values[option] !== undefined) throw new SimUsageError(`--${option} does not apply to a tcp worker`);
    }
  }
  if (kind === "grpc" && values.models !== undefined) {
    throw new SimUsageError("--models applies to triton, torchserve and llm workers");
  }
  if (kind === "llm" && (values.models ?? "").includes(",")) {
    throw new SimUsageError(`--models: an llm worker serves one model, got "${values.models}"`);
  }
  let latencyMs: number;
  try {
    latencyMs = durationMs(values.latency ?? "20ms");
  } catch {
    throw new SimUsageError(`--latency: expected a duration like "20ms", got "${values.latency}"`);
  }
  const slots = Number(values.slots ?? 4);
  if (!Number.isInteger(slots) || slots < 1) {
    throw new SimUsageError(`--slots: expected a whole number ≥ 1, got "${values.slots}"`);
  }
  const speed = Number(values.speed ?? 1);
  if (!Number.isFinite(speed) || speed <= 0 || values.speed?.trim() === "") {
    throw new SimUsageError(`--speed: expected a number > 0 (2 = twice as slow), got "${values.speed}"`);
  }
  const models = (values.models ?? (kind === "llm" ? "llm" : "simple")).split(",").map((m) => m.trim());
  if (models.some((m) => m === ""))
    throw new SimUsageError(`--models: expected names like a,b, got "${values.models}"`);
  return { kind, name, host: where.host, port: where.port, latencyMs, slots, speed, models };
}

function workerFor(spec: SimSpec): SimWorker {
  const timing = { name: spec.name, baseLatencyMs: spec.latencyMs, slots: spec.slots, speed: spec.speed };
  switch (spec.kind) {
    case "grpc":
      return new SimGrpcWorker(timing);
    case "triton":
      return new SimTritonWorker({ ...timing, models: spec.models });
    case "torchserve":
      return new SimTorchServeWorker({ ...timing, models: spec.models });
    case "tcp":
      return new SimTcpWorker({ name: spec.name });
    case "llm":
      // --latency is the time per output token, --slots the KV capacity; --speed scales prefill too.
      return new SimLlmWorker({
        name: spec.name,
        model: spec.models[0],
        decodeMsPerToken: spec.latencyMs * spec.speed,
        prefillMsPerBlock: spec.speed,
        maxSequences: spec.slots,
      });
  }
}

/** Runs `fulcrum sim …` until SIGTERM/SIGINT; resolves with the exit code. */
export async function simCommand(argv: string[]): Promise<number> {
  let spec: SimSpec;
  try {
    spec = parseSimArgs(argv);
  } catch (err) {
    if (!(err instanceof SimUsageError)) throw err;
    process.stderr.write(`fulcrum sim: ${err.message}\n${SIM_USAGE}\n`);
    return 2;
  }
  const log = createLogger({ level: "info" });
  const worker = workerFor(spec);
  let address: string;
  try {
    ({ address } = await worker.listen(spec.host, spec.port));
  } catch (err) {
    log.error({ worker: spec.name, err }, `cannot bind ${spec.host}:${spec.port}`);
    process.stderr.write(`fulcrum sim: --listen: cannot bind ${spec.host}:${spec.port}: ${String(err)}\n`);
    await worker.close().catch(() => undefined);
    return 1;
  }
  log.info({ worker: spec.name, address }, "listening");
  process.stderr.write(
    `simulated ${spec.kind} worker "${spec.name}" on ${address}: ${describeSim(spec)}. Ctrl-C stops.\n`,
  );
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off("SIGTERM", stop).off("SIGINT", stop);
      log.info({ worker: spec.name, signal }, "stopping");
      void worker.close().then(() => resolve(0));
    };
    process.on("SIGTERM", stop).on("SIGINT", stop);
  });
}
