/**
 * A worker process killed while connections are being opened: every connection opened after the
 * kill succeeds (a connect that hits the dead worker is retried elsewhere), only connections already
 * on it close, health checking marks it unhealthy by docs/architecture.md's deadline, and it returns when it
 * comes back.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { after, describe, it } from "node:test";
import {
  closeSocket,
  connectAndGreet,
  startFulcrum,
  waitFor,
  type StartedFulcrum,
} from "../helpers/harness.js";
import { spawnTcpWorker, type ChildWorker } from "../helpers/child-worker.js";

const INTERVAL_MS = 300;
const TIMEOUT_MS = 200;
const UNHEALTHY = 2;
const HEALTHY = 2;

describe("tcp failover", { timeout: 120_000 }, () => {
  const workers: ChildWorker[] = [];
  const held: Socket[] = [];
  let f: StartedFulcrum | undefined;
  after(async () => {
    await Promise.all(held.map(closeSocket));
    await f?.fulcrum.stop(0);
    await Promise.all(workers.map((w) => w.kill()));
  });

  it("retries around a killed worker, marks it unhealthy in time, and takes it back", async () => {
    for (const name of ["a", "b", "c"]) workers.push(await spawnTcpWorker(name));
    f = await startFulcrum(`
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:0", cluster: workers }
clusters:
  - name: workers
    policy: round_robin
    connect_timeout: 1s
    connect_attempts: 3
    health_check: { type: tcp, interval: ${INTERVAL_MS}ms, timeout: ${TIMEOUT_MS}ms, healthy_threshold: ${HEALTHY}, unhealthy_threshold: ${UNHEALTHY} }
    outlier_detection: { consecutive_failures: 5, base_ejection_time: 1s }
    endpoints:
${workers.map((w) => `      - address: ${w.address}`).join("\n")}
`);
    const port = f.target().port;
    const set = f.fulcrum.cluster("workers").endpoints;
    const victim = workers[1] as ChildWorker;

    // Connections held open on every worker before the kill.
    const before: { socket: Socket; worker: string; closed: boolean }[] = [];
    for (let i = 0; i < 6; i++) {
      const c = await connectAndGreet(port);
      const entry = { ...c, closed: false };
      c.socket.once("close", () => (entry.closed = true));
      c.socket.on("error", () => {});
      before.push(entry);
      held.push(c.socket);
    }

    // Open connections continuously; kill the worker in the middle of it.
    const afterKill: string[] = [];
    let killedAt = 0;
    for (let i = 0; i < 60; i++) {
      if (i === 10) {
        await victim.kill("SIGKILL");
        killedAt = Date.now();
      }
      const c = await connectAndGreet(port);
      if (killedAt > 0) afterKill.push(c.worker);
      held.push(c.socket);
    }
    assert.equal(afterKill.length, 50, "every connection opened after the kill succeeded");
    assert.ok(!afterKill.includes("b"), "no connection after the kill reached the dead worker");

    await waitFor(
      () => before.filter((c) => c.worker === "b").every((c) => c.closed),
      5000,
      "b's connections to close",
    );
    for (const c of before) assert.equal(c.closed, c.worker === "b", `connection on ${c.worker}`);

    const deadline = (UNHEALTHY + 1) * INTERVAL_MS + TIMEOUT_MS + 1000;
    await waitFor(
      () => set.get(victim.address)?.health === "unhealthy",
      Math.max(0, killedAt + deadline - Date.now()),
      "unhealthy by the deadline",
    );

    // Bring it back on the same port.
    const revived = await spawnTcpWorker("b", victim.address);
    workers.push(revived);
    const back = Date.now();
    await waitFor(
      () => set.get(victim.address)?.health === "healthy",
      (HEALTHY + 1) * INTERVAL_MS + TIMEOUT_MS + 1000,
      "healthy again",
    );
    assert.ok(Date.now() - back <= (HEALTHY + 1) * INTERVAL_MS + TIMEOUT_MS + 1000);
    await waitFor(() => set.get(victim.address)?.ejected === false, 3000, "any ejection to end");
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const c = await connectAndGreet(port);
      seen.add(c.worker);
      await closeSocket(c.socket);
    }
    assert.ok(seen.has("b"), "the revived worker receives connections again");
  });
});
