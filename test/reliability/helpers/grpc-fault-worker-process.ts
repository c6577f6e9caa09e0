/**
 * Starts grpc-fault-worker-main.js as a child process and talks to it: its address, its counts,
 * signals (SIGKILL, SIGSTOP / SIGCONT).
 */
import { fileURLToPath } from "node:url";
import { startChild, type ChildChannel } from "./child-channel.js";

const MAIN = fileURLToPath(new URL("./grpc-fault-worker-main.js", import.meta.url));

export interface GrpcFaultWorkerOptions {
  readonly name: string;
  /** `serve` (default) answers calls; `silent` accepts TCP and never writes a byte. */
  readonly mode?: "serve" | "silent";
  readonly delayMs?: number;
  /** Reset every Nth unary call with RST_STREAM INTERNAL_ERROR (0 = never). */
  readonly resetEvery?: number;
  /** Bind this port (0 = any), so a restarted worker keeps its address. */
  readonly port?: number;
  /** Hold every unary call until `release()`. */
  readonly hold?: boolean;
}

export interface GrpcWorkerStats {
  /** Unary calls received. */
  readonly calls: number;
  readonly ok: number;
  /** Calls reset on purpose (`resetEvery`). */
  readonly reset: number;
  /** Calls the caller ended before the answer. */
  readonly cancelled: number;
  /** grpc.health.v1 Check calls. */
  readonly probes: number;
  readonly connections: number;
  /** Calls held now (`hold`). */
  readonly held: number;
}

export interface GrpcFaultWorker {
  readonly name: string;
  readonly channel: ChildChannel;
  readonly address: string;
  readonly port: number;
  stats(): Promise<GrpcWorkerStats>;
  /** Answers every held call; resolves with how many. */
  release(): Promise<number>;
  /** Ends the process (SIGKILL unless told otherwise) and waits for it. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startGrpcFaultWorker(options: GrpcFaultWorkerOptions): Promise<GrpcFaultWorker> {
  const args = [
    "--name",
    options.name,
    "--mode",
    options.mode ?? "serve",
    "--delay-ms",
    String(options.delayMs ?? 0),
    "--reset-every",
    String(options.resetEvery ?? 0),
    "--port",
    String(options.port ?? 0),
    ...(options.hold ? ["--hold"] : []),
  ];
  const { channel, ready } = await startChild(
    `grpc worker ${options.name}`,
    MAIN,
    args,
    (m) => m.event === "listening",
  );
  const address = String(ready.address);
  return {
    name: options.name,
    channel,
    address,
    port: Number(/:(\d+)$/.exec(address)?.[1]),
    stats: async () => (await channel.request({ cmd: "stats" }, 10_000)) as unknown as GrpcWorkerStats,
    release: async () => Number((await channel.request({ cmd: "release" }, 30_000)).released),
    kill: (signal) => channel.kill(signal),
  };
}
