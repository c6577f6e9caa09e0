/**
 * `fulcrum demo` (what `npm start` runs): simulated workers on loopback and a balancer in front of them
 * with a built-in config, so a newcomer sees balancing with nothing else installed — three TCP workers
 * behind a TCP listener (round robin), three Triton-shaped gRPC workers (one 3× slower) behind a gRPC
 * listener (least connections, Triton health checks, `explain`), the admin listener with the status
 * page, and unless turned off a gentle built-in load over one HTTP/2 connection (demo-traffic.ts).
 */
import { parseConfig } from "./config/config-load.js";
import type { Logger } from "./log/logger.js";
import type { Metrics } from "./metrics/metrics.js";
import { Fulcrum, type BoundListener } from "./runtime/fulcrum.js";
import { DemoTraffic } from "./demo-traffic.js";
import { describeSim, type SimDescription } from "./sim/sim-describe.js";
import { SimTcpWorker } from "./sim/sim-tcp-worker.js";
import { SimTritonWorker } from "./sim/sim-triton-worker.js";

export interface DemoOptions {
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The TCP listener's address (default 127.0.0.1:9000; port 0 picks a free one). */
  readonly listen: string;
  /** The gRPC listener's address (default 127.0.0.1:9001). */
  readonly grpcListen: string;
  /** The admin listener's address: status page, /status, /metrics (default 127.0.0.1:9901). */
  readonly adminListen: string;
  /** Drive the built-in load (default true). */
  readonly traffic: boolean;
}

export interface DemoWorker {
  readonly name: string;
  readonly address: string;
  /** One line for the banner, e.g. "Triton-shaped …, 60 ms per call (3× slower), 4 at once". */
  readonly description: string;
}

export interface RunningDemo {
  readonly fulcrum: Fulcrum;
  readonly listeners: readonly BoundListener[];
  /** `http://host:port/`. */
  readonly statusPage: string;
  readonly workers: readonly DemoWorker[];
  /** The built-in load, when on. */
  readonly traffic: DemoTraffic | undefined;
  /** Stops the load, drains Fulcrum, then stops the workers. */
  stop(): Promise<void>;
}

const WORKER_NAMES = ["gpu-0", "gpu-1", "gpu-2"];
/** Unequal GPUs: the third is three times as slow, which least connections absorbs. */
const GRPC_SPEEDS = [1, 1, 3];
export const DEMO_MODEL = "simple";

export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const workers = WORKER_NAMES.map((name) => new SimTcpWorker({ name }));
  const grpcSpecs = WORKER_NAMES.map((name, i): SimDescription => ({
    kind: "triton",
    name,
    latencyMs: 20,
    slots: 4,
    speed: GRPC_SPEEDS[i] ?? 1,
    models: [DEMO_MODEL],
  }));
  const grpcWorkers = grpcSpecs.map(
    (s) =>
      new SimTritonWorker({
        name: s.name,
        baseLatencyMs: s.latencyMs,
        slots: s.slots,
        speed: s.speed,
        models: s.models,
      }),
  );
  const stopWorkers = async (): Promise<void> => {
    await Promise.all([...workers.map((w) => w.close()), ...grpcWorkers.map((w) => w.close())]);
  };
  let bound: { address: string }[];
  let grpcBound: { address: string }[];
  try {
    bound = await Promise.all(workers.map((w) => w.listen("127.0.0.1", 0)));
    grpcBound = await Promise.all(grpcWorkers.map((w) => w.listen("127.0.0.1", 0)));
  } catch (err) {
    await stopWorkers();
    throw err;
  }
  const yaml = `
admin:
  listen: ${JSON.stringify(options.adminListen)}
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
${bound.map((b, i) => `      - { address: ${b.address}, name: ${WORKER_NAMES[i]} }`).join("\n")}
  - name: demo-grpc-workers
    policy: least_connections
    models: [{ name: ${DEMO_MODEL} }]
    explain: true
    health_check: { type: triton, interval: 2s, timeout: 1s }
    endpoints:
${grpcBound.map((b, i) => `      - { address: ${b.address}, name: ${WORKER_NAMES[i]} }`).join("\n")}
`;
  let fulcrum: Fulcrum;
  try {
    const config = parseConfig(yaml, { baseDir: process.cwd() });
    fulcrum = await Fulcrum.start(config, { log: options.log, metrics: options.metrics });
  } catch (err) {
    await stopWorkers();
    throw err;
  }
  const grpcListener = fulcrum.listeners.find((l) => l.name === "demo-grpc");
  const traffic =
    options.traffic && grpcListener
      ? new DemoTraffic({ address: grpcListener.address, model: DEMO_MODEL })
      : undefined;
  options.log.info(
    {
      workers: [
        ...bound.map((b, i) => ({ name: WORKER_NAMES[i], protocol: "tcp", address: b.address })),
        ...grpcBound.map((b, i) => ({ name: WORKER_NAMES[i], protocol: "grpc", address: b.address })),
      ],
      traffic: traffic !== undefined,
    },
    "demo workers started",
  );
  return {
    fulcrum,
    listeners: fulcrum.listeners,
    statusPage: `http://${fulcrum.adminAddress ?? options.adminListen}/`,
    workers: [
      ...bound.map((b, i) => ({
        name: `${WORKER_NAMES[i]} (tcp)`,
        address: b.address,
        description: describeSim({ kind: "tcp", name: WORKER_NAMES[i] ?? "" }),
      })),
      ...grpcBound.map((b, i) => ({
        name: `${WORKER_NAMES[i]} (grpc)`,
        address: b.address,
        description: describeSim(grpcSpecs[i] as SimDescription),
      })),
    ],
    traffic,
    async stop() {
      await traffic?.stop();
      await fulcrum.stop();
      await stopWorkers();
    },
  };
}
