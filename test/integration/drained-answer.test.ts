/**
 * When every endpoint of a cluster is drained through the admin API, the answer says so: gRPC gets
 * a trailers-only UNAVAILABLE whose grpc-message names the drain (not "no healthy endpoint"), TCP
 * counts the refusal under reason `drained` and its rate-limited log line says drained. A mix of
 * drained and unhealthy endpoints says how many of each.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { adminPost } from "../helpers/admin-client.js";
import { Teardown, grpcConfig } from "../helpers/grpc-client.js";
import { closeSession, rawConnect, rawGrpcRequest } from "../helpers/grpc-raw.js";
import { ECHO, startGrpcWorkers, type GrpcTestWorker } from "../helpers/grpc-test-worker.js";
import {
  closeAll,
  endpointsYaml,
  metricValue,
  startFulcrum,
  startWorkers,
  waitFor,
  whoAnswers,
  type StartedFulcrum,
} from "../helpers/harness.js";
import { connect } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { tritonService } from "../../src/protos/inference-protos.js";
import { SimTritonWorker } from "../../src/sim/sim-triton-worker.js";
import { call, clientOf } from "../helpers/inference-client.js";

const ADMIN = 'admin: { listen: "127.0.0.1:0" }\n';
/** A port nothing listens on: with the fast health check below it turns unhealthy at once. */
const DEAD = "127.0.0.1:1";
const FAST_HEALTH = (type: string): string =>
  `{ type: ${type}, interval: 100ms, timeout: 100ms, healthy_threshold: 1, unhealthy_threshold: 1 }`;

async function drain(f: StartedFulcrum, cluster: string, address: string): Promise<void> {
  const r = await adminPost(f.fulcrum.adminAddress ?? "", "/endpoints/drain", { cluster, address });
  assert.equal(r.status, 200, r.text);
}

async function untilUnhealthy(f: StartedFulcrum, cluster: string, address: string): Promise<void> {
  await waitFor(
    async () =>
      (await metricValue(f.registry, "fulcrum_endpoint_healthy", { cluster, endpoint: address })) === 0,
    5000,
    `${address} unhealthy`,
  );
}

describe("the answer when every endpoint is drained", { timeout: 60_000 }, () => {
  it("gRPC: trailers-only UNAVAILABLE saying drained; a mix counts drained and unhealthy", async () => {
    const own = new Teardown();
    try {
      const workers = own.add(await startGrpcWorkers(["a", "b"]), (ws: GrpcTestWorker[]) =>
        Promise.all(ws.map((w) => w.close())),
      );
      const [a, b] = workers as [GrpcTestWorker, GrpcTestWorker];
      const f = own.add(
        await startFulcrum(
          ADMIN + grpcConfig({ healthCheck: FAST_HEALTH("grpc"), endpoints: [a.address, b.address, DEAD] }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const session = own.add(await rawConnect(f.target("g")), closeSession);
      const ask = () => rawGrpcRequest(session, ECHO.unary, [Buffer.from("x")], { timeoutMs: 5000 });

      await untilUnhealthy(f, "w", DEAD);
      await drain(f, "w", a.address);
      await drain(f, "w", b.address);
      const mixed = await ask();
      assert.equal(mixed.trailersOnly, true);
      assert.equal(mixed.grpcStatus, "14");
      assert.equal(mixed.grpcMessage, 'no healthy endpoint in cluster "w" (2 drained, 1 unhealthy)');

      await drain(f, "w", DEAD);
      const drained = await ask();
      assert.equal(drained.trailersOnly, true);
      assert.equal(drained.grpcStatus, "14");
      assert.equal(drained.grpcMessage, 'every endpoint of cluster "w" is drained');
    } finally {
      await own.run();
    }
  });

  it("a Triton sequence that cannot be placed says every endpoint is drained", async () => {
    const own = new Teardown();
    try {
      const w = own.add(new SimTritonWorker({ name: "a", baseLatencyMs: 1 }), (x) => x.close());
      await w.listen("127.0.0.1", 0);
      const address = `127.0.0.1:${w.port}`;
      const f = own.add(
        await startFulcrum(
          ADMIN + grpcConfig({ name: "triton", affinity: "{ key: triton_sequence }", endpoints: [address] }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(clientOf(tritonService(), f), (c) => c.close());
      await drain(f, "triton", address);
      const r = await call(client, "ModelInfer", {
        model_name: "simple",
        id: "7",
        parameters: { sequence_id: { int64_param: "7" }, sequence_start: { bool_param: true } },
      });
      assert.equal(r.ok, false);
      assert.equal(r.ok ? undefined : r.code, grpc.status.UNAVAILABLE);
      assert.equal(
        r.ok ? undefined : r.details,
        'every endpoint of cluster "triton" is drained for sequence 7',
      );
    } finally {
      await own.run();
    }
  });

  it("TCP: refused with reason drained, the log line says drained; a mix stays no_healthy_endpoint", async () => {
    const workers = await startWorkers(["a", "b"]);
    let f: StartedFulcrum | undefined;
    try {
      f = await startFulcrum(
        `${ADMIN}listeners:
  - { name: t, protocol: tcp, listen: "127.0.0.1:0", cluster: c }
clusters:
  - name: c
    health_check: ${FAST_HEALTH("tcp")}
    endpoints:
${endpointsYaml(workers)}
      - address: ${DEAD}
`,
      );
      const started = f;
      const { port } = f.target("t");
      assert.ok(["a", "b"].includes(await whoAnswers(port)));
      const refused = (reason: string): Promise<number> =>
        metricValue(started.registry, "fulcrum_downstream_connections_refused_total", {
          listener: "t",
          reason,
        });
      /** Connects and resolves once Fulcrum closed the connection without serving it. */
      const refusedConnection = (): Promise<void> =>
        new Promise((resolve, reject) => {
          const s = connect({ host: "127.0.0.1", port });
          s.on("data", () => reject(new Error("served")));
          s.on("error", () => {});
          s.once("close", () => resolve());
        });

      await untilUnhealthy(f, "c", DEAD);
      for (const w of workers) await drain(f, "c", `127.0.0.1:${w.port}`);
      await refusedConnection();
      assert.equal(await refused("no_healthy_endpoint"), 1);
      assert.equal(await refused("drained"), 0);
      const mixLine = f.lines.find((l) => (l as { reason?: string }).reason === "no_healthy_endpoint") as
        { detail?: string } | undefined;
      assert.equal(mixLine?.detail, 'no healthy endpoint in cluster "c" (2 drained, 1 unhealthy)');

      await drain(f, "c", DEAD);
      await refusedConnection();
      assert.equal(await refused("drained"), 1);
      assert.equal(await refused("no_healthy_endpoint"), 1, "existing reasons keep their meaning");
      const line = f.lines.find((l) => (l as { reason?: string }).reason === "drained") as
        { msg?: string; cluster?: string; detail?: string } | undefined;
      assert.equal(line?.msg, "connection refused");
      assert.equal(line?.cluster, "c");
      assert.equal(line?.detail, 'every endpoint of cluster "c" is drained');
    } finally {
      await closeAll(f, workers);
    }
  });
});
