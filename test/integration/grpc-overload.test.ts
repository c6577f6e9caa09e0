/**
 * Overload control on the gRPC stream core (src/grpc/proxied-stream.ts, src/cluster/work-queue.ts),
 * on the engine the test matrix names: a stream counts against its endpoint from the moment it is
 * picked; `max_active` caps are exact; calls that find every endpoint full wait in the cluster's
 * queue holding nothing upstream and are bound to whichever endpoint frees first, in priority and
 * fairness order; a queued call that is cancelled, runs out of deadline or of `queue.timeout` never
 * reaches a worker; a full queue sheds (RESOURCE_EXHAUSTED), evicting a worse priority first.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
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
import { adminGet } from "../helpers/admin-client.js";
import type { StatusDocument } from "../../src/admin/admin-status.js";

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
      'admin: { listen: "127.0.0.1:0" }\n' +
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
      const { workers, client, queue, f } = await cappedFleet(own, ["a"], 1, [
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
      // What an operator sees meanwhile: the cap, the queue by priority, the sheds by reason.
      const admin = f.fulcrum.adminAddress ?? "";
      const status = (await adminGet(admin, "/status")).body as StatusDocument;
      const cluster = status.clusters[0];
      assert.deepEqual(cluster?.queue, {
        depth: 2,
        by_priority: { "1": 1, "10": 1 },
        max_size: 2,
        timeout_ms: 10_000,
      });
      assert.equal(cluster?.endpoints[0]?.max_active, 1);
      const text = (await adminGet(admin, "/metrics")).text;
      for (const [reason, n] of [
        ["queue_full", 1],
        ["sheddable", 1],
        ["evicted", 1],
      ] as const)
        assert.match(text, new RegExp(`fulcrum_shed_total\\{cluster="w",reason="${reason}"\\} ${n}\\b`));
      assert.match(text, /fulcrum_queue_depth\{cluster="w",priority="10"\} 1\b/);
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

/** Workers `names` behind a Fulcrum with `extra` cluster lines (round robin, an admin listener). */
async function fleet(own: Teardown, names: string[], extra: string[]) {
  const workers = own.add(await startGrpcWorkers(names), closeWorkers);
  const f = own.add(
    await startFulcrum(
      'admin: { listen: "127.0.0.1:0" }\n' +
        grpcConfig({ policy: "round_robin", endpoints: workers.map((w) => w.address), extra }),
    ),
    (x) => x.fulcrum.stop(0),
  );
  const client = own.add(echoClient(f.target("g")), (x) => x.close());
  await waitForReady(client);
  const metric = async (pattern: RegExp): Promise<number> => {
    const m = pattern.exec((await adminGet(f.fulcrum.adminAddress ?? "", "/metrics")).text);
    return m ? Number(m[1]) : 0;
  };
  return { workers, f, client, metric };
}

const RETRIES = /fulcrum_retries_total\{cluster="w",reason="unavailable"\} (\d+)/;
const EXHAUSTED = /fulcrum_retry_budget_exhausted_total\{cluster="w"\} (\d+)/;

describe("grpc overload control and the workers' service time", { timeout: 60_000 }, () => {
  /** A capped fleet of one worker whose OK answers took about `ms` (the service-time estimate). */
  async function warmed(own: Teardown, ms: number) {
    const fleet = await cappedFleet(own, ["a"], 1, ["queue: { max_size: 10, timeout: 10s }"]);
    for (let i = 0; i < 3; i++) {
      const o = await startUnary(fleet.client, ECHO.unary, undefined, {
        metadata: { "x-delay-ms": String(ms) },
      }).outcome;
      assert.equal(o.ok, true);
    }
    return fleet;
  }

  it("a queued call with too little deadline left for the worker's service time is answered, never sent", async () => {
    const own = new Teardown();
    try {
      const { workers, client, queue } = await warmed(own, 300);
      const a = workers[0] as GrpcTestWorker;
      a.hold();
      const held = startUnary(client, ECHO.unary, undefined, { deadlineMs: 20_000 });
      await waitFor(() => a.heldCount === 1, 10_000, "the slot taken");
      const late = startUnary(client, ECHO.unary, undefined, { deadlineMs: 500 });
      await waitFor(() => queue.size === 1, 5000, "one queued");
      await new Promise((r) => setTimeout(r, 150));
      a.release(); // the slot frees with less than 1.5 × 300 ms of the queued call's deadline left
      const o = await late.outcome;
      assert.equal(!o.ok && o.code, grpc.status.DEADLINE_EXCEEDED);
      assert.match(!o.ok ? o.details : "", /deadline would pass in the worker/);
      assert.equal((await held.outcome).ok, true);
      assert.equal(a.calls, 4);
    } finally {
      await own.run();
    }
  });

  it("a call Fulcrum gives up on keeps its endpoint's slot for the rest of the worker's service time", async () => {
    const own = new Teardown();
    try {
      const { workers, client, queue } = await warmed(own, 800);
      const a = workers[0] as GrpcTestWorker;
      const abandoned = startUnary(client, ECHO.unary, undefined, {
        metadata: { "x-delay-ms": "800" },
        deadlineMs: 100,
      });
      await waitFor(() => a.active === 1, 5000, "the call at the worker");
      const next = startUnary(client, ECHO.unary, undefined, { deadlineMs: 20_000 });
      const o = await abandoned.outcome;
      assert.equal(!o.ok && o.code, grpc.status.DEADLINE_EXCEEDED);
      // The worker may still be running it: the next call waits for the slot instead of joining it.
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(queue.size, 1);
      assert.equal(a.calls, 4);
      assert.equal((await next.outcome).ok, true);
      assert.equal(a.calls, 5);
    } finally {
      await own.run();
    }
  });
});

describe("grpc status-aware retries (retry_on)", { timeout: 60_000 }, () => {
  it("a trailers-only UNAVAILABLE is retried on another endpoint; the client sees only OK", async () => {
    const own = new Teardown();
    try {
      const { workers, client, metric } = await fleet(own, ["a", "b"], ["retry_on: [unavailable]"]);
      const [a, b] = workers as [GrpcTestWorker, GrpcTestWorker];
      a.failWith = { code: grpc.status.UNAVAILABLE, details: "warming up" };
      for (let i = 0; i < 6; i++) {
        const o = await startUnary(client, ECHO.unary).outcome;
        assert.equal(o.ok && o.value.toString(), "b");
      }
      assert.equal(b.calls, 6);
      assert.ok(a.calls >= 1);
      assert.equal(await metric(RETRIES), a.calls);
    } finally {
      await own.run();
    }
  });

  it("without retry_on the status passes through; after response headers it is never retried", async () => {
    const own = new Teardown();
    try {
      const plain = await fleet(own, ["a", "b"], []);
      const [a] = plain.workers as [GrpcTestWorker, GrpcTestWorker];
      a.failWith = { code: grpc.status.UNAVAILABLE, details: "warming up" };
      const outcomes = await Promise.all([0, 1].map(() => startUnary(plain.client, ECHO.unary).outcome));
      assert.deepEqual(
        outcomes.map((o) => (o.ok ? "ok" : o.code)).sort(),
        [grpc.status.UNAVAILABLE, "ok"].sort(),
      );

      const retrying = await fleet(own, ["c", "d"], ["retry_on: [unavailable]"]);
      // ECHO.meta sends response headers before its status: a byte of the response left.
      const o = await startUnary(
        retrying.client,
        ECHO.meta,
        Buffer.from(JSON.stringify({ code: grpc.status.UNAVAILABLE, message: "after headers" })),
        { metadata: { "x-first": "1" } },
      ).outcome;
      assert.equal(!o.ok && o.code, grpc.status.UNAVAILABLE);
      assert.equal(!o.ok && o.details, "after headers");
      assert.equal(
        retrying.workers.reduce((n, w) => n + w.calls, 0),
        1,
      );
      assert.equal(await retrying.metric(RETRIES), 0);
    } finally {
      await own.run();
    }
  });

  it("beyond the retry budget the status passes through, counted", async () => {
    const own = new Teardown();
    try {
      const { workers, client, metric } = await fleet(
        own,
        ["a", "b"],
        ["retry_on: [unavailable]", "retry_budget_percent: 0", "retry_budget_min_concurrency: 1"],
      );
      const [a, b] = workers as [GrpcTestWorker, GrpcTestWorker];
      a.failWith = { code: grpc.status.UNAVAILABLE, details: "warming up" };
      b.hold();
      // The first call goes to a, is retried on b and waits there: it holds the one retry allowed.
      const first = startUnary(client, ECHO.unary);
      await waitFor(() => b.heldCount === 1, 10_000, "the retry held at b");
      // The next goes to a as well (round robin); its retry would be the second at once.
      const second = await startUnary(client, ECHO.unary).outcome;
      assert.equal(!second.ok && second.code, grpc.status.UNAVAILABLE);
      assert.equal(await metric(EXHAUSTED), 1);
      assert.equal(await metric(RETRIES), 1);
      b.release();
      const o = await first.outcome;
      assert.equal(o.ok && o.value.toString(), "b");
    } finally {
      await own.run();
    }
  });
});

describe("grpc overload control across a reload", { timeout: 60_000 }, () => {
  it("a reload that raises the cap binds the queued calls at once, dropping none", async () => {
    const own = new Teardown();
    try {
      const { workers, client, queue, f } = await cappedFleet(own, ["a"], 1);
      const a = workers[0] as GrpcTestWorker;
      a.hold();
      const calls = [0, 1, 2].map(() => startUnary(client, ECHO.unary, undefined, { deadlineMs: 20_000 }));
      await waitFor(() => a.heldCount === 1 && queue.size === 2, 10_000, "one held, two queued");
      writeFileSync(
        f.configFile,
        readFileSync(f.configFile, "utf8").replace(
          "max_active_per_endpoint: 1",
          "max_active_per_endpoint: 3",
        ),
      );
      const answer = await f.fulcrum.reloadFile();
      assert.equal(answer.ok, true, JSON.stringify(answer));
      await waitFor(() => a.heldCount === 3, 10_000, `the queued calls bound (held ${a.heldCount})`);
      assert.equal(f.fulcrum.cluster("w").queue.size, 0);
      a.release();
      const outcomes = await Promise.all(calls.map((c) => c.outcome));
      assert.ok(outcomes.every((o) => o.ok));
    } finally {
      await own.run();
    }
  });
});
