/**
 * gRPC mode balances every stream, not every connection: one grpc-js client (one channel, one HTTP/2
 * connection) spreads its calls over three grpc-js workers by the cluster's policy, or pins them by
 * an affinity header, with bounded load when `balance_factor` is set.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { EndpointSet } from "../../src/balancer/endpoint-set.js";
import {
  Teardown,
  callMany,
  countNames,
  echoClient,
  grpcConfig,
  nameOf,
  sleep,
  startUnary,
  type Outcome,
} from "../helpers/grpc-client.js";
import { ECHO, startGrpcWorkers, type GrpcTestWorker } from "../helpers/grpc-test-worker.js";
import { metricSum, metricValue, startFulcrum, waitFor } from "../helpers/harness.js";

function closeWorkers(workers: readonly GrpcTestWorker[]): Promise<unknown> {
  return Promise.all(workers.map((w) => w.close()));
}

function totalActive(set: EndpointSet): number {
  return set.endpoints.reduce((n, e) => n + set.activeOf(e), 0);
}

describe("grpc balancing", { timeout: 60_000 }, () => {
  it("round_robin: 900 unary calls on one connection land exactly 300 on each of 3 workers", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(await startGrpcWorkers(["a", "b", "c"]), closeWorkers);
      const f = own.add(
        await startFulcrum(grpcConfig({ policy: "round_robin", endpoints: workers.map((w) => w.address) })),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const outcomes = await callMany(client, 900, 30);
      assert.deepEqual(countNames(outcomes), { a: 300, b: 300, c: 300 });
      assert.deepEqual(
        workers.map((w) => w.calls),
        [300, 300, 300],
      );
      // The premise: all 900 streams came over a single downstream connection.
      assert.equal(await metricSum(f.registry, "fulcrum_downstream_connections_total"), 1);
      assert.equal(
        await metricValue(f.registry, "fulcrum_grpc_streams_total", {
          listener: "g",
          cluster: "w",
          grpc_code: "OK",
        }),
        900,
      );
    } finally {
      await own.run();
    }
  });

  it("least_connections: while 20 calls are held on A, new calls go to B and C", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(await startGrpcWorkers(["a", "b", "c"]), closeWorkers);
      const [a, b, c] = workers as [GrpcTestWorker, GrpcTestWorker, GrpcTestWorker];
      const f = own.add(
        await startFulcrum(
          grpcConfig({ policy: "least_connections", endpoints: workers.map((w) => w.address) }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (cl) => cl.close());
      const set = f.fulcrum.cluster("w").endpoints;
      const ea = set.get(a.address);
      assert.ok(ea);

      // Put 20 held calls on A: drain B and C while they start.
      set.setDrained(b.address, true);
      set.setDrained(c.address, true);
      a.hold();
      const held = Array.from({ length: 20 }, () =>
        startUnary(client, ECHO.unary, undefined, { deadlineMs: 30_000 }),
      );
      await waitFor(() => a.heldCount === 20, 5000, "20 calls held in worker a");
      assert.equal(set.activeOf(ea), 20, "Fulcrum counts 20 active streams on A");
      set.setDrained(b.address, false);
      set.setDrained(c.address, false);

      const next = await callMany(client, 30, 1);
      const counts = countNames(next);
      assert.equal(counts.a, undefined, `no new call may reach A: ${JSON.stringify(counts)}`);
      assert.equal((counts.b ?? 0) + (counts.c ?? 0), 30, JSON.stringify(counts));
      // Ties between B and C go in rotation; a release racing the next pick may shift one turn.
      assert.ok(
        Math.abs((counts.b ?? 0) - (counts.c ?? 0)) <= 2,
        `B and C take turns: ${JSON.stringify(counts)}`,
      );
      assert.equal(set.activeOf(ea), 20);

      a.release();
      const released = await Promise.all(held.map((h) => h.outcome));
      assert.deepEqual(countNames(released), { a: 20 });
    } finally {
      await own.run();
    }
  });

  it("affinity header: each of 50 x-session-id values sticks to one worker; stopping one moves only its values", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(await startGrpcWorkers(["a", "b", "c"]), closeWorkers);
      const b = workers[1] as GrpcTestWorker;
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            policy: "round_robin",
            affinity: "{ key: header:x-session-id }",
            // No active health check: the stopped worker stays in the hash table, so exactly its own
            // values move (retried, then ejected, and walked past in table order).
            outlier: "{ consecutive_failures: 2, base_ejection_time: 30s, max_ejection_percent: 34 }",
            extra: ["connect_timeout: 1s", "connect_attempts: 3"],
            endpoints: workers.map((w) => w.address),
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (cl) => cl.close());
      const session = (i: number): Record<string, string> => ({ "x-session-id": `session-${i % 50}` });

      const ownerOf = (outcomes: readonly Outcome[]): Map<string, string> => {
        const seen = new Map<string, Set<string>>();
        outcomes.forEach((o, i) => {
          const key = `session-${i % 50}`;
          const set = seen.get(key) ?? new Set<string>();
          set.add(nameOf(o));
          seen.set(key, set);
        });
        const owners = new Map<string, string>();
        for (const [key, names] of seen) {
          assert.equal(names.size, 1, `${key} landed on ${[...names].join(", ")}`);
          owners.set(key, [...names][0] as string);
        }
        return owners;
      };

      const before = ownerOf(await callMany(client, 1000, 25, session));
      assert.equal(before.size, 50);
      assert.deepEqual(new Set(before.values()), new Set(["a", "b", "c"]), "the 50 values spread over all 3");

      await b.close();
      // Fulcrum learns of the closed session asynchronously; calls after that must all succeed.
      await sleep(200);
      const after = ownerOf(await callMany(client, 1000, 25, session));
      for (const [key, owner] of before) {
        const now = after.get(key);
        if (owner === "b") assert.ok(now === "a" || now === "c", `${key} moved off b to ${now}`);
        else assert.equal(now, owner, `${key} stayed on ${owner}`);
      }
    } finally {
      await own.run();
    }
  });

  it("affinity with balance_factor 1.25: one hot value's 100 held calls never overload an endpoint", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(await startGrpcWorkers(["a", "b", "c"]), closeWorkers);
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            policy: "least_connections",
            affinity: "{ key: header:x-session-id, balance_factor: 1.25 }",
            endpoints: workers.map((w) => w.address),
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (cl) => cl.close());
      const set = f.fulcrum.cluster("w").endpoints;
      for (const w of workers) w.hold();

      const held: ReturnType<typeof startUnary>[] = [];
      for (let i = 1; i <= 100; i++) {
        held.push(
          startUnary(client, ECHO.unary, undefined, {
            metadata: { "x-session-id": "hot" },
            deadlineMs: 30_000,
          }),
        );
        await waitFor(() => totalActive(set) === i, 5000, `pick ${i}`, 2);
        await waitFor(
          () => workers.reduce((n, w) => n + w.heldCount, 0) === i,
          5000,
          `call ${i} at a worker`,
          2,
        );
        const bound = Math.ceil((1.25 * i) / 3);
        for (const w of workers) {
          const e = set.get(w.address);
          assert.ok(e);
          const active = set.activeOf(e);
          assert.equal(active, w.heldCount, `${w.name}: Fulcrum's count matches the worker's`);
          assert.ok(
            active <= bound,
            `after pick ${i}: ${w.name} has ${active} > ceil(1.25 × ${i} / 3) = ${bound}`,
          );
        }
      }
      assert.ok(
        workers.every((w) => w.heldCount > 0),
        "the hot value overflowed to every endpoint",
      );

      for (const w of workers) w.release();
      const outcomes = await Promise.all(held.map((h) => h.outcome));
      assert.equal(outcomes.filter((o) => o.ok).length, 100, JSON.stringify(countNames(outcomes)));
    } finally {
      await own.run();
    }
  });
});
