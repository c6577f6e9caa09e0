/**
 * The main thread's side of `threads: N` (docs/architecture.md "Multi-core"): N worker threads, each running
 * every listener with `reusePort` so the kernel spreads connections over them (like Envoy's
 * workers, or HAProxy's threads with one listener each). The main thread keeps config, health
 * checks, DNS discovery, ejections and the admin API; it pushes each cluster's endpoint state to the
 * threads whenever it changes, and the threads count active work in shared memory, so
 * least-connections sees the load of the whole process.
 *
 * Binding: the first thread binds each listener's configured address; the others bind the port it
 * got (a configured port 0 becomes one port shared by every thread).
 */
import { Worker } from "node:worker_threads";
import type { EndpointSet } from "../balancer/endpoint-set.js";
import type { ModelReadiness } from "../health/model-readiness.js";
import type { FulcrumConfig } from "../config/config-schema.js";
import type { Logger } from "../log/logger.js";
import type { ClusterRuntime } from "./cluster-runtime.js";
import type { ListenerStatus } from "../net/listener.js";
import { BindError, type DataPlaneHost, type PortOverrides } from "./data-plane.js";
import type { ClusterStatsReport } from "../metrics/endpoint-stats.js";
import type { ClusterState, FromThread, ThreadInit, ThreadReplyValue, ToThread } from "./threads-messages.js";

export interface ThreadsHostDeps {
  readonly log: Logger;
  readonly threads: number;
  /** The main thread's cluster runtimes (role `control`), by name; reloads replace entries. */
  readonly clusters: ReadonlyMap<string, ClusterRuntime>;
  /** A worker thread's outlier detection asks for an ejection. */
  readonly eject: (cluster: string, address: string, durationMs: number) => void;
}

/** Longer than any drain: a worker thread that does not answer a stop by then is terminated. */
const STOP_GRACE_MS = 5000;

type Request = Extract<ToThread, { id: number }>;
type RequestWithoutId = Request extends infer R ? (R extends Request ? Omit<R, "id"> : never) : never;

interface Waiting {
  readonly worker: Worker;
  readonly resolve: (value: ThreadReplyValue) => void;
  readonly reject: (err: Error) => void;
}

interface Watch {
  readonly set: EndpointSet;
  readonly models: ModelReadiness;
  readonly unsubscribe: () => void;
}

export class ThreadsHost implements DataPlaneHost {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, Waiting>();
  private readonly watches = new Map<string, Watch>();
  private readonly queued = new Set<string>();
  private nextId = 1;
  private stopping = false;
  private readonly log: Logger;

  constructor(
    private config: FulcrumConfig,
    private readonly deps: ThreadsHostDeps,
  ) {
    this.log = deps.log.child({ component: "threads" });
  }

  async start(): Promise<string[]> {
    this.watchClusters();
    for (let index = 0; index < this.deps.threads; index++) this.spawn(index);
    try {
      const addresses = await this.bindEverywhere({ type: "start", ports: [] });
      return addresses.map((a) => a ?? "");
    } catch (err) {
      await this.terminate();
      throw err;
    }
  }

  async prepare(next: FulcrumConfig): Promise<(string | undefined)[]> {
    try {
      return await this.bindEverywhere({ type: "prepare", config: next, ports: [] });
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  commit(next: FulcrumConfig): void {
    this.config = next;
    this.watchClusters();
    this.broadcast({ type: "commit", config: next, clusters: this.clusterStates() });
  }

  abort(): void {
    this.broadcast({ type: "abort" });
  }

  async status(): Promise<ListenerStatus[]> {
    const replies = await Promise.all(this.workers.map((w) => this.request(w, { type: "status" })));
    const sum = new Map<string, ListenerStatus>();
    for (const reply of replies) {
      if (reply.kind !== "status") continue;
      for (const l of reply.listeners) {
        const seen = sum.get(l.name);
        sum.set(l.name, seen ? { ...seen, active: seen.active + l.active } : l);
      }
    }
    return [...sum.values()];
  }

  /** Every worker thread's metrics as prom-client JSON, for the main thread to aggregate. */
  async metricsJson(): Promise<unknown[][]> {
    const replies = await Promise.all(this.workers.map((w) => this.request(w, { type: "metrics" })));
    return replies.flatMap((r) => (r.kind === "metrics" ? [r.metrics] : []));
  }

  /** Every worker thread's endpoint stats (latency windows, status counts), for the main thread to merge. */
  async endpointStats(): Promise<ClusterStatsReport[][]> {
    const replies = await Promise.all(this.workers.map((w) => this.request(w, { type: "endpoint-stats" })));
    return replies.flatMap((r) => (r.kind === "endpoint-stats" ? [[...r.clusters]] : []));
  }

  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    const stopped = Promise.all(this.workers.map((w) => this.request(w, { type: "stop", drainMs })));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, drainMs + STOP_GRACE_MS)));
    await Promise.race([stopped.catch(() => undefined), late]);
    clearTimeout(timer);
    await this.terminate();
  }

  closeNow(): void {
    this.broadcast({ type: "close-now" });
  }

  private spawn(index: number): void {
    const init: ThreadInit = { index, config: this.config, clusters: this.clusterStates() };
    const worker = new Worker(new URL("./threads-worker.js", import.meta.url), { workerData: init });
    worker.on("message", (m: FromThread) => this.onMessage(m));
    worker.on("error", (err) => {
      this.log.error({ err, thread: index }, "worker thread failed");
      this.failWaiting(worker, err);
    });
    worker.on("exit", (code) => {
      this.failWaiting(worker, new Error(`worker thread ${index} exited with code ${code}`));
      if (!this.stopping) this.log.error({ thread: index, code }, "worker thread exited");
    });
    this.workers.push(worker);
  }

  /** The first thread binds the configured addresses; the others bind the ports it got. */
  private async bindEverywhere(
    message: Extract<RequestWithoutId, { ports: PortOverrides }>,
  ): Promise<(string | undefined)[]> {
    const [first, ...rest] = this.workers;
    if (!first) throw new Error("no worker threads");
    const reply = await this.request(first, message);
    const addresses = reply.kind === "addresses" ? reply.addresses : [];
    const ports = addresses.map((a) =>
      a === undefined ? undefined : Number(a.slice(a.lastIndexOf(":") + 1)),
    );
    await Promise.all(rest.map((w) => this.request(w, { ...message, ports })));
    return [...addresses];
  }

  private request(worker: Worker, message: RequestWithoutId): Promise<ThreadReplyValue> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { worker, resolve, reject });
      worker.postMessage({ ...message, id });
    });
  }

  private broadcast(message: ToThread): void {
    for (const w of this.workers) w.postMessage(message);
  }

  private onMessage(m: FromThread): void {
    switch (m.type) {
      case "reply":
      case "failed": {
        const w = this.waiting.get(m.id);
        if (!w) return;
        this.waiting.delete(m.id);
        if (m.type === "reply") w.resolve(m.value);
        else
          w.reject(
            m.failure.index >= 0 ? new BindError(m.failure.index, m.failure.code) : new Error(m.failure.code),
          );
        return;
      }
      case "eject":
        this.deps.eject(m.cluster, m.address, m.durationMs);
        return;
      case "log":
        this.relayLog(m.line);
        return;
    }
  }

  /** A worker thread's log line, written through the main thread's logger (one output stream). */
  private relayLog(line: string): void {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const { level, msg, time: _time, pid: _pid, ...fields } = record;
    const method = typeof level === "string" && level in LEVELS ? (level as keyof typeof LEVELS) : "info";
    this.deps.log[method](fields, typeof msg === "string" ? msg : "");
  }

  private failWaiting(worker: Worker, err: Error): void {
    for (const [id, w] of this.waiting) {
      if (w.worker !== worker) continue;
      this.waiting.delete(id);
      w.reject(err);
    }
  }

  private async terminate(): Promise<void> {
    this.stopping = true;
    for (const w of this.watches.values()) w.unsubscribe();
    this.watches.clear();
    await Promise.all(this.workers.splice(0).map((w) => w.terminate()));
  }

  /** Sends a cluster's endpoint state to every thread after it changed (once per turn of the loop). */
  private watchClusters(): void {
    for (const [name, w] of this.watches) {
      const runtime = this.deps.clusters.get(name);
      if (runtime?.endpoints === w.set && runtime.models === w.models) continue;
      w.unsubscribe();
      this.watches.delete(name);
    }
    for (const [name, runtime] of this.deps.clusters) {
      if (this.watches.has(name)) continue;
      const set = runtime.endpoints;
      const changed = (): void => {
        if (this.queued.has(name)) return;
        this.queued.add(name);
        queueMicrotask(() => {
          this.queued.delete(name);
          const state = this.clusterState(name);
          if (state) this.broadcast({ type: "endpoints", cluster: state });
        });
      };
      const offEndpoints = set.onChange(changed);
      const offModels = runtime.models.onChange(changed);
      const unsubscribe = (): void => {
        offEndpoints();
        offModels();
      };
      this.watches.set(name, { set, models: runtime.models, unsubscribe });
    }
  }

  private clusterStates(): ClusterState[] {
    return [...this.deps.clusters.keys()].flatMap((name) => this.clusterState(name) ?? []);
  }

  private clusterState(name: string): ClusterState | undefined {
    const runtime = this.deps.clusters.get(name);
    if (!runtime) return undefined;
    const set = runtime.endpoints;
    return {
      name,
      counters: set.counters.buffers,
      modelsNotReady: runtime.models.snapshot(),
      pins: runtime.pins?.buffers,
      endpoints: set.endpoints.map((e) => ({
        address: e.address,
        weight: e.configuredWeight,
        slot: e.slot,
        health: e.health,
        drained: e.drained,
        ejected: e.ejected,
      })),
    };
  }
}

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
