/**
 * Starts tcp-worker-main.js as a child process and talks to it: its address, its counts, signals.
 */
import { fileURLToPath } from "node:url";
import { startChild, type ChildChannel } from "./child-channel.js";

const MAIN = fileURLToPath(new URL("./tcp-worker-main.js", import.meta.url));

export type WorkerMode = "echo" | "silent" | "slow";

export interface WorkerStats {
  /** Connections open now. */
  readonly open: number;
  readonly accepted: number;
  /** Connections whose peer (Fulcrum) sent its FIN. */
  readonly ended: number;
  readonly closed: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export interface TcpWorkerProcess {
  readonly name: string;
  readonly channel: ChildChannel;
  readonly address: string;
  stats(): Promise<WorkerStats>;
  /** Ends the process (SIGKILL unless told otherwise) and waits for it. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startTcpWorker(options: {
  name: string;
  mode: WorkerMode;
  greet?: boolean;
  delayMs?: number;
  openFiles?: number;
  /** Bind this port (default any), so a restarted worker keeps its address. */
  port?: number;
}): Promise<TcpWorkerProcess> {
  const args = ["--name", options.name, "--mode", options.mode, "--delay-ms", String(options.delayMs ?? 0)];
  if (options.port) args.push("--port", String(options.port));
  if (options.greet) args.push("--greet");
  const { channel, ready } = await startChild(
    `worker ${options.name}`,
    MAIN,
    args,
    (m) => m.event === "listening",
    { openFiles: options.openFiles },
  );
  return {
    name: options.name,
    channel,
    address: String(ready.address),
    stats: async () => (await channel.request({ cmd: "stats" }, 10_000)) as unknown as WorkerStats,
    kill: (signal) => channel.kill(signal),
  };
}
