/**
 * `fulcrum demo` (what `npm start` runs): three simulated TCP workers on loopback and a balancer in
 * front of them with a built-in config, so a newcomer sees balancing with nothing else installed.
 */
import { parseConfig } from "./config/config-load.js";
import type { Logger } from "./log/logger.js";
import type { Metrics } from "./metrics/metrics.js";
import { Fulcrum, type BoundListener } from "./runtime/fulcrum.js";
import { SimGrpcWorker } from "./sim/sim-grpc-worker.js";
import { SimTcpWorker } from "./sim/sim-tcp-worker.js";

export interface DemoOptions {
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The TCP listener's address (default 127.0.0.1:9000; port 0 picks a free one). */
  readonly listen: string;
  /** The gRPC listener's address (default 127.0.0.1:9001). */
  readonly grpcListen: string;
}

export interface RunningDemo {
  readonly fulcrum: Fulcrum;
  readonly listeners: readonly BoundListener[];
  readonly workers: readonly { name: string; address: string }[];
  stopWorkers(): Promise<void>;
}

const WORKER_NAMES = ["gpu-0", "gpu-1", "gpu-2"];
/** Unequal GPUs: the third is twice as slow, which least-connections absorbs. */
const GRPC_SPEEDS = [1, 1, 2];

export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const workers = WORKER_NAMES.map((name) => new SimTcpWorker({ name }));
  const bound = await Promise.all(workers.map((w) => w.listen("127.0.0.1", 0)));
  const grpcWorkers = WORKER_NAMES.map(
    (name, i) => new SimGrpcWorker({ name, baseLatencyMs: 20, slots: 4, speed: GRPC_SPEEDS[i] ?? 1 }),
  );
  const grpcBound = await Promise.all(grpcWorkers.map((w) => w.listen("127.0.0.1", 0)));
  const yaml = `
listeners:
  - name: demo-tcp
    protocol: tcp
    listen: ${JSON.stringify(options.listen)}
    cluster: demo-workers
  - name: demo-grpc
    protocol: grpc
    engine: frames
    listen: ${JSON.stringify(options.grpcListen)}
    cluster: demo-grpc-workers
clusters:
  - name: demo-workers
    policy: round_robin
    health_check: { type: tcp, interval: 2s, timeout: 1s }
    endpoints:
${bound.map((b) => `      - address: ${b.address}`).join("\n")}
  - name: demo-grpc-workers
    policy: least_connections
    health_check: { type: grpc, interval: 2s, timeout: 1s }
    endpoints:
${grpcBound.map((b) => `      - address: ${b.address}`).join("\n")}
`;
  const config = parseConfig(yaml, { baseDir: process.cwd() });
  const stopWorkers = async (): Promise<void> => {
    await Promise.all([...workers.map((w) => w.close()), ...grpcWorkers.map((w) => w.close())]);
  };
  let fulcrum: Fulcrum;
  try {
    fulcrum = await Fulcrum.start(config, { log: options.log, metrics: options.metrics });
  } catch (err) {
    await stopWorkers();
    throw err;
  }
  options.log.info(
    { workers: bound.map((b, i) => ({ name: WORKER_NAMES[i], address: b.address })) },
    "demo workers started",
  );
  return {
    fulcrum,
    listeners: fulcrum.listeners,
    workers: [
      ...bound.map((b, i) => ({ name: `${WORKER_NAMES[i]} (tcp)`, address: b.address })),
      ...grpcBound.map((b, i) => ({
        name: `${WORKER_NAMES[i]} (grpc, speed ×${GRPC_SPEEDS[i]})`,
        address: b.address,
      })),
    ],
    stopWorkers,
  };
}
