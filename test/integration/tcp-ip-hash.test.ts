/**
 * ip_hash over real TCP: clients bound to 60 source addresses keep landing on one worker each, and
 * stopping a worker moves only the addresses it held (plus at most one other).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";
import {
  closeAll,
  endpointsYaml,
  startFulcrum,
  startWorkers,
  waitFor,
  whoAnswers,
  type StartedFulcrum,
} from "../helpers/harness.js";

const SOURCES = Array.from({ length: 60 }, (_, i) => `127.0.0.${i + 1}`);

describe("tcp ip_hash", { timeout: 120_000 }, () => {
  let workers: SimTcpWorker[] = [];
  let f: StartedFulcrum | undefined;
  before(async () => {
    workers = await startWorkers(["a", "b", "c"]);
    f = await startFulcrum(`
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:0", cluster: workers }
clusters:
  - name: workers
    policy: ip_hash
    health_check: { type: tcp, interval: 200ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 2 }
    endpoints:
${endpointsYaml(workers)}
`);
  });
  after(async () => {
    await closeAll(f, workers);
  });

  async function mapping(): Promise<Map<string, string>> {
    const port = (f as StartedFulcrum).target().port;
    const m = new Map<string, string>();
    for (const src of SOURCES) m.set(src, await whoAnswers(port, { localAddress: src }));
    return m;
  }

  it("each source address sticks to one worker, all workers used, and a stopped worker moves only its own", async () => {
    const first = await mapping();
    const again = await mapping();
    assert.deepEqual(again, first, "every address lands on the same worker again");
    assert.deepEqual(new Set(first.values()), new Set(["a", "b", "c"]), "all three workers used");

    const victim = workers[1] as SimTcpWorker;
    const victimAddress = `127.0.0.1:${victim.port}`;
    await victim.close();
    const set = (f as StartedFulcrum).fulcrum.cluster("workers").endpoints;
    await waitFor(
      () => set.get(victimAddress)?.health === "unhealthy",
      (2 + 1) * 200 + 200 + 1000,
      "the stopped worker to be marked unhealthy",
    );
    const afterStop = await mapping();
    let movedOthers = 0;
    for (const [src, before] of first) {
      const now = afterStop.get(src);
      assert.notEqual(now, "b", `${src} still reaches the stopped worker`);
      if (before !== "b" && now !== before) movedOthers++;
    }
    assert.ok(movedOthers <= 1, `${movedOthers} addresses not on the stopped worker moved`);
  });
});
