/**
 * Policies over real TCP: 600 connections through the proxy to 3 workers that greet with their name.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Socket } from "node:net";
import type { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";
import {
  closeAll,
  closeSocket,
  connectAndGreet,
  endpointsYaml,
  startFulcrum,
  startWorkers,
  whoAnswers,
} from "../helpers/harness.js";

const NAMES = ["a", "b", "c"];

function config(policy: string, workers: readonly SimTcpWorker[], weights?: readonly number[]): string {
  return `
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:0", cluster: workers }
clusters:
  - name: workers
    policy: ${policy}
    health_check: { type: none }
    endpoints:
${endpointsYaml(workers, weights)}
`;
}

/** Opens `count` connections, `parallel` at a time; returns the worker each reached, in pick order per batch. */
async function tally(
  port: number,
  count: number,
  parallel: number,
): Promise<{ counts: Map<string, number>; order: string[] }> {
  const counts = new Map<string, number>();
  const order: string[] = [];
  for (let done = 0; done < count; done += parallel) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(parallel, count - done) }, () => whoAnswers(port)),
    );
    for (const w of batch) {
      counts.set(w, (counts.get(w) ?? 0) + 1);
      order.push(w);
    }
  }
  return { counts, order };
}

describe("tcp policies", { timeout: 120_000 }, () => {
  let workers: SimTcpWorker[] = [];
  before(async () => {
    workers = await startWorkers(NAMES);
  });
  after(async () => {
    await closeAll(undefined, workers);
  });

  it("round_robin gives exactly 200 each of 600", async () => {
    const f = await startFulcrum(config("round_robin", workers));
    try {
      const { counts } = await tally(f.target().port, 600, 20);
      assert.deepEqual(Object.fromEntries(counts), { a: 200, b: 200, c: 200 });
    } finally {
      await f.fulcrum.stop(0);
    }
  });

  it("weighted_round_robin 1,2,3 gives exactly 100/200/300, interleaved", async () => {
    const f = await startFulcrum(config("weighted_round_robin", workers, [1, 2, 3]));
    try {
      const { counts, order } = await tally(f.target().port, 600, 1);
      assert.deepEqual(Object.fromEntries(counts), { a: 100, b: 200, c: 300 });
      // Smooth WRR never serves the heaviest endpoint more than weight-share runs: no run longer than 2.
      let run = 1;
      for (let i = 1; i < order.length; i++) {
        run = order[i] === order[i - 1] ? run + 1 : 1;
        assert.ok(run <= 2, `run of ${run} picks of ${order[i]} at ${i}: not interleaved`);
      }
      assert.deepEqual(order.slice(0, 6).sort(), ["a", "b", "b", "c", "c", "c"]);
    } finally {
      await f.fulcrum.stop(0);
    }
  });

  it("least_connections sends new connections away from the worker holding 3", async () => {
    const f = await startFulcrum(config("least_connections", workers));
    const held: Socket[] = [];
    try {
      const set = f.fulcrum.cluster("workers").endpoints;
      const [ea, eb, ec] = set.endpoints;
      assert.ok(ea && eb && ec);
      set.setDrained(eb.address, true);
      set.setDrained(ec.address, true);
      for (let i = 0; i < 3; i++) {
        const c = await connectAndGreet(f.target().port);
        assert.equal(c.worker, "a");
        held.push(c.socket);
      }
      set.setDrained(eb.address, false);
      set.setDrained(ec.address, false);
      const next: string[] = [];
      for (let i = 0; i < 6; i++) {
        const c = await connectAndGreet(f.target().port);
        next.push(c.worker);
        held.push(c.socket);
      }
      assert.deepEqual(next.slice().sort(), ["b", "b", "b", "c", "c", "c"]);
      assert.equal(set.activeOf(ea), 3);
    } finally {
      await Promise.all(held.map(closeSocket));
      await f.fulcrum.stop(0);
    }
  });

  for (const policy of ["random", "p2c"]) {
    it(`${policy} with a seeded generator lands 200 ± 50 each`, async () => {
      const f = await startFulcrum(config(policy, workers), { seed: 42 });
      try {
        const { counts } = await tally(f.target().port, 600, 20);
        for (const name of NAMES) {
          const n = counts.get(name) ?? 0;
          assert.ok(Math.abs(n - 200) <= 50, `${name}: ${n}`);
        }
      } finally {
        await f.fulcrum.stop(0);
      }
    });
  }
});
