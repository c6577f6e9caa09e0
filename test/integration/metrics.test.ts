/**
 * /metrics after a known TCP and gRPC load: every metric of docs/architecture.md's table is registered, and the
 * ones whose feature exists carry the right values (streams by grpc_code, bytes, active back to 0).
 */
import { grpcEngine } from "../helpers/grpc-client.js";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { SimGrpcWorker, simWorkerClient } from "../../src/sim/sim-grpc-worker.js";
import type { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";
import { adminGet } from "../helpers/admin-client.js";
import { CONTRACT_METRICS } from "../helpers/contract-metrics.js";
import {
  closeAll,
  endpointsYaml,
  startFulcrum,
  startWorkers,
  waitFor,
  type StartedFulcrum,
} from "../helpers/harness.js";
import { sampleSum, samples } from "../helpers/prom-text.js";

describe("metrics", { timeout: 60_000 }, () => {
  let tcpWorkers: SimTcpWorker[] = [];
  let grpcWorker: SimGrpcWorker | undefined;
  let f: StartedFulcrum | undefined;

  before(async () => {
    tcpWorkers = await startWorkers(["a", "b"]);
    grpcWorker = new SimGrpcWorker({ name: "gpu" });
    const g = await grpcWorker.listen();
    f = await startFulcrum(
      `
admin: { listen: "127.0.0.1:0" }
listeners:
  - { name: tcp, protocol: tcp, listen: "127.0.0.1:0", cluster: workers }
  - { name: grpc, protocol: grpc, engine: ${grpcEngine()}, listen: "127.0.0.1:0", cluster: gpus }
clusters:
  - name: workers
    policy: round_robin
    health_check: { type: none }
    endpoints:
${endpointsYaml(tcpWorkers)}
  - name: gpus
    health_check: { type: none }
    endpoints: [{ address: "${g.address}" }]
`,
      { processMetrics: true },
    );
  });
  after(async () => {
    await closeAll(f, tcpWorkers);
    await grpcWorker?.close();
  });

  it("has every metric of docs/architecture.md and the right values after a known load", async () => {
    const started = f as StartedFulcrum;
    // TCP: 4 connections, each sends 1000 bytes and reads the greeting ("a\n"/"b\n") plus the echo.
    for (let i = 0; i < 4; i++) {
      const s = connect({ host: "127.0.0.1", port: started.target("tcp").port });
      let got = 0;
      await new Promise<void>((resolve) => {
        s.on("data", (d: Buffer) => {
          got += d.length;
          if (got === 2 + 1000) s.end();
        });
        s.once("close", () => resolve());
        s.write(Buffer.alloc(1000, 1));
      });
    }
    // gRPC: 10 OK calls and 3 failing with INVALID_ARGUMENT, on one client connection.
    const client = simWorkerClient(started.fulcrum.addressOf("grpc"));
    const call = (): Promise<grpc.ServiceError | null> =>
      new Promise((resolve) => client.Echo(Buffer.alloc(100, 2), (err) => resolve(err)));
    for (let i = 0; i < 10; i++) assert.equal(await call(), null);
    grpcWorker?.failWith(grpc.status.INVALID_ARGUMENT, "bad input");
    for (let i = 0; i < 3; i++) assert.equal((await call())?.code, grpc.status.INVALID_ARGUMENT);
    grpcWorker?.failWith(undefined);
    client.close();
    const set = started.fulcrum.cluster("workers").endpoints;
    await waitFor(() => set.endpoints.every((e) => set.activeOf(e) === 0), 2000, "tcp connections to close");

    const res = await adminGet(started.fulcrum.adminAddress ?? "", "/metrics");
    assert.equal(res.status, 200);
    const text = res.text;
    for (const name of CONTRACT_METRICS)
      assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), `${name} missing`);
    assert.match(text, /^process_cpu_seconds_total /m, "process metrics");
    const all = samples(text);
    assert.equal(
      sampleSum(all, "fulcrum_grpc_streams_total", { listener: "grpc", cluster: "gpus", grpc_code: "OK" }),
      10,
    );
    assert.equal(
      sampleSum(all, "fulcrum_grpc_streams_total", {
        listener: "grpc",
        cluster: "gpus",
        grpc_code: "INVALID_ARGUMENT",
      }),
      3,
    );
    assert.equal(sampleSum(all, "fulcrum_stream_duration_seconds_count", { listener: "grpc" }), 13);
    assert.equal(sampleSum(all, "fulcrum_bytes_total", { listener: "tcp", direction: "in" }), 4 * 1000);
    assert.equal(sampleSum(all, "fulcrum_bytes_total", { listener: "tcp", direction: "out" }), 4 * 1002);
    // gRPC bytes are DATA payloads: 13 requests of 5 + 100 bytes; 10 echoed responses.
    assert.equal(sampleSum(all, "fulcrum_bytes_total", { listener: "grpc", direction: "in" }), 13 * 105);
    assert.equal(sampleSum(all, "fulcrum_bytes_total", { listener: "grpc", direction: "out" }), 10 * 105);
    assert.equal(sampleSum(all, "fulcrum_downstream_connections_total", { listener: "tcp" }), 4);
    assert.equal(sampleSum(all, "fulcrum_downstream_connections_active", { listener: "tcp" }), 0);
    assert.equal(sampleSum(all, "fulcrum_upstream_requests_total", { cluster: "workers" }), 4);
    assert.equal(sampleSum(all, "fulcrum_upstream_requests_total", { cluster: "gpus" }), 13);
    assert.equal(sampleSum(all, "fulcrum_upstream_active", {}), 0);
    assert.equal(sampleSum(all, "fulcrum_endpoint_healthy", { cluster: "workers" }), 2);
    assert.equal(
      sampleSum(all, "fulcrum_pick_duration_seconds_count", { cluster: "gpus", policy: "least_connections" }),
      13,
    );
  });
});
