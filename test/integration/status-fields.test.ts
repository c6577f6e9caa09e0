/**
 * The fields `/status` gained for operators (only added, never reshaped) and their metrics: with
 * `threads: 2`, per-endpoint latency and gRPC status counts merged over the worker threads exactly,
 * TCP connection durations, endpoint names in `/status` and `fulcrum_endpoint_info`, version and
 * uptime; an endpoint ejected for UNAVAILABLE answers shows them by status with the ejection's
 * reason; per-model readiness in `/status` and `fulcrum_model_ready`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import type { EndpointStatus, StatusDocument } from "../../src/admin/admin-status.js";
import { SimTritonWorker, tritonService } from "../../src/sim/sim-triton-worker.js";
import { adminGet } from "../helpers/admin-client.js";
import { Teardown, countNames, echoClient, grpcConfig, grpcEngine, who } from "../helpers/grpc-client.js";
import { startGrpcWorkers } from "../helpers/grpc-test-worker.js";
import {
  closeSocket,
  connectAndGreet,
  startFulcrum,
  startWorkers,
  waitFor,
  type StartedFulcrum,
} from "../helpers/harness.js";
import { clientOf, inferWho } from "../helpers/inference-client.js";
import { sampleSum, samples } from "../helpers/prom-text.js";

async function status(f: StartedFulcrum): Promise<StatusDocument> {
  const reply = await adminGet(f.fulcrum.adminAddress ?? "", "/status");
  assert.equal(reply.status, 200);
  return reply.body as StatusDocument;
}

function endpointOf(doc: StatusDocument, cluster: string, address: string): EndpointStatus {
  const e = doc.clusters.find((c) => c.name === cluster)?.endpoints.find((x) => x.address === address);
  assert.ok(e, `${cluster} ${address} in /status`);
  return e;
}

async function metrics(f: StartedFulcrum): Promise<ReturnType<typeof samples>> {
  return samples(await f.fulcrum.metricsText());
}

describe("status fields", { timeout: 90_000 }, () => {
  it("threads: 2 — latency and statuses merged over both threads; names, TCP durations, version, uptime", async () => {
    const own = new Teardown();
    try {
      const [ok, failing] = own.add(await startGrpcWorkers(["ok", "failing"]), (ws) =>
        Promise.all(ws.map((w) => w.close())),
      );
      const tcp = own.add(await startWorkers(["t"]), (ws) => Promise.all(ws.map((w) => w.close())));
      failing!.failWith = { code: grpc.status.UNIMPLEMENTED, details: "not here" };
      const tcpAddress = `127.0.0.1:${tcp[0]!.port}`;
      const f = own.add(
        await startFulcrum(`
threads: 2
admin: { listen: "127.0.0.1:0" }
listeners:
  - { name: g, protocol: grpc, engine: ${grpcEngine()}, listen: "127.0.0.1:0", cluster: gpus }
  - { name: t, protocol: tcp, listen: "127.0.0.1:0", cluster: plain }
clusters:
  - name: gpus
    policy: round_robin
    health_check: { type: none }
    endpoints:
      - { address: "${ok!.address}", name: gpu-ok }
      - { address: "${failing!.address}", name: gpu-failing }
  - name: plain
    health_check: { type: none }
    endpoints:
      - address: "${tcpAddress}"
`),
        (x) => x.fulcrum.stop(0),
      );
      const before = await status(f);
      const fresh = endpointOf(before, "gpus", ok!.address);
      assert.deepEqual(fresh.latency_ms, { p50: null, p99: null, calls: 0, window_seconds: 60 });
      assert.deepEqual(fresh.statuses, {});
      assert.equal(fresh.last_health_change, null);
      assert.deepEqual(fresh.models, []);
      assert.equal(fresh.history.length, 30);
      assert.ok(fresh.history.every((b) => b.calls === 0));

      // 16 clients, 16 connections: the kernel spreads them over both threads' sockets (all on one
      // thread: a chance of 2 in 65536).
      const clients = Array.from({ length: 16 }, () => own.add(echoClient(f.target("g")), (c) => c.close()));
      const outcomes = [];
      for (let round = 0; round < 2; round++)
        outcomes.push(...(await Promise.all(clients.map((c) => who(c)))));
      assert.deepEqual(countNames(outcomes), { ok: 16, "!UNIMPLEMENTED": 16 });
      const m = await metrics(f);
      const byThread = ["0", "1"].map((thread) =>
        sampleSum(m, "fulcrum_downstream_connections_total", { listener: "g", thread }),
      );
      assert.ok(
        byThread.every((n) => n > 0),
        `both threads served: ${byThread.join(" / ")}`,
      );
      for (let i = 0; i < 3; i++) await closeSocket((await connectAndGreet(f.target("t").port)).socket);
      // A connection counts once both its sockets closed, a moment after the client's side.
      await waitFor(
        async () => endpointOf(await status(f), "plain", tcpAddress).latency_ms.calls === 3,
        5000,
        "3 TCP connections counted",
      );

      const doc = await status(f);
      assert.equal(typeof doc.version, "string");
      assert.match(doc.version, /^\d+\.\d+\.\d+/);
      assert.ok(Number.isInteger(doc.uptime_seconds) && doc.uptime_seconds >= 0);
      assert.equal(doc.history_bucket_seconds, 10);
      const a = endpointOf(doc, "gpus", ok!.address);
      const b = endpointOf(doc, "gpus", failing!.address);
      assert.deepEqual([a.name, b.name], ["gpu-ok", "gpu-failing"]);
      assert.deepEqual(a.statuses, {});
      assert.deepEqual(b.statuses, { UNIMPLEMENTED: 16 });
      assert.equal(b.failures, 0, "failures keep their meaning: connect failures and resets");
      for (const e of [a, b]) {
        assert.equal(e.latency_ms.calls, 16);
        assert.ok(
          e.latency_ms.p50 !== null && e.latency_ms.p99 !== null && e.latency_ms.p99 >= e.latency_ms.p50,
        );
        assert.equal(
          e.history.reduce((n, h) => n + h.calls, 0),
          16,
        );
      }
      assert.equal(
        b.history.reduce((n, h) => n + h.errors, 0),
        16,
      );
      const t = endpointOf(doc, "plain", tcpAddress);
      assert.equal(t.name, null);
      assert.equal(t.latency_ms.calls, 3);
      assert.deepEqual(t.statuses, {});

      const after = await metrics(f);
      const info = after.filter((s) => s.name === "fulcrum_endpoint_info");
      assert.deepEqual(
        info.map((s) => [s.labels, s.value]),
        [
          [{ cluster: "gpus", endpoint: ok!.address, name: "gpu-ok" }, 1],
          [{ cluster: "gpus", endpoint: failing!.address, name: "gpu-failing" }, 1],
        ],
      );
      assert.equal(sampleSum(after, "fulcrum_upstream_requests_total", { endpoint: ok!.address }), 16);
    } finally {
      await own.run();
    }
  });

  it("an endpoint ejected for UNAVAILABLE answers shows them by status and the ejection's reason", async () => {
    const own = new Teardown();
    try {
      const [a, b] = own.add(await startGrpcWorkers(["a", "b"]), (ws) =>
        Promise.all(ws.map((w) => w.close())),
      );
      b!.failWith = { code: grpc.status.UNAVAILABLE, details: "overloaded" };
      const f = own.add(
        await startFulcrum(
          'admin: { listen: "127.0.0.1:0" }\n' +
            grpcConfig({
              endpoints: [a!.address, b!.address],
              outlier: "{ consecutive_failures: 3, base_ejection_time: 30s, max_ejection_percent: 50 }",
            }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target()), (c) => c.close());
      const outcomes = [];
      for (let i = 0; i < 10; i++) outcomes.push(await who(client));
      // Round robin until the third UNAVAILABLE ejects b; then everything goes to a.
      assert.deepEqual(countNames(outcomes), { a: 7, "!UNAVAILABLE": 3 });
      const e = endpointOf(await status(f), "w", b!.address);
      assert.equal(e.health, "ejected");
      assert.deepEqual(e.statuses, { UNAVAILABLE: 3 });
      assert.equal(e.last_health_change?.to, "ejected");
      assert.equal(e.last_health_change?.reason, "3 consecutive failures (for 30s)");
      assert.ok(Math.abs(Date.parse(e.last_health_change?.at ?? "") - Date.now()) < 10_000);
    } finally {
      await own.run();
    }
  });

  it("per-model readiness in /status and fulcrum_model_ready", async () => {
    const own = new Teardown();
    try {
      const models = ["simple", "other"];
      const workers = [
        new SimTritonWorker({ name: "a", models }),
        new SimTritonWorker({ name: "b", models }),
      ];
      for (const w of workers) own.add(w, (x) => x.close());
      const addresses = await Promise.all(workers.map(async (w) => (await w.listen("127.0.0.1", 0)).address));
      const f = own.add(
        await startFulcrum(
          'admin: { listen: "127.0.0.1:0" }\n' +
            grpcConfig({
              endpoints: addresses,
              healthCheck:
                "{ type: triton, interval: 100ms, timeout: 500ms, healthy_threshold: 1, unhealthy_threshold: 1 }",
              extra: ['models: [{ name: simple }, { name: other, version: "1" }]'],
            }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const [addrA, addrB] = addresses as [string, string];
      const readyAt = (doc: StatusDocument, address: string) => endpointOf(doc, "w", address).models;
      assert.deepEqual(readyAt(await status(f), addrB), [
        { model: "simple", version: "", ready: true },
        { model: "other", version: "1", ready: true },
      ]);
      workers[1]!.setModelReady("other", false);
      await waitFor(
        async () => readyAt(await status(f), addrB)[1]?.ready === false,
        3000,
        "other not ready on b in /status",
      );
      const doc = await status(f);
      assert.deepEqual(readyAt(doc, addrB), [
        { model: "simple", version: "", ready: true },
        { model: "other", version: "1", ready: false },
      ]);
      assert.ok(readyAt(doc, addrA).every((m) => m.ready));
      assert.equal(endpointOf(doc, "w", addrB).health, "healthy");
      const m = (await metrics(f)).filter((s) => s.name === "fulcrum_model_ready");
      const value = (endpoint: string, model: string, version: string): number | undefined =>
        m.find(
          (s) =>
            s.labels.cluster === "w" &&
            s.labels.endpoint === endpoint &&
            s.labels.model === model &&
            s.labels.version === version,
        )?.value;
      assert.equal(m.length, 4, "one series per endpoint and configured model");
      assert.deepEqual(
        [
          value(addrA, "simple", ""),
          value(addrA, "other", "1"),
          value(addrB, "simple", ""),
          value(addrB, "other", "1"),
        ],
        [1, 1, 1, 0],
      );
      // Traffic still flows to both for the model that is ready everywhere.
      const client = own.add(clientOf(tritonService(), f), (c) => c.close());
      const names = new Set<string>();
      for (let i = 0; i < 4; i++) names.add(await inferWho(client));
      assert.deepEqual([...names].sort(), ["a", "b"]);
    } finally {
      await own.run();
    }
  });
});
