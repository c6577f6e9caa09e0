/**
 * Triton sequence stickiness (`affinity.key: triton_sequence`) through Fulcrum, with a grpc-js Triton
 * client and simulated Triton workers that fail any request whose sequence they did not start (as
 * Triton's sequence batcher does): 200 concurrent sequences of 20 requests see 0 requests on the wrong
 * instance while one endpoint is drained and another added mid-run, and they spread over all
 * endpoints; a new sequence_start never goes to the drained endpoint; a sequence whose endpoint died
 * gets UNAVAILABLE and is never moved. Runs on both engines (grpcConfig).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { tritonService } from "../../src/protos/inference-protos.js";
import { SimTritonWorker } from "../../src/sim/sim-triton-worker.js";
import { Teardown, grpcConfig } from "../helpers/grpc-client.js";
import { call, clientOf, type UnaryClient } from "../helpers/inference-client.js";
import { startFulcrum, waitFor } from "../helpers/harness.js";

function config(addresses: readonly string[]): string {
  return grpcConfig({
    name: "triton",
    policy: "round_robin",
    affinity: "{ key: triton_sequence }",
    endpoints: addresses,
  });
}

async function startWorker(own: Teardown, name: string): Promise<SimTritonWorker> {
  const w = own.add(new SimTritonWorker({ name, baseLatencyMs: 2 }), (x) => x.close());
  await w.listen("127.0.0.1", 0);
  return w;
}

const addressOf = (w: SimTritonWorker): string => `127.0.0.1:${w.port}`;

/** One request of sequence `id`; resolves with the worker that answered, or `!CODE details`. */
async function step(client: UnaryClient, id: number, start: boolean, end: boolean): Promise<string> {
  const parameters: Record<string, unknown> = { sequence_id: { int64_param: String(id) } };
  if (start) parameters["sequence_start"] = { bool_param: true };
  if (end) parameters["sequence_end"] = { bool_param: true };
  const r = await call(client, "ModelInfer", { model_name: "simple", id: String(id), parameters });
  if (!r.ok) return `!${grpc.status[r.code]} ${r.details}`;
  const params = r.res["parameters"] as Record<string, { string_param?: string }> | undefined;
  return params?.["worker"]?.string_param ?? "?";
}

describe("inference: triton sequences", { timeout: 90_000 }, () => {
  it("200 sequences × 20 requests: 0 on the wrong instance while one endpoint is drained and one added", async () => {
    const own = new Teardown();
    try {
      const workers = await Promise.all(["a", "b", "c", "d"].map((n) => startWorker(own, n)));
      const added = await startWorker(own, "e");
      const f = own.add(await startFulcrum(config(workers.map(addressOf))), (x) => x.fulcrum.stop(0));
      const clients = Array.from({ length: 8 }, () =>
        own.add(clientOf(tritonService(), f), (c) => c.close()),
      );
      const SEQUENCES = 200;
      const STEPS = 20;
      let done = 0;
      const seen = new Map<number, Set<string>>();
      const failures: string[] = [];
      const run = async (id: number): Promise<void> => {
        const client = clients[id % clients.length] as UnaryClient;
        for (let i = 0; i < STEPS; i++) {
          const who = await step(client, id, i === 0, i === STEPS - 1);
          if (who.startsWith("!")) failures.push(`sequence ${id} step ${i}: ${who}`);
          else (seen.get(id) ?? seen.set(id, new Set()).get(id))?.add(who);
          done++;
        }
      };
      const all = Promise.all(Array.from({ length: SEQUENCES }, (_, i) => run(1000 + i)));
      // Mid-run: drain b, and add e by a reload.
      await waitFor(() => done >= (SEQUENCES * STEPS) / 4, 30_000, "a quarter of the requests done");
      f.fulcrum.cluster("triton").endpoints.setDrained(addressOf(workers[1]!), true);
      writeFileSync(f.configFile, config([...workers, added].map(addressOf)));
      assert.deepEqual(await f.fulcrum.reloadFile(), { ok: true });
      await all;
      assert.deepEqual(failures, []);
      assert.equal(
        [...workers, added].reduce((n, w) => n + w.sequenceErrors, 0),
        0,
        "no request reached an instance that did not start its sequence",
      );
      for (const [id, names] of seen)
        assert.equal(names.size, 1, `sequence ${id} was served by ${[...names].join(", ")}`);
      const perWorker: Record<string, number> = {};
      for (const names of seen.values()) for (const n of names) perWorker[n] = (perWorker[n] ?? 0) + 1;
      assert.deepEqual(Object.keys(perWorker).sort(), ["a", "b", "c", "d"], JSON.stringify(perWorker));
      // Ended sequences free their pins.
      assert.equal(f.fulcrum.cluster("triton").pins?.count(Math.floor(Date.now() / 1000)), 0);
      // New sequences after the drain: never on b; e takes its share.
      const later = new Set<string>();
      for (let id = 5000; id < 5060; id++) {
        const who = await step(clients[id % clients.length] as UnaryClient, id, true, false);
        later.add(who);
        assert.equal(await step(clients[id % clients.length] as UnaryClient, id, false, true), who);
      }
      assert.ok(!later.has("b"), `a sequence_start went to the drained endpoint: ${[...later].join(", ")}`);
      assert.ok(later.has("e"), `the added endpoint took no new sequence: ${[...later].join(", ")}`);
    } finally {
      await own.run();
    }
  });

  it("a sequence whose endpoint died gets UNAVAILABLE and is never moved", async () => {
    const own = new Teardown();
    try {
      const workers = await Promise.all(["a", "b"].map((n) => startWorker(own, n)));
      const f = own.add(await startFulcrum(config(workers.map(addressOf))), (x) => x.fulcrum.stop(0));
      const client = own.add(clientOf(tritonService(), f), (c) => c.close());
      const first = await step(client, 77, true, false);
      assert.ok(first === "a" || first === "b", first);
      const owner = workers.find((w) => w.options.name === first) as SimTritonWorker;
      const other = workers.find((w) => w !== owner) as SimTritonWorker;
      // The owner turns unhealthy (as its health check would say): the sequence may not move.
      f.fulcrum.cluster("triton").endpoints.setHealth(addressOf(owner), "unhealthy");
      const before = other.calls;
      const r = await step(client, 77, false, false);
      assert.match(r, /^!UNAVAILABLE sequence 77 is pinned to 127\.0\.0\.1:\d+, which cannot take it/);
      assert.equal(other.calls, before, "the sequence never reached another instance");
      // Its endpoint back: the sequence continues there.
      f.fulcrum.cluster("triton").endpoints.setHealth(addressOf(owner), "healthy");
      await waitFor(
        async () => (await step(client, 77, false, false)) === first,
        2000,
        "the sequence continues",
      );
      assert.equal(await step(client, 77, false, true), first);
    } finally {
      await own.run();
    }
  });

  it("threads: 2 — pins are shared by the worker threads across a membership change", async () => {
    const own = new Teardown();
    try {
      const workers = await Promise.all(["a", "b", "c"].map((n) => startWorker(own, n)));
      const added = await startWorker(own, "d");
      const f = own.add(await startFulcrum(`threads: 2\n${config(workers.map(addressOf))}`), (x) =>
        x.fulcrum.stop(0),
      );
      // Eight connections spread over both threads; each sequence alternates between them.
      const clients = Array.from({ length: 8 }, () =>
        own.add(clientOf(tritonService(), f), (c) => c.close()),
      );
      const owners = new Map<number, string>();
      for (let id = 1; id <= 40; id++)
        owners.set(id, await step(clients[id % 8] as UnaryClient, id, true, false));
      writeFileSync(f.configFile, `threads: 2\n${config([...workers, added].map(addressOf))}`);
      assert.deepEqual(await f.fulcrum.reloadFile(), { ok: true });
      for (let round = 1; round <= 4; round++) {
        for (let id = 1; id <= 40; id++) {
          const who = await step(clients[(id + round) % 8] as UnaryClient, id, false, round === 4);
          assert.equal(who, owners.get(id), `sequence ${id}, round ${round}`);
        }
      }
      assert.equal(
        [...workers, added].reduce((n, w) => n + w.sequenceErrors, 0),
        0,
      );
    } finally {
      await own.run();
    }
  });

  it("with caps, a sequence's request waits for its own endpoint's slot while the other endpoint is free", async () => {
    const own = new Teardown();
    try {
      const workers = await Promise.all(
        ["a", "b"].map(async (n) => {
          const w = own.add(new SimTritonWorker({ name: n, baseLatencyMs: 300 }), (x) => x.close());
          await w.listen("127.0.0.1", 0);
          return w;
        }),
      );
      const yaml = config(workers.map(addressOf)).replace(
        "    endpoints:\n",
        "    max_active_per_endpoint: 1\n    queue: { max_size: 10, timeout: 10s }\n    endpoints:\n",
      );
      const f = own.add(await startFulcrum(yaml), (x) => x.fulcrum.stop(0));
      const client = own.add(clientOf(tritonService(), f), (c) => c.close());
      // Sequences start one after another until two of them are pinned to a.
      const onA: number[] = [];
      for (let id = 1; id <= 40 && onA.length < 2; id++)
        if ((await step(client, id, true, false)) === "a") onA.push(id);
      assert.equal(onA.length, 2, "two sequences on a");
      const [first, second] = onA as [number, number];
      // Both next requests belong on a: the second waits for the first's slot, though b is free.
      const order: string[] = [];
      const both = [first, second].map((id) =>
        step(client, id, false, false).then((w) => {
          order.push(`${id}@${w}`);
          return w;
        }),
      );
      await waitFor(() => f.fulcrum.cluster("triton").queue.size === 1, 5000, "one request queued");
      assert.deepEqual(await Promise.all(both), ["a", "a"]);
      assert.deepEqual(order, [`${first}@a`, `${second}@a`]);
    } finally {
      await own.run();
    }
  });
});
