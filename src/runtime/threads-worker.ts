/**
 * The entry of one worker thread (`threads: N`): a DataPlane serving every listener with
 * `reusePort`, on clusters that mirror the main thread's (same endpoints, slots and shared counters,
 * health and drains as the main thread decides them). It probes nothing; it reports outliers,
 * activity, metrics and log lines to the main thread (threads-messages.ts).
 */
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import { Registry } from "prom-client";
import { EndpointCounters } from "../balancer/endpoint-counters.js";
import type { FulcrumConfig } from "../config/config-schema.js";
import { createLogger } from "../log/logger.js";
import { createMetrics } from "../metrics/metrics.js";
import { ClusterRuntime } from "./cluster-runtime.js";
import { BindError, DataPlane } from "./data-plane.js";
import type { ClusterState, FromThread, ThreadInit, ThreadReplyValue, ToThread } from "./threads-messages.js";

const init = workerData as ThreadInit;
const port = parentPort as MessagePort;
const send = (message: FromThread): void => port.postMessage(message);

const log = createLogger({
  level: init.config.log.level,
  destination: { write: (line: string) => send({ type: "log", line }) },
}).child({ thread: init.index });
const metrics = createMetrics(new Registry(), { processMetrics: false });
const clusters = new Map<string, ClusterRuntime>();

function applyClusters(config: FulcrumConfig, states: readonly ClusterState[]): void {
  for (const c of config.clusters) {
    const state = states.find((s) => s.name === c.name);
    if (!state) continue;
    const previous = clusters.get(c.name);
    const runtime = new ClusterRuntime(
      c,
      {
        log,
        metrics,
        role: "data",
        counters: previous ? undefined : new EndpointCounters(state.counters, init.index),
        pins: state.pins,
        requestEjection: (cluster, address, durationMs) =>
          send({ type: "eject", cluster, address, durationMs }),
      },
      previous,
    );
    clusters.set(c.name, runtime);
    mirror(state);
  }
  for (const [name, runtime] of clusters) {
    if (config.clusters.some((c) => c.name === name)) continue;
    runtime.endpoints.update([]);
    clusters.delete(name);
  }
}

/** Takes the main thread's view of a cluster's endpoints. */
function mirror(state: ClusterState): void {
  const runtime = clusters.get(state.name);
  if (!runtime) return;
  const set = runtime.endpoints;
  const wasEjected = new Set(set.endpoints.filter((e) => e.ejected).map((e) => e.address));
  set.update(state.endpoints.map((e) => ({ address: e.address, weight: e.weight, slot: e.slot })));
  for (const e of state.endpoints) {
    set.setHealth(e.address, e.health);
    set.setDrained(e.address, e.drained);
    set.setEjected(e.address, e.ejected);
    if (wasEjected.has(e.address) && !e.ejected) runtime.ejectionEnded(e.address);
  }
  runtime.models.mirror(state.modelsNotReady);
}

let config = init.config;
applyClusters(config, init.clusters);
const plane = new DataPlane(config, {
  log,
  metrics,
  thread: String(init.index),
  reusePort: true,
  cluster: (name) => {
    const c = clusters.get(name);
    if (!c) throw new Error(`no cluster named ${name}`);
    return c;
  },
});

async function answer(message: ToThread): Promise<ThreadReplyValue | undefined> {
  switch (message.type) {
    case "start":
      return { kind: "addresses", addresses: await plane.start(message.ports) };
    case "prepare":
      return { kind: "addresses", addresses: await plane.prepare(message.config, message.ports) };
    case "endpoints":
      mirror(message.cluster);
      return undefined;
    case "commit":
      config = message.config;
      applyClusters(config, message.clusters);
      plane.commit(config);
      log.level = config.log.level;
      return undefined;
    case "abort":
      plane.abort();
      return undefined;
    case "status":
      return { kind: "status", listeners: plane.status() };
    case "metrics":
      return { kind: "metrics", metrics: await metrics.registry.getMetricsAsJSON() };
    case "endpoint-stats":
      return {
        kind: "endpoint-stats",
        clusters: [...clusters.values()].map((c) => ({
          name: c.name,
          endpoints: c.statsSnapshot(),
          queued: c.queue.depthByPriority(),
        })),
      };
    case "stop":
      await plane.stop(message.drainMs);
      for (const c of clusters.values()) c.stop();
      return { kind: "stopped" };
    case "close-now":
      plane.closeNow();
      return undefined;
  }
}

port.on("message", (message: ToThread) => {
  const id = "id" in message ? message.id : undefined;
  answer(message).then(
    (value) => {
      if (id !== undefined && value) send({ type: "reply", id, value });
    },
    (err: unknown) => {
      const failure =
        err instanceof BindError
          ? { index: err.index, code: err.code }
          : { index: -1, code: err instanceof Error ? err.message : String(err) };
      if (id !== undefined) send({ type: "failed", id, failure });
      else log.error({ err }, "worker thread request failed");
    },
  );
});
