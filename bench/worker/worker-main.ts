/**
 * The bench's worker process: simulated gRPC workers from `src/sim/` (SimGrpcWorker, or the
 * Triton-shaped SimTritonWorker) in one child process, so their CPU is not the load generator's or the
 * proxy's. A server interceptor counts, at the worker, every status it sends (OK or not) and every
 * response message: the bench checks against it that the answers a load generator counted were gRPC OK.
 *
 *   node worker-main.js '<WorkerSpec[] as JSON>'
 *
 * Prints one line `{"msg":"listening","workers":[{"name","address"}],"metricsPort"}` (metricsPort 0 when
 * no worker serves metrics: load_metrics has one port per cluster, so each metrics worker gets its own
 * loopback host), then answers IPC messages
 * `"counters"` with `WorkerCounters[]`; exits when the parent disconnects or on SIGTERM.
 */
import * as grpc from "@grpc/grpc-js";
import { SimGrpcWorker } from "../../src/sim/sim-grpc-worker.js";
import { SimLlmWorker } from "../../src/sim/sim-llm-worker.js";
import { SimTritonWorker } from "../../src/sim/sim-triton-worker.js";

export interface WorkerSpec {
  readonly name: string;
  /**
   * `sim` (fulcrum.sim.Worker, default), `triton` (inference.GRPCInferenceService) or `llm` (the
   * simulated LLM server: `baseLatencyMs` per output token, `slots` its KV capacity).
   */
  readonly kind?: "sim" | "triton" | "llm";
  /** llm only: prefill time per prompt block missing from its cache, and the cache's size in blocks. */
  readonly prefillMsPerBlock?: number;
  readonly cacheBlocks?: number;
  readonly baseLatencyMs?: number;
  readonly slots?: number;
  readonly speed?: number;
  /** Loopback address to listen on (default 127.0.0.1); give each worker its own for `metrics`. */
  readonly host?: string;
  /** Triton only: serve the Prometheus queue gauge on `host`, at one port shared by every such worker. */
  readonly metrics?: boolean;
  /** Sim only: serve an Infer whose client has gone anyway, as Triton does (counted in `wasted`). */
  readonly finishCancelled?: boolean;
}

export interface WorkerCounters {
  readonly name: string;
  /** Calls whose final status was OK / anything else. */
  ok: number;
  /** Calls that ended CANCELLED (the client, or a proxy for it, reset the stream) / any other non-OK. */
  cancelled: number;
  failed: number;
  /** Response messages sent (streaming counts each one). */
  messages: number;
  /** Infer calls served after their client had gone (sim workers with `finishCancelled`). */
  wasted: number;
  /** Infer calls in service or waiting in the worker now (sim and llm workers). */
  busy: number;
  /** llm workers: prompt blocks found in the prefix cache and prefilled, requests and tokens served. */
  cacheHitBlocks: number;
  cacheMissBlocks: number;
  requests: number;
  tokens: number;
}

function countingInterceptor(counters: WorkerCounters): grpc.ServerInterceptor {
  return (_method, call) =>
    new grpc.ServerInterceptingCall(call, {
      sendMessage(message: unknown, next: (m: unknown) => void) {
        counters.messages++;
        next(message);
      },
      sendStatus(status, next) {
        if (status.code === grpc.status.OK) counters.ok++;
        else if (status.code === grpc.status.CANCELLED) counters.cancelled++;
        else counters.failed++;
        next(status);
      },
    });
}

interface Closable {
  close(): Promise<void>;
}

async function main(): Promise<void> {
  const specs = JSON.parse(process.argv[2] ?? "[]") as WorkerSpec[];
  const counters: WorkerCounters[] = [];
  const running: Closable[] = [];
  const bound: { name: string; address: string }[] = [];
  let metricsPort = 0;
  for (const spec of specs) {
    const c: WorkerCounters = {
      name: spec.name,
      ok: 0,
      cancelled: 0,
      failed: 0,
      messages: 0,
      wasted: 0,
      busy: 0,
      cacheHitBlocks: 0,
      cacheMissBlocks: 0,
      requests: 0,
      tokens: 0,
    };
    counters.push(c);
    const options = {
      name: spec.name,
      baseLatencyMs: spec.baseLatencyMs,
      slots: spec.slots,
      speed: spec.speed,
      serverOptions: { interceptors: [countingInterceptor(c)] },
    };
    const host = spec.host ?? "127.0.0.1";
    let worker: SimTritonWorker | SimGrpcWorker | SimLlmWorker;
    if (spec.kind === "llm") {
      const llm = new SimLlmWorker({
        name: spec.name,
        decodeMsPerToken: spec.baseLatencyMs,
        prefillMsPerBlock: spec.prefillMsPerBlock,
        cacheBlocks: spec.cacheBlocks,
        maxSequences: spec.slots,
        serverOptions: options.serverOptions,
      });
      // The counts live in the worker; the counters IPC reads them on each ask.
      const live = {
        busy: () => llm.active + llm.queued,
        cacheHitBlocks: () => llm.cacheHitBlocks,
        cacheMissBlocks: () => llm.cacheMissBlocks,
        requests: () => llm.requests,
        tokens: () => llm.tokens,
      };
      for (const [key, get] of Object.entries(live)) Object.defineProperty(c, key, { get, enumerable: true });
      worker = llm;
    } else if (spec.kind === "triton") {
      const triton = new SimTritonWorker(options);
      if (spec.metrics) metricsPort = (await triton.listenMetrics(host, metricsPort)).port;
      worker = triton;
    } else {
      const sim = new SimGrpcWorker({ ...options, finishCancelled: spec.finishCancelled });
      // The count lives in the worker; the counters IPC reads it on each ask.
      Object.defineProperty(c, "wasted", { get: () => sim.wasted, enumerable: true });
      Object.defineProperty(c, "busy", { get: () => sim.active + sim.queued, enumerable: true });
      worker = sim;
    }
    running.push(worker);
    const where = await worker.listen(host, 0);
    bound.push({ name: spec.name, address: where.address });
  }
  process.on("message", (m) => {
    if (m === "counters") process.send?.(counters);
  });
  const stop = (): void => {
    void Promise.all(running.map((w) => w.close())).then(() => process.exit(0));
  };
  process.on("disconnect", stop);
  process.on("SIGTERM", stop);
  process.stdout.write(`${JSON.stringify({ msg: "listening", workers: bound, metricsPort })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`worker: ${String(err)}\n`);
  process.exit(1);
});
