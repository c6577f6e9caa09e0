/**
 * TCP worker faults under load, with Fulcrum, the workers and the load client each in their own
 * process. A worker SIGKILLed (connects refused), SIGSTOPped (the kernel still completes handshakes
 * for it), one that accepts and never replies, and a slow one. docs/architecture.md's health deadline is
 * `(threshold + 1) × interval + timeout + 1s`. A TCP connect probe proves only that the port accepts:
 * a killed worker is caught by it within the deadline, while a stopped or silent one passes every
 * probe, stays healthy, and its connections end only by idle_timeout. These tests assert exactly that.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { samplesOver, startFulcrumProcess, until, type FulcrumProcess } from "./helpers/fulcrum-process.js";
import { startLoadClient, type ConnRecord, type LoadClient } from "./helpers/load-client-process.js";
import { startTcpWorker, type TcpWorkerProcess, type WorkerMode } from "./helpers/tcp-worker-process.js";

const INTERVAL_MS = 500;
const TIMEOUT_MS = 300;
const THRESHOLD = 2;
const IDLE_TIMEOUT_MS = 2000;
const DEADLINE_MS = (THRESHOLD + 1) * INTERVAL_MS + TIMEOUT_MS + 1000;
const SLOW_DELAY_MS = 300;

interface Scenario {
  readonly f: FulcrumProcess;
  readonly healthy: readonly TcpWorkerProcess[];
  readonly faulty: TcpWorkerProcess;
  readonly load: LoadClient;
  /** 1 or 0 from `fulcrum_endpoint_healthy` for the faulty worker. */
  readonly faultyHealth: () => Promise<number>;
  /** Connections the load client finished, in the order they closed. */
  records(): ConnRecord[];
  close(): Promise<void>;
}

/** Two echo workers and one `mode` worker behind Fulcrum, with closed-loop load running through it. */
async function scenario(mode: WorkerMode, policy: string, delayMs = 0): Promise<Scenario> {
  const healthy = await Promise.all(
    ["n1", "n2"].map((name) => startTcpWorker({ name, mode: "echo", greet: true })),
  );
  const faulty = await startTcpWorker({ name: "f", mode, greet: true, delayMs });
  const f = await startFulcrumProcess({
    listening: 2,
    yaml: `
admin: { listen: "127.0.0.1:0" }
drain_timeout: 2s
listeners:
  - { name: in, protocol: tcp, listen: "127.0.0.1:0", cluster: w, idle_timeout: ${IDLE_TIMEOUT_MS}ms }
clusters:
  - name: w
    policy: ${policy}
    connect_timeout: 1s
    connect_attempts: 3
    health_check:
      type: tcp
      interval: ${INTERVAL_MS}ms
      timeout: ${TIMEOUT_MS}ms
      healthy_threshold: ${THRESHOLD}
      unhealthy_threshold: ${THRESHOLD}
    endpoints:
${[...healthy, faulty].map((w) => `      - address: "${w.address}"`).join("\n")}
`,
  });
  const load = await startLoadClient();
  await load.loop(f.target("in"), { concurrency: 6, payloadBytes: 1024, pauseMs: 20, maxMs: 60_000 });
  return {
    f,
    healthy,
    faulty,
    load,
    faultyHealth: () => f.metric("fulcrum_endpoint_healthy", { cluster: "w", endpoint: faulty.address }),
    records: () => load.records(),
    async close() {
      await load.stop().catch(() => 0);
      await load.kill();
      await f.stop();
      await Promise.all([...healthy, faulty].map((w) => w.kill()));
    },
  };
}

function summary(records: readonly ConnRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) {
    const key = `${r.worker ?? "-"}:${r.outcome}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/** Connections that reached the faulty worker and were closed, unanswered, by Fulcrum's idle_timeout. */
function assertClosedByIdleTimeout(stuck: readonly ConnRecord[], what: string): void {
  for (const r of stuck) {
    const lived = r.closed - (r.connected ?? r.start);
    assert.ok(
      lived >= IDLE_TIMEOUT_MS - 100 && lived <= IDLE_TIMEOUT_MS + 1500,
      `${what}: an unanswered connection closed after ${lived} ms, not by idle_timeout (${IDLE_TIMEOUT_MS} ms)`,
    );
  }
}

describe("tcp worker faults under load (processes)", { timeout: 300_000 }, () => {
  it(`SIGKILL: connections move to healthy workers; unhealthy within the deadline (${DEADLINE_MS} ms)`, async () => {
    const s = await scenario("echo", "round_robin");
    try {
      await until(() => s.records().some((r) => r.worker === "f"), 10_000, "the worker to take load");
      const killedAt = Date.now();
      await s.faulty.kill("SIGKILL");
      const deadAt = Date.now();
      const tookMs = await until(
        async () => (await s.faultyHealth()) === 0,
        DEADLINE_MS + 5000,
        "unhealthy",
        50,
      );
      const unhealthyAfter = Date.now() - killedAt;
      await sleep(1500);
      await s.load.stop();
      const after = s.records().filter((r) => r.start > deadAt);
      console.log(
        `reliability-figure ${JSON.stringify({ figure: "tcp_fault_sigkill", unhealthy_after_ms: unhealthyAfter, deadline_ms: DEADLINE_MS, ...summary(s.records()) })}`,
      );
      assert.ok(unhealthyAfter <= DEADLINE_MS, `unhealthy after ${unhealthyAfter} ms (polled ${tookMs} ms)`);
      assert.ok(after.length >= 20, `only ${after.length} connections after the kill`);
      const failed = after.filter((r) => r.outcome !== "ok" || r.worker === "f");
      assert.deepEqual(failed, [], "every connection opened after the kill is served by a healthy worker");
      // Only connections already open on the killed worker may have failed.
      const lost = s.records().filter((r) => r.outcome !== "ok");
      for (const r of lost)
        assert.ok(r.start <= deadAt, `a failure that began after the kill: ${JSON.stringify(r)}`);
    } finally {
      await s.close();
    }
  });

  it("SIGSTOP: probes still pass (the kernel accepts), it stays healthy, idle_timeout ends its connections; SIGCONT serves again", async () => {
    const s = await scenario("echo", "round_robin");
    try {
      await until(() => s.records().some((r) => r.worker === "f"), 10_000, "the worker to take load");
      s.faulty.channel.signal("SIGSTOP");
      const stoppedAt = Date.now();
      const stopMs = DEADLINE_MS + IDLE_TIMEOUT_MS + 1000;
      const health = await samplesOver(s.faultyHealth, stopMs);
      s.faulty.channel.signal("SIGCONT");
      const continuedAt = Date.now();
      await until(
        () => s.records().some((r) => r.worker === "f" && r.start > continuedAt && r.outcome === "ok"),
        10_000,
        "the continued worker to serve a new connection",
      );
      await s.load.stop();
      const during = s
        .records()
        .filter((r) => r.start > stoppedAt + 100 && r.start < continuedAt - IDLE_TIMEOUT_MS - 500);
      const stuck = during.filter((r) => r.outcome !== "ok");
      console.log(
        `reliability-figure ${JSON.stringify({ figure: "tcp_fault_sigstop", stopped_ms: stopMs, unanswered: stuck.length, ...summary(during) })}`,
      );
      assert.ok(!health.includes(0), `health while stopped: ${health.join("")}`);
      assert.ok(
        stuck.length >= 2,
        `connections reached the stopped worker: ${JSON.stringify(summary(during))}`,
      );
      for (const r of stuck) assert.equal(r.outcome, "closed_before_greeting", JSON.stringify(r));
      assertClosedByIdleTimeout(stuck, "SIGSTOP");
      for (const r of during.filter((x) => x.outcome === "ok"))
        assert.ok(r.worker === "n1" || r.worker === "n2", JSON.stringify(r));
    } finally {
      await s.close();
    }
  });

  it("accepts and never replies: connect probes pass, it stays healthy, only idle_timeout closes its connections", async () => {
    const s = await scenario("silent", "round_robin");
    try {
      const startedAt = Date.now();
      const windowMs = 2 * DEADLINE_MS;
      const health = await samplesOver(s.faultyHealth, windowMs);
      await s.load.stop();
      const endedAt = Date.now();
      const records = s.records();
      const unanswered = records.filter((r) => r.outcome !== "ok");
      const st = await s.f.status();
      const total = st.clusters[0]?.endpoints.find((e) => e.address === s.faulty.address)?.total ?? 0;
      const accepted = (await s.faulty.stats()).accepted;
      const probes = accepted - total;
      console.log(
        `reliability-figure ${JSON.stringify({ figure: "tcp_fault_silent", window_ms: endedAt - startedAt, probes_passed: probes, unanswered: unanswered.length, ...summary(records) })}`,
      );
      assert.ok(!health.includes(0), `health of the silent worker: ${health.join("")}`);
      assert.equal(st.clusters[0]?.endpoints.find((e) => e.address === s.faulty.address)?.health, "healthy");
      assert.equal(
        await s.f.metric("fulcrum_outlier_ejections_total", { endpoint: s.faulty.address }),
        0,
        "an unanswered connection is no data-path failure",
      );
      // Probes reached it: one per interval over the window (jitter ≤ 10 %), each a passed connect.
      const expected = Math.floor((endedAt - startedAt) / INTERVAL_MS);
      assert.ok(probes >= expected * 0.7, `${probes} probes, expected about ${expected}`);
      assert.ok(unanswered.length >= 3, `connections reached the silent worker: ${unanswered.length}`);
      assert.equal(unanswered.length, total, "exactly the connections sent to it went unanswered");
      for (const r of unanswered) assert.equal(r.outcome, "closed_before_greeting", JSON.stringify(r));
      assertClosedByIdleTimeout(unanswered, "silent");
      for (const r of records.filter((x) => x.outcome === "ok"))
        assert.ok(r.worker === "n1" || r.worker === "n2", JSON.stringify(r));
      // Fulcrum closed its side of every connection it had with the silent worker (probes included).
      await until(
        async () => {
          const w = await s.faulty.stats();
          return w.accepted - w.ended <= 1; // at most one probe in flight
        },
        IDLE_TIMEOUT_MS + 3000,
        "Fulcrum to close every connection to the silent worker",
      );
    } finally {
      await s.close();
    }
  });

  it(`slow (${SLOW_DELAY_MS} ms per reply): served correctly, stays healthy, least_connections sends it less`, async () => {
    const s = await scenario("slow", "least_connections", SLOW_DELAY_MS);
    try {
      const health = await samplesOver(s.faultyHealth, DEADLINE_MS + 2000);
      await s.load.stop();
      const records = s.records();
      const count = (w: string): number => records.filter((r) => r.worker === w).length;
      console.log(
        `reliability-figure ${JSON.stringify({ figure: "tcp_fault_slow", delay_ms: SLOW_DELAY_MS, ...summary(records) })}`,
      );
      assert.ok(!health.includes(0), `health: ${health.join("")}`);
      assert.deepEqual(
        records.filter((r) => r.outcome !== "ok"),
        [],
        "every connection served, the slow ones included",
      );
      const slow = records.filter((r) => r.worker === "f");
      assert.ok(slow.length >= 3, `the slow worker served ${slow.length}`);
      for (const r of slow)
        assert.ok(
          (r.echoed ?? 0) - (r.greeted ?? 0) >= SLOW_DELAY_MS - 20,
          `answered too fast: ${JSON.stringify(r)}`,
        );
      assert.ok(
        count("f") * 2 < Math.min(count("n1"), count("n2")),
        `least_connections moved load off the slow worker: ${JSON.stringify(summary(records))}`,
      );
    } finally {
      await s.close();
    }
  });
});
