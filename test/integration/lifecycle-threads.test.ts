/**
 * `threads: 2`: both worker threads accept connections on the same addresses (reusePort); active
 * counts are global (least-connections and `/status` see the whole process) and return to 0; health
 * is checked once, in the main thread, so a worker sees the same probe rate as with `threads: 1`;
 * outlier ejections requested by a thread apply everywhere; reload and drain reach every thread.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StatusDocument } from "../../src/admin/admin-status.js";
import { adminGet, adminPost } from "../helpers/admin-client.js";
import { Teardown, echoClient, grpcEngine, nameOf, sleep, startUnary, who } from "../helpers/grpc-client.js";
import { ECHO, startGrpcWorkers, type GrpcTestWorker } from "../helpers/grpc-test-worker.js";
import {
  closeSocket,
  connectAndGreet,
  endpointsYaml,
  startFulcrum,
  startWorkers,
  waitFor,
  type StartedFulcrum,
} from "../helpers/harness.js";
import { sampleSum, samples } from "../helpers/prom-text.js";
import type { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";
import { writeFileSync } from "node:fs";

function config(opts: {
  threads: number;
  tcp: readonly SimTcpWorker[];
  grpc: readonly GrpcTestWorker[];
  grpcPolicy?: string;
  health?: string;
}): string {
  return `threads: ${opts.threads}
drain_timeout: 5s
admin: { listen: "127.0.0.1:0" }
listeners:
  - { name: t, protocol: tcp, listen: "127.0.0.1:0", cluster: tcp }
  - { name: g, protocol: grpc, engine: ${grpcEngine()}, listen: "127.0.0.1:0", cluster: gpus }
clusters:
  - name: tcp
    policy: least_connections
    health_check: { type: none }
    endpoints:
${endpointsYaml(opts.tcp)}
  - name: gpus
    policy: ${opts.grpcPolicy ?? "least_connections"}
    health_check: ${opts.health ?? "{ type: none }"}
    endpoints:
${opts.grpc.map((w) => `      - address: "${w.address}"`).join("\n")}
`;
}

async function status(f: StartedFulcrum): Promise<StatusDocument> {
  return (await adminGet(f.fulcrum.adminAddress as string, "/status")).body as StatusDocument;
}

async function metrics(f: StartedFulcrum): Promise<ReturnType<typeof samples>> {
  return samples((await adminGet(f.fulcrum.adminAddress as string, "/metrics")).text);
}

function clusterActive(doc: StatusDocument, cluster: string): number[] {
  return (doc.clusters.find((c) => c.name === cluster)?.endpoints ?? []).map((e) => e.active);
}

function closeWorkers(workers: readonly { close(): Promise<unknown> }[]): Promise<unknown> {
  return Promise.all(workers.map((w) => w.close()));
}

describe("threads", { timeout: 90_000 }, () => {
  it("threads: 2 — both threads accept, counts are global and return to 0", async () => {
    const own = new Teardown();
    try {
      const tcp = own.add(await startWorkers(["a", "b"]), closeWorkers);
      const grpc = own.add(await startGrpcWorkers(["x", "y"]), closeWorkers);
      const f = own.add(await startFulcrum(config({ threads: 2, tcp, grpc })), (x) => x.fulcrum.stop(0));

      // 40 connections from distinct source ports: the kernel hashes them over both threads' sockets.
      const held = await Promise.all(Array.from({ length: 40 }, () => connectAndGreet(f.target("t").port)));
      const m = await metrics(f);
      const byThread = ["0", "1"].map((thread) =>
        sampleSum(m, "fulcrum_downstream_connections_total", { listener: "t", thread }),
      );
      assert.equal(byThread[0]! + byThread[1]!, 40);
      assert.ok(
        byThread.every((n) => n > 0),
        `both threads accepted: ${byThread.join(" / ")}`,
      );
      // least_connections on global counts: 40 connections split 20 / 20 across the two workers
      // whichever thread accepted them (per-thread counts could not guarantee it).
      const doc = await status(f);
      assert.deepEqual(clusterActive(doc, "tcp"), [20, 20]);
      assert.equal(doc.listeners.find((l) => l.name === "t")?.active, 40);
      assert.deepEqual(
        held
          .map((h) => h.worker)
          .reduce<Record<string, number>>((c, w) => ({ ...c, [w]: (c[w] ?? 0) + 1 }), {}),
        { a: 20, b: 20 },
      );

      // gRPC: 8 clients (8 connections, spread over the threads), 20 held calls issued one at a time.
      for (const w of grpc) w.hold();
      const clients = Array.from({ length: 8 }, () => own.add(echoClient(f.target("g")), (c) => c.close()));
      const calls: ReturnType<typeof startUnary>[] = [];
      for (let i = 0; i < 20; i++) {
        calls.push(startUnary(clients[i % clients.length]!, ECHO.unary));
        await waitFor(() => grpc.reduce((n, w) => n + w.heldCount, 0) === i + 1, 5000, `call ${i + 1} held`);
      }
      assert.deepEqual(
        grpc.map((w) => w.heldCount),
        [10, 10],
      );
      const during = await status(f);
      assert.deepEqual(clusterActive(during, "gpus"), [10, 10]);
      assert.equal(during.listeners.find((l) => l.name === "g")?.active, 20);

      for (const w of grpc) w.release();
      const outcomes = await Promise.all(calls.map((c) => c.outcome));
      assert.ok(
        outcomes.every((o) => o.ok),
        JSON.stringify(outcomes.filter((o) => !o.ok)),
      );
      for (const h of held) await closeSocket(h.socket);
      await waitFor(
        async () => {
          const after = await status(f);
          return [...clusterActive(after, "tcp"), ...clusterActive(after, "gpus")].every((n) => n === 0);
        },
        5000,
        "every active count back to 0",
      );
      const done = await status(f);
      assert.ok(done.listeners.every((l) => l.active === 0));
      const after = await metrics(f);
      assert.equal(sampleSum(after, "fulcrum_grpc_streams_total", { listener: "g", grpc_code: "OK" }), 20);
      assert.equal(sampleSum(after, "fulcrum_upstream_requests_total", { cluster: "gpus" }), 20);
    } finally {
      await own.run();
    }
  });

  it("health is probed once, in the main thread: the same probe rate with threads 1 and 2 (±10 % ±1)", async () => {
    const own = new Teardown();
    try {
      const tcp = own.add(await startWorkers(["a"]), closeWorkers);
      const grpc = own.add(await startGrpcWorkers(["x"]), closeWorkers);
      const rates: number[] = [];
      for (const threads of [1, 2]) {
        const health = "{ type: grpc, interval: 100ms, timeout: 500ms }";
        const f = await startFulcrum(config({ threads, tcp, grpc, health }));
        try {
          await sleep(300);
          const before = grpc[0]!.probes;
          await sleep(2000);
          rates.push(grpc[0]!.probes - before);
        } finally {
          await f.fulcrum.stop(0);
        }
      }
      const [one, two] = rates as [number, number];
      assert.ok(one >= 15, `threads 1 probed ${one} times in 2 s`);
      assert.ok(
        Math.abs(two - one) <= one * 0.1 + 1,
        `probes in 2 s: threads 1 → ${one}, threads 2 → ${two}`,
      );
    } finally {
      await own.run();
    }
  });

  it("threads: 2 — a health flip, a drain and a reload reach every thread; stop drains both", async () => {
    const own = new Teardown();
    try {
      const tcp = own.add(await startWorkers(["a", "b"]), closeWorkers);
      const grpc = own.add(await startGrpcWorkers(["x", "y", "z"]), closeWorkers);
      const health =
        "{ type: grpc, interval: 100ms, timeout: 500ms, unhealthy_threshold: 1, healthy_threshold: 1 }";
      const yaml = config({ threads: 2, tcp, grpc: grpc.slice(0, 2), grpcPolicy: "round_robin", health });
      const f = own.add(await startFulcrum(yaml), (x) => x.fulcrum.stop(0));
      const clients = Array.from({ length: 4 }, () => own.add(echoClient(f.target("g")), (c) => c.close()));
      const names = async (n: number): Promise<Set<string>> => {
        const seen = new Set<string>();
        for (let i = 0; i < n; i++) {
          seen.add(nameOf(await who(clients[i % clients.length]!)));
        }
        return seen;
      };
      assert.deepEqual([...(await names(40))].sort(), ["x", "y"]);

      // Health (main thread) → every thread stops using x.
      grpc[0]!.healthStatus = "NOT_SERVING";
      await waitFor(
        async () => (await status(f)).clusters[1]?.endpoints[0]?.health === "unhealthy",
        3000,
        "x unhealthy",
      );
      await sleep(50);
      assert.deepEqual([...(await names(40))], ["y"]);
      grpc[0]!.healthStatus = "SERVING";
      await waitFor(
        async () => (await status(f)).clusters[1]?.endpoints[0]?.health === "healthy",
        3000,
        "x healthy",
      );

      // Drain through the admin API → every thread stops using y.
      const admin = f.fulcrum.adminAddress as string;
      await adminPost(admin, "/endpoints/drain", { cluster: "gpus", address: grpc[1]!.address });
      await sleep(50);
      assert.deepEqual([...(await names(40))], ["x"]);

      // Reload: replace y by z → every thread sends to x and z; y's drain is gone with it.
      writeFileSync(
        f.configFile,
        config({ threads: 2, tcp, grpc: [grpc[0]!, grpc[2]!], grpcPolicy: "round_robin", health }),
      );
      const reloaded = await f.fulcrum.reloadFile();
      assert.deepEqual(reloaded, { ok: true });
      await sleep(50);
      assert.deepEqual([...(await names(40))].sort(), ["x", "z"]);
      const doc = await status(f);
      assert.deepEqual(
        doc.clusters[1]?.endpoints.map((e) => e.address),
        [grpc[0]!.address, grpc[2]!.address],
      );

      // Stop under load: held calls finish, both threads exit.
      for (const w of grpc) w.hold();
      const calls = Array.from({ length: 8 }, (_, i) => startUnary(clients[i % clients.length]!, ECHO.unary));
      await waitFor(() => grpc.reduce((n, w) => n + w.heldCount, 0) === 8, 5000, "8 calls held");
      const stopped = f.fulcrum.stop(5000);
      await sleep(200);
      for (const w of grpc) w.release();
      const outcomes = await Promise.all(calls.map((c) => c.outcome));
      assert.ok(
        outcomes.every((o) => o.ok),
        JSON.stringify(outcomes.filter((o) => !o.ok)),
      );
      await stopped;
    } finally {
      await own.run();
    }
  });

  it("threads: 2 — an outlier seen by a thread is ejected for every thread", async () => {
    const own = new Teardown();
    try {
      const tcp = own.add(await startWorkers(["a"]), closeWorkers);
      const grpc = own.add(await startGrpcWorkers(["x"]), closeWorkers);
      const dead = own.add(await startGrpcWorkers(["dead"]), closeWorkers);
      await dead[0]!.close(); // a closed port: every connect fails
      const yaml = config({ threads: 2, tcp, grpc: [...grpc, ...dead], grpcPolicy: "round_robin" }).replace(
        "    policy: round_robin\n",
        "    policy: round_robin\n    outlier_detection: { consecutive_failures: 2, base_ejection_time: 30s }\n",
      );
      const f = own.add(await startFulcrum(yaml), (x) => x.fulcrum.stop(0));
      const clients = Array.from({ length: 4 }, () => own.add(echoClient(f.target("g")), (c) => c.close()));
      for (let i = 0; i < 40; i++) assert.equal(nameOf(await who(clients[i % clients.length]!)), "x");
      await waitFor(
        async () => (await status(f)).clusters[1]?.endpoints[1]?.health === "ejected",
        3000,
        "the dead endpoint ejected",
      );
      const m = await metrics(f);
      assert.equal(
        sampleSum(m, "fulcrum_outlier_ejections_total", { cluster: "gpus", endpoint: dead[0]!.address }),
        1,
      );
    } finally {
      await own.run();
    }
  });

  it("threads: 2 — caps hold across threads, and calls queued in either thread get the slots that free", async () => {
    const own = new Teardown();
    try {
      const tcp = own.add(await startWorkers(["a"]), closeWorkers);
      const grpc = own.add(await startGrpcWorkers(["x"]), closeWorkers);
      const yaml = config({ threads: 2, tcp, grpc }).replace(
        "  - name: gpus\n",
        "  - name: gpus\n    max_active_per_endpoint: 2\n    queue: { max_size: 50, timeout: 20s }\n",
      );
      const f = own.add(await startFulcrum(yaml), (x) => x.fulcrum.stop(0));
      const x = grpc[0] as GrpcTestWorker;
      x.hold();
      // 8 connections, spread over both threads by the kernel, one call each.
      const clients = Array.from({ length: 8 }, () => own.add(echoClient(f.target("g")), (c) => c.close()));
      const calls = clients.map((c) => startUnary(c, ECHO.unary, undefined, { deadlineMs: 30_000 }));
      // A slot is taken at the pick, before the call reaches the worker over a new connection.
      await waitFor(
        async () =>
          x.heldCount === 2 && (await status(f)).clusters.find((c) => c.name === "gpus")?.queue.depth === 6,
        10_000,
        "two calls at the worker, six queued",
      );
      assert.deepEqual(clusterActive(await status(f), "gpus"), [2]);
      // One at a time: each freed slot goes to a queued call of whichever thread holds one.
      x.release();
      const outcomes = await Promise.all(calls.map((c) => c.outcome));
      assert.ok(
        outcomes.every((o) => o.ok),
        JSON.stringify(outcomes.filter((o) => !o.ok)),
      );
      assert.equal(x.calls, 8);
      assert.ok(x.maxActive <= 2, `${x.maxActive} calls at the worker at once`);
    } finally {
      await own.run();
    }
  });
});
