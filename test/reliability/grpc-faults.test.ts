/**
 * gRPC worker faults under load, on both engines, with Fulcrum and the workers each in their own
 * process (the load runs in the test's process through grpc-js clients, one HTTP/2 connection each,
 * so Fulcrum balances streams, not connections). A worker SIGKILLed, one SIGSTOPped, one that accepts
 * and never speaks HTTP/2, one that resets every tenth stream, and a slow one. Only the streams that
 * were on the failed worker fail, with the status that says what happened; the grpc.health.v1 probe
 * (or outlier detection) takes the worker out within docs/architecture.md's health deadline
 * `(threshold + 1) × interval + timeout + 1s`; no call outlives its deadline; a healed worker returns.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { setTimeout as sleep } from "node:timers/promises";
import { samplesOver, startFulcrumProcess, until, type FulcrumProcess } from "./helpers/fulcrum-process.js";
import {
  startGrpcFaultWorker,
  type GrpcFaultWorker,
  type GrpcFaultWorkerOptions,
} from "./helpers/grpc-fault-worker-process.js";
import { GrpcLoad, summarize, type CallRecord } from "./helpers/grpc-load.js";

const ENGINES = ["http2", "frames"] as const;
const INTERVAL_MS = 500;
const TIMEOUT_MS = 300;
const THRESHOLD = 2;
const DEADLINE_MS = (THRESHOLD + 1) * INTERVAL_MS + TIMEOUT_MS + 1000;
const CALL_DEADLINE_MS = 2000;
/** How late a call's outcome may arrive after its deadline (timers, scheduling) and still be on time. */
const LATE_SLACK_MS = 500;
const WORKER_DELAY_MS = 20;
const SLOW_DELAY_MS = 300;
const RESET_EVERY = 10;

interface Scenario {
  readonly f: FulcrumProcess;
  readonly healthy: readonly GrpcFaultWorker[];
  faulty: GrpcFaultWorker;
  readonly load: GrpcLoad;
  /** 1 or 0 from `fulcrum_endpoint_healthy` for the faulty worker's address. */
  readonly faultyHealth: () => Promise<number>;
  close(): Promise<void>;
}

async function scenario(
  engine: string,
  faulty: Omit<GrpcFaultWorkerOptions, "name">,
  policy = "round_robin",
): Promise<Scenario> {
  const healthy = await Promise.all(
    ["n1", "n2"].map((name) => startGrpcFaultWorker({ name, delayMs: WORKER_DELAY_MS })),
  );
  const bad = await startGrpcFaultWorker({ name: "f", delayMs: WORKER_DELAY_MS, ...faulty });
  const f = await startFulcrumProcess({
    listening: 2,
    yaml: `
admin: { listen: "127.0.0.1:0" }
drain_timeout: 2s
listeners:
  - { name: g, protocol: grpc, engine: ${engine}, listen: "127.0.0.1:0", cluster: w }
clusters:
  - name: w
    policy: ${policy}
    connect_timeout: 1s
    health_check:
      type: grpc
      interval: ${INTERVAL_MS}ms
      timeout: ${TIMEOUT_MS}ms
      healthy_threshold: ${THRESHOLD}
      unhealthy_threshold: ${THRESHOLD}
    outlier_detection: { consecutive_failures: 5, base_ejection_time: 5s, max_ejection_percent: 50 }
    endpoints:
${[...healthy, bad].map((w) => `      - address: "${w.address}"`).join("\n")}
`,
  });
  const load = new GrpcLoad(f.target("g"), { clients: 2, concurrency: 8, deadlineMs: CALL_DEADLINE_MS });
  const s: Scenario = {
    f,
    healthy,
    faulty: bad,
    load,
    faultyHealth: () => f.metric("fulcrum_endpoint_healthy", { cluster: "w", endpoint: bad.address }),
    async close() {
      await load.stop();
      await f.stop();
      await Promise.all([...healthy, s.faulty].map((w) => w.kill()));
    },
  };
  return s;
}

/** Resolves with when (Date.now()) the faulty worker's health metric first reads `value`. */
async function healthBecomes(s: Scenario, value: 0 | 1, timeoutMs: number): Promise<number> {
  await until(async () => (await s.faultyHealth()) === value, timeoutMs, `health ${value}`, 50);
  return Date.now();
}

/** No call's outcome arrived later than its deadline (plus scheduling slack). */
function assertNothingOutlivesItsDeadline(records: readonly CallRecord[]): void {
  const late = records.filter((r) => r.end - r.start > CALL_DEADLINE_MS + LATE_SLACK_MS);
  assert.deepEqual(
    late.slice(0, 5),
    [],
    `${late.length} calls outlived their ${CALL_DEADLINE_MS} ms deadline`,
  );
}

function figure(fields: Record<string, unknown>): void {
  console.log(`reliability-figure ${JSON.stringify(fields)}`);
}

for (const engine of ENGINES) {
  describe(`grpc worker faults under load, engine ${engine} (processes)`, { timeout: 300_000 }, () => {
    it(`SIGKILL: only its in-flight streams fail (UNAVAILABLE); unhealthy within ${DEADLINE_MS} ms; back when restarted`, async () => {
      const s = await scenario(engine, {});
      try {
        await until(() => s.load.records.some((r) => r.worker === "f"), 10_000, "the worker to take load");
        await sleep(500);
        const killedAt = Date.now();
        await s.faulty.kill("SIGKILL");
        const unhealthyAt = await healthBecomes(s, 0, DEADLINE_MS + 5000);
        await sleep(1000);
        // Heal: a new process on the same address.
        s.faulty = await startGrpcFaultWorker({ name: "f", delayMs: WORKER_DELAY_MS, port: s.faulty.port });
        const restartedAt = Date.now();
        const healthyAt = await healthBecomes(s, 1, DEADLINE_MS + 5000);
        await until(
          () => s.load.records.some((r) => r.worker === "f" && r.start > healthyAt),
          5000,
          "the restarted worker to take streams again",
        );
        const records = await s.load.stop();
        const failed = records.filter((r) => r.code !== 0);
        figure({
          figure: "grpc_fault_sigkill",
          engine,
          unhealthy_after_ms: unhealthyAt - killedAt,
          healthy_after_restart_ms: healthyAt - restartedAt,
          deadline_ms: DEADLINE_MS,
          ...summarize(records),
        });
        assert.ok(unhealthyAt - killedAt <= DEADLINE_MS, `unhealthy after ${unhealthyAt - killedAt} ms`);
        assert.ok(
          healthyAt - restartedAt <= DEADLINE_MS,
          `healthy again after ${healthyAt - restartedAt} ms`,
        );
        // At most the streams that were on it: 8 in flight over 3 workers.
        assert.ok(failed.length <= 8, `${failed.length} calls failed: ${JSON.stringify(summarize(records))}`);
        for (const r of failed) {
          assert.equal(
            r.code,
            grpc.status.UNAVAILABLE,
            `status of a stream on the killed worker: ${JSON.stringify(r)}`,
          );
          assert.ok(r.start <= killedAt + 50, `a call started after the kill failed: ${JSON.stringify(r)}`);
        }
        assert.ok(records.filter((r) => r.start > killedAt).length >= 50, "load went on after the kill");
        assertNothingOutlivesItsDeadline(records);
      } finally {
        await s.close();
      }
    });

    it(`SIGSTOP: its streams end at their deadline (DEADLINE_EXCEEDED); unhealthy within ${DEADLINE_MS} ms; SIGCONT brings it back`, async () => {
      const s = await scenario(engine, {});
      try {
        await until(() => s.load.records.some((r) => r.worker === "f"), 10_000, "the worker to take load");
        await sleep(500);
        const stoppedAt = Date.now();
        s.faulty.channel.signal("SIGSTOP");
        const unhealthyAt = await healthBecomes(s, 0, DEADLINE_MS + 5000);
        // Long enough for every stream stuck on it to reach its deadline.
        await sleep(CALL_DEADLINE_MS + 1000);
        s.faulty.channel.signal("SIGCONT");
        const continuedAt = Date.now();
        const healthyAt = await healthBecomes(s, 1, DEADLINE_MS + 5000);
        const records = await s.load.stop();
        const failed = records.filter((r) => r.code !== 0);
        figure({
          figure: "grpc_fault_sigstop",
          engine,
          unhealthy_after_ms: unhealthyAt - stoppedAt,
          healthy_after_sigcont_ms: healthyAt - continuedAt,
          ...summarize(records),
        });
        assert.ok(unhealthyAt - stoppedAt <= DEADLINE_MS, `unhealthy after ${unhealthyAt - stoppedAt} ms`);
        assert.ok(healthyAt - continuedAt <= DEADLINE_MS, `healthy after ${healthyAt - continuedAt} ms`);
        assert.ok(failed.length >= 1, "streams were on the stopped worker");
        for (const r of failed) {
          assert.equal(r.code, grpc.status.DEADLINE_EXCEEDED, JSON.stringify(r));
          assert.ok(
            r.start >= stoppedAt - WORKER_DELAY_MS - 50,
            `failed before the stop: ${JSON.stringify(r)}`,
          );
          assert.ok(r.start <= unhealthyAt + 100, `sent to it after it was out: ${JSON.stringify(r)}`);
        }
        assertNothingOutlivesItsDeadline(records);
        assert.ok(
          records
            .filter((r) => r.start > unhealthyAt + 100 && r.start < continuedAt)
            .every((r) => r.code === 0),
          "every stream after it was out was served",
        );
      } finally {
        await s.close();
      }
    });

    it("accepts TCP and never speaks HTTP/2: probes fail, it goes unhealthy, its streams go elsewhere or end by deadline", async () => {
      const s = await scenario(engine, { mode: "silent" });
      try {
        const startedAt = Date.now();
        const unhealthyAt = await healthBecomes(s, 0, DEADLINE_MS + 5000);
        await sleep(2000);
        const records = await s.load.stop();
        const after = records.filter((r) => r.start > unhealthyAt + 100);
        figure({
          figure: "grpc_fault_silent",
          engine,
          unhealthy_after_ms: unhealthyAt - startedAt,
          ...summarize(records),
        });
        // Endpoints start healthy (docs/architecture.md), so the deadline counts from the start.
        assert.ok(unhealthyAt - startedAt <= DEADLINE_MS, `unhealthy after ${unhealthyAt - startedAt} ms`);
        for (const r of records.filter((x) => x.code !== 0))
          assert.ok(
            r.code === Number(grpc.status.DEADLINE_EXCEEDED) || r.code === Number(grpc.status.UNAVAILABLE),
            JSON.stringify(r),
          );
        assert.ok(records.every((r) => r.worker !== "f"));
        assert.ok(after.length >= 50 && after.every((r) => r.code === 0), JSON.stringify(summarize(after)));
        assertNothingOutlivesItsDeadline(records);
      } finally {
        await s.close();
      }
    });

    it(`resets every ${RESET_EVERY}th stream: exactly those fail (INTERNAL), the rest are served, it stays healthy`, async () => {
      const s = await scenario(engine, { resetEvery: RESET_EVERY });
      try {
        const health = await samplesOver(s.faultyHealth, 3000);
        const records = await s.load.stop();
        const stats = await s.faulty.stats();
        const failed = records.filter((r) => r.code !== 0);
        figure({
          figure: "grpc_fault_reset_every_10th",
          engine,
          worker_resets: stats.reset,
          ...summarize(records),
        });
        assert.ok(!health.includes(0), `health: ${health.join("")}`);
        assert.ok(stats.reset >= 5, `the worker reset ${stats.reset} streams`);
        assert.equal(failed.length, stats.reset, "one failed call per reset stream, no more");
        for (const r of failed) assert.equal(r.code, grpc.status.INTERNAL, JSON.stringify(r));
        assertNothingOutlivesItsDeadline(records);
      } finally {
        await s.close();
      }
    });

    it(`slow (${SLOW_DELAY_MS} ms per call): served, stays healthy, least_connections sends it less`, async () => {
      const s = await scenario(engine, { delayMs: SLOW_DELAY_MS }, "least_connections");
      try {
        const health = await samplesOver(s.faultyHealth, 3000);
        const records = await s.load.stop();
        const count = (w: string): number => records.filter((r) => r.worker === w).length;
        figure({ figure: "grpc_fault_slow", engine, ...summarize(records) });
        assert.ok(!health.includes(0), `health: ${health.join("")}`);
        assert.deepEqual(
          records.filter((r) => r.code !== 0),
          [],
          "every call served",
        );
        assert.ok(count("f") >= 3, `the slow worker served ${count("f")}`);
        assert.ok(count("f") * 4 < Math.min(count("n1"), count("n2")), JSON.stringify(summarize(records)));
      } finally {
        await s.close();
      }
    });
  });
}
