/**
 * 200 connections reset from either side: no socket leaks (the process's fd count returns to its
 * baseline) and every endpoint's active count returns to 0.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import type { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import type { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";
import {
  closeAll,
  connectAndGreet,
  endpointsYaml,
  metricSum,
  metricValue,
  startFulcrum,
  startWorkers,
  waitFor,
  type StartedFulcrum,
} from "../helpers/harness.js";

function fdCount(): number {
  return readdirSync("/proc/self/fd").length;
}

describe("tcp resets", { timeout: 60_000 }, () => {
  let workers: SimTcpWorker[] = [];
  let f: StartedFulcrum | undefined;
  before(async () => {
    workers = await startWorkers(["a", "b", "c"]);
    f = await startFulcrum(`
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:0", cluster: workers }
clusters:
  - name: workers
    policy: least_connections
    health_check: { type: none }
    endpoints:
${endpointsYaml(workers)}
`);
  });
  after(async () => {
    await closeAll(f, workers);
  });

  it("releases everything after 100 client resets and 100 worker resets", async () => {
    const started = f as StartedFulcrum;
    const set = started.fulcrum.cluster("workers").endpoints;
    const baseline = fdCount();

    const clients: Socket[] = [];
    for (let i = 0; i < 200; i++) {
      const { socket } = await connectAndGreet(started.target().port);
      socket.on("error", () => {});
      clients.push(socket);
    }
    assert.equal(
      set.endpoints.reduce((n, e) => n + set.activeOf(e), 0),
      200,
    );

    // Client side: RST from the first 100 clients.
    for (const s of clients.slice(0, 100)) s.resetAndDestroy();
    // Worker side: RST from the workers on the remaining connections.
    const workerSockets = workers.flatMap((w) => [...w.connections]);
    const survivors = clients.slice(100);
    let resetByWorker = 0;
    await waitFor(
      () => workers.reduce((n, w) => n + w.connections.size, 0) <= 100,
      5000,
      "client resets to reach the workers",
    );
    for (const w of workers)
      for (const s of w.connections) {
        s.resetAndDestroy();
        resetByWorker++;
      }
    assert.ok(workerSockets.length >= 100);
    assert.equal(resetByWorker, 100);

    await waitFor(() => survivors.every((s) => s.destroyed), 5000, "worker resets to reach the clients");
    await waitFor(() => fdCount() <= baseline, 5000, `fd count to return to ${baseline} (now ${fdCount()})`);
    for (const e of set.endpoints) assert.equal(set.activeOf(e), 0, `active on ${e.address}`);
    assert.equal(
      await metricValue(started.registry, "fulcrum_downstream_connections_active", { listener: "in" }),
      0,
    );
    assert.equal(
      await metricSum(started.registry, "fulcrum_upstream_resets_total"),
      100,
      "worker resets counted",
    );
  });
});
