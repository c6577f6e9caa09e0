/**
 * Overload control on the gRPC stream core (src/grpc/proxied-stream.ts, src/cluster/work-queue.ts),
 * on the engine the test matrix names: a stream counts against its endpoint from the moment it is
 * picked; `max_active` caps are exact; calls that find every endpoint full wait in the cluster's
 * queue holding nothing upstream and are bound to whichever endpoint frees first, in priority and
 * fairness order; a queued call that is cancelled, runs out of deadline or of `queue.timeout` never
 * reaches a worker; a full queue sheds (RESOURCE_EXHAUSTED), evicting a worse priority first.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  Teardown,
  echoClient,
  grpcConfig,
  startUnary,
  waitForReady,
  type Outcome,
} from "../helpers/grpc-client.js";
import { ECHO, startGrpcWorkers, type GrpcTestWorker } from "../helpers/grpc-test-worker.js";
import { startFulcrum, waitFor } from "../helpers/harness.js";

function closeWorkers(workers: readonly GrpcTestWorker[]): Promise<unknown> {
  return Promise.all(workers.map((w) => w.close()));
}

const heldTotal = (workers: readonly GrpcTestWorker[]): number =>
  workers.reduce((n, w) => n + w.heldCount, 0);

const QUEUE = "queue: { max_size: 10, timeout: 5s, priority_header: x-priority, fairness_header: x-tenant }";

/** Workers `names` behind a Fulcrum whose cluster caps each endpoint at `cap`, with `extra` lines. */
async function cappedFleet(own: Teardown, names: string[], cap: number, extra: string[] = [QUEUE]) {
  const workers = own.add(await startGrpcWorkers(names), closeWorkers);
  const f = own.add(
    await startFulcrum(
      grpcConfig({
        policy: "least_connections",
        endpoints: workers.map((w) => w.address),
        extra: [`max_active_per_endpoint: ${cap}`, ...extra],
      }),
    ),
    (x) => x.fulcrum.stop(0),
  );
  const client = own.add(echoClient(f.target("g")), (x) => x.close());
  await waitForReady(client);
  const queue = f.fulcrum.cluster("w").queue;
  return { workers, f, client, queue };
}

function shedWith(o: Outcome, pattern: RegExp): void {
  assert.equal(o.ok, false, "expected a shed call");
  if (o.ok) return;
  assert.equal(o.code, grpc.status.RESOURCE_EXHAUSTED, o.details);
  assert.match(o.details, pattern);
}

describe("grpc overload control", { timeout: 60_000 }, () => {
  it("a burst right after an undrain spreads 4/4/4 over three endpoints (least_connections counts from the pick)", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(await startGrpcWorkers(["a", "b", "c"]), closeWorkers);
      const f = own.add(
        await startFulcrum(
          grpcConfig({ policy: "least_connections", endpoints: workers.map((w) => w.address) }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const set = f.fulcrum.cluster("w").endpoints;
      const c = workers[2] as GrpcTestWorker;
      assert.ok(set.setDrained(c.address, true));
      const client = own.add(echoClient(f.target("g")), (x) => x.close());
      await waitForReady(client);
      // Warm: Fulcrum holds connections to a and b, none to c.
      for (let i = 0; i < 6; i++) assert.equal((await startUnary(client, ECHO.unary).outcome).ok, true);
      assert.equal(c.calls, 0);
      assert.ok(set.setDrained(c.address, false));

      for (const w of workers) w.hold();
      const calls = Array.from({ length: 12 }, () => startUnary(client, ECHO.unary));
      await waitFor(() => heldTotal(workers) === 12, 10_000, `12 calls held (got ${heldTotal(workers)})`);
      assert.deepEqual(
        workers.map((w) => w.heldCount),
        [4, 4, 4],
      );
      for (const w of workers) w.release();
      const outcomes = await Promise.all(calls.map((x) => x.outcome));
      assert.ok(outcomes.every((o) => o.ok));
    } finally {
      await own.run();
    }
  });

  it("max_active_per_endpoint 3 holds exactly under 200 concurrent calls; the rest wait and all succeed", async () => {
    const own = new Teardown();
    try {
      const { workers, client } = await cappedFleet(own, ["a", "b"], 3, [
        "queue: { max_size: 500, timeout: 20s }",
      ]);
      for (const w of workers) w.hold();
      const calls = Array.from({ length: 200 }, () =>
        startUnary(client, ECHO.unary, undefined, { deadlineMs: 30_000 }),
      );
      await waitFor(() => heldTotal(workers) === 6, 10_000, `6 calls held (got ${heldTotal(workers)})`);
      // Nothing more arrives while the slots stay taken.
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(
        workers.map((w) => w.heldCount),
        [3, 3],
      );
      for (const w of workers) {
        w.delayMs = 2;
        w.release();
      }
      const outcomes = await Promise.all(calls.map((x) => x.outcome));
      assert.equal(outcomes.filter((o) => o.ok).length, 200);
      assert.deepEqual(
        workers.map((w) => w.maxActive <= 3),
        [true, true],
        `most at once: ${workers.map((w) => w.maxActive).join(", ")}`,
      );
      assert.equal(
        workers.reduce((n, w) => n + w.calls, 0),
        200,
      );
    } finally {
      await own.run();
    }
  });

  it("late binding: a call queued while every slot is busy goes to whichever endpoint frees first", async () => {
    const own = new Teardown();
    try {
      const { workers, client, queue } = await cappedFleet(own, ["a", "b"], 1);
      const [a, b] = workers as [GrpcTestWorker, GrpcTestWorker];
      a.hold();
      b.hold();
      const first = [startUnary(client, ECHO.unary), startUnary(client, ECHO.unary)];
      await waitFor(() => heldTotal(workers) === 2, 10_000, "both slots taken");
      const queued = startUnary(client, ECHO.unary);
      await waitFor(() => queue.size === 1, 5000, "one call queued");
      b.release(); // b's slot frees first
      const o = await queued.outcome;
      assert.equal(o.ok && o.value.toString(), "b");
      assert.equal(a.calls, 1);
      a.release();
      await Promise.all(first.map((x) => x.outcome));
    } finally {
      await own.run();
    }
  });

  it("queued calls are served by priority, flows taking turns within one, FIFO within a flow", async () => {
    const own = new Teardown();
    try {
      const { workers, client, queue } = await cappedFleet(own, ["a"], 1);
      const a = workers[0] as GrpcTestWorker;
      a.hold();
      const served: string[] = [];
      const call = (label: string, priority: string, tenant: string): Promise<Outcome> =>
        startUnary(client, ECHO.unary, undefined, {
          metadata: { "x-priority": priority, "x-tenant": tenant },
        }).outcome.then((o) => {
          served.push(label);
          return o;
        });
      const all = [call("held", "0", "t1")];
      await waitFor(() => a.heldCount === 1, 10_000, "the slot taken");
      const order: [string, string, string][] = [
        ["p10-t1-1", "10", "t1"],
        ["p10-t1-2", "10", "t1"],
        ["p10-t2-1", "10", "t2"],
        ["p0-t1-1", "0", "t1"],
        ["p10-t2-2", "10", "t2"],
        ["p10-t1-3", "10", "t1"],
      ];
      for (const [label, p, t] of order) {
        all.push(call(label, p, t));
        await waitFor(() => queue.size === all.length - 1, 5000, `${label} queued`);
      }
      a.release();
      const outcomes = await Promise.all(all);
      assert.ok(outcomes.every((o) => o.ok));
      assert.deepEqual(served, [
        "held",
        "p0-t1-1",
        "p10-t1-1",
        "p10-t2-1",
        "p10-t1-2",
        "p10-t2-2",
        "p10-t1-3",
      ]);
    } finally {
      await own.run();
    }
  });

  it("a queued call that is cancelled, runs out of deadline or of queue.timeout leaves the queue and never reaches a worker", async () => {
    const own = new Teardown();
    try {
      const { workers, client, queue } = await cappedFleet(own, ["a"], 1, [
        "queue: { max_size: 10, timeout: 600ms }",
      ]);
      const a = workers[0] as GrpcTestWorker;
      a.hold();
      const held = startUnary(client, ECHO.unary, undefined, { deadlineMs: 20_000 });
      await waitFor(() => a.heldCount === 1, 10_000, "the slot taken");
      const cancelled = startUnary(client, ECHO.unary, undefined, { deadlineMs: 20_000 });
      const deadline = startUnary(client, ECHO.unary, undefined, { deadlineMs: 300 });
      const timedOut = startUnary(client, ECHO.unary, undefined, { deadlineMs: 20_000 });
      await waitFor(() => queue.size === 3, 5000, "three calls queued");
      cancelled.call.cancel();
      const c = await cancelled.outcome;
      assert.equal(!c.ok && c.code, grpc.status.CANCELLED);
      const d = await deadline.outcome;
      assert.equal(!d.ok && d.code, grpc.status.DEADLINE_EXCEEDED);
      shedWith(await timedOut.outcome, /cluster "w" is overloaded: queue timeout/);
      await waitFor(() => queue.size === 0, 5000, "the queue empty");
      a.release();
      assert.equal((await held.outcome).ok, true);
      // Only the held call ever reached the worker; a new one is served at once.
      assert.equal((await startUnary(client, ECHO.unary).outcome).ok, true);
      assert.equal(a.calls, 2);
      assert.equal(a.cancelled, 0);
    } finally {
      await own.run();
    }
  });

  it("a full queue sheds RESOURCE_EXHAUSTED; a better priority evicts the newest of the worst; sheddable calls never queue", async () => {
    const own = new Teardown();
    try {
      const { workers, client, queue } = await cappedFleet(own, ["a"], 1, [
        "queue: { max_size: 2, timeout: 10s, priority_header: x-priority }",
      ]);
      const a = workers[0] as GrpcTestWorker;
      a.hold();
      const p = (priority: string) =>
        startUnary(client, ECHO.unary, undefined, {
          metadata: { "x-priority": priority },
          deadlineMs: 20_000,
        });
      const held = p("0");
      await waitFor(() => a.heldCount === 1, 10_000, "the slot taken");
      const q1 = p("10");
      const q2 = p("10");
      await waitFor(() => queue.size === 2, 5000, "two queued");
      shedWith(await p("10").outcome, /queue full/);
      shedWith(await p("-1").outcome, /sheddable/);
      const urgent = p("1");
      shedWith(await q2.outcome, /evicted/);
      assert.equal(queue.size, 2);
      a.release();
      const rest = await Promise.all([held.outcome, q1.outcome, urgent.outcome]);
      assert.ok(rest.every((o) => o.ok));
      assert.equal(a.calls, 3);
    } finally {
      await own.run();
    }
  });

  it("without a queue (max_size 0) a call finding every endpoint at its cap is shed at once", async () => {
    const own = new Teardown();
    try {
      const { workers, client } = await cappedFleet(own, ["a"], 1, []);
      const a = workers[0] as GrpcTestWorker;
      a.hold();
      const held = startUnary(client, ECHO.unary);
      await waitFor(() => a.heldCount === 1, 10_000, "the slot taken");
      shedWith(await startUnary(client, ECHO.unary).outcome, /cluster "w" is overloaded: .*no queue/);
      a.release();
      assert.equal((await held.outcome).ok, true);
    } finally {
      await own.run();
    }
  });
});
