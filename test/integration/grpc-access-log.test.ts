/**
 * Access logs of gRPC listeners (`listeners[].access_log`), on the engine under test: exactly one line
 * per stream when it ends, with the method, status (Fulcrum's own answers included), endpoint, bytes,
 * retries and route reason; none when disabled or at sample 0; about half at sample 0.5; a reload
 * changes `enabled` and `sample` on the listener it keeps.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import {
  Teardown,
  callMany,
  echoClient,
  grpcConfig,
  startUnary,
  who,
  type GrpcClusterYaml,
} from "../helpers/grpc-client.js";
import { ECHO, startGrpcWorkers, type GrpcTestWorker } from "../helpers/grpc-test-worker.js";
import { metricSum, startFulcrum, waitFor, type StartedFulcrum } from "../helpers/harness.js";

const TIMEOUT = { timeout: 60_000 };

function closeWorkers(workers: readonly { close(): Promise<void> }[]): Promise<unknown> {
  return Promise.all(workers.map((w) => w.close()));
}

function config(cluster: GrpcClusterYaml, accessLog: string): string {
  return grpcConfig(cluster, { fields: [`access_log: ${accessLog}`] });
}

/** Waits until `n` streams ended (their metric is counted just before their access line). */
async function streamsEnded(f: StartedFulcrum, n: number): Promise<void> {
  await waitFor(
    async () => (await metricSum(f.registry, "fulcrum_grpc_streams_total")) >= n,
    5000,
    `${n} streams`,
  );
}

/** The only access line, once there is one; fails on a second. */
async function onlyLine(f: StartedFulcrum): Promise<Record<string, unknown>> {
  await waitFor(() => f.accessLines.length > 0, 5000, "an access line");
  assert.equal(f.accessLines.length, 1, JSON.stringify(f.accessLines));
  return f.accessLines[0] as Record<string, unknown>;
}

describe("gRPC access log", TIMEOUT, () => {
  it("an OK unary call: one line with every field", async () => {
    const own = new Teardown();
    try {
      const [a] = own.add(await startGrpcWorkers(["a"]), closeWorkers) as [GrpcTestWorker];
      const f = own.add(await startFulcrum(config({ endpoints: [a.address] }, "{ enabled: true }")), (x) =>
        x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const o = await who(client);
      assert.ok(o.ok);
      const line = await onlyLine(f);
      const { time, pid, duration_ms: durationMs, ...rest } = line;
      assert.deepEqual(rest, {
        level: "info",
        msg: "access",
        listener: "g",
        protocol: "grpc",
        client: "127.0.0.1",
        method: ECHO.unary,
        cluster: "w",
        endpoint: a.address,
        grpc_status: 0,
        grpc_code: "OK",
        bytes_in: 5, // one empty message: its 5-byte frame header
        bytes_out: 6, // "a" in one message
        retries: 0,
        route: "policy",
      });
      assert.equal(pid, process.pid);
      assert.ok(typeof time === "string" && !Number.isNaN(Date.parse(time)), String(time));
      assert.ok(typeof durationMs === "number" && durationMs >= 0 && durationMs < 5000, String(durationMs));
    } finally {
      await own.run();
    }
  });

  it("a call the worker fails: its status, the endpoint", async () => {
    const own = new Teardown();
    try {
      const [a] = own.add(await startGrpcWorkers(["a"]), closeWorkers) as [GrpcTestWorker];
      a.failWith = { code: grpc.status.NOT_FOUND, details: "no such thing" };
      const f = own.add(await startFulcrum(config({ endpoints: [a.address] }, "{ enabled: true }")), (x) =>
        x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const o = await who(client);
      assert.ok(!o.ok && o.code === grpc.status.NOT_FOUND);
      const line = await onlyLine(f);
      assert.deepEqual(
        [line.grpc_status, line.grpc_code, line.endpoint, line.retries],
        [5, "NOT_FOUND", a.address, 0],
      );
    } finally {
      await own.run();
    }
  });

  it("no endpoint: Fulcrum's own UNAVAILABLE, no endpoint and no route in the line", async () => {
    const own = new Teardown();
    try {
      const [a] = own.add(await startGrpcWorkers(["a"]), closeWorkers) as [GrpcTestWorker];
      const f = own.add(await startFulcrum(config({ endpoints: [a.address] }, "{ enabled: true }")), (x) =>
        x.fulcrum.stop(0),
      );
      f.fulcrum.cluster("w").endpoints.setHealth(a.address, "unhealthy");
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const o = await who(client);
      assert.ok(!o.ok && o.code === grpc.status.UNAVAILABLE);
      const line = await onlyLine(f);
      assert.deepEqual([line.grpc_status, line.grpc_code, line.bytes_out], [14, "UNAVAILABLE", 0]);
      assert.ok(!("endpoint" in line) && !("route" in line), JSON.stringify(line));
    } finally {
      await own.run();
    }
  });

  it("a retry on another endpoint is counted; a client-cancelled call says CANCELLED", async () => {
    const own = new Teardown();
    try {
      const [a] = own.add(await startGrpcWorkers(["a"]), closeWorkers) as [GrpcTestWorker];
      a.hold();
      const dead = "127.0.0.1:1"; // refuses connections
      const f = own.add(
        await startFulcrum(config({ endpoints: [dead, a.address] }, "{ enabled: true, sample: 1.0 }")),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      const { call, outcome } = startUnary(client, ECHO.unary);
      await waitFor(() => a.active === 1, 5000, "the call at the worker");
      call.cancel();
      const o = await outcome;
      assert.ok(!o.ok && o.code === grpc.status.CANCELLED);
      const line = await onlyLine(f);
      assert.deepEqual(
        [line.grpc_status, line.grpc_code, line.endpoint, line.retries],
        [1, "CANCELLED", a.address, 1],
      );
      a.release();
    } finally {
      await own.run();
    }
  });

  it("enabled: false and sample 0 write nothing; sample 0.5 logs about half", async () => {
    const own = new Teardown();
    try {
      const [a] = own.add(await startGrpcWorkers(["a"]), closeWorkers) as [GrpcTestWorker];
      for (const accessLog of ["{ enabled: false }", "{ enabled: true, sample: 0 }"]) {
        const f = own.add(await startFulcrum(config({ endpoints: [a.address] }, accessLog)), (x) =>
          x.fulcrum.stop(0),
        );
        const client = own.add(echoClient(f.target("g")), (c) => c.close());
        await callMany(client, 20, 4);
        await streamsEnded(f, 20);
        assert.equal(f.accessLines.length, 0, accessLog);
      }
      const f = own.add(
        await startFulcrum(config({ endpoints: [a.address] }, "{ enabled: true, sample: 0.5 }")),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      await callMany(client, 200, 8);
      await streamsEnded(f, 200);
      const n = f.accessLines.length;
      assert.ok(n >= 70 && n <= 130, `${n} of 200 logged`);
    } finally {
      await own.run();
    }
  });

  it("a reload turns the access log on and changes its sample on the same listener", async () => {
    const own = new Teardown();
    try {
      const [a] = own.add(await startGrpcWorkers(["a"]), closeWorkers) as [GrpcTestWorker];
      const cluster = { endpoints: [a.address] };
      const f = own.add(await startFulcrum(config(cluster, "{ enabled: false }")), (x) => x.fulcrum.stop(0));
      const address = f.fulcrum.addressOf("g");
      const client = own.add(echoClient(f.target("g")), (c) => c.close());
      await callMany(client, 10, 2);
      await streamsEnded(f, 10);
      assert.equal(f.accessLines.length, 0);

      writeFileSync(f.configFile, config(cluster, "{ enabled: true }"));
      await f.fulcrum.reloadFile();
      assert.equal(f.fulcrum.addressOf("g"), address, "the listener was kept");
      await callMany(client, 10, 2);
      await streamsEnded(f, 20);
      assert.equal(f.accessLines.length, 10);

      writeFileSync(f.configFile, config(cluster, "{ enabled: true, sample: 0 }"));
      await f.fulcrum.reloadFile();
      await callMany(client, 10, 2);
      await streamsEnded(f, 30);
      assert.equal(f.accessLines.length, 10);
    } finally {
      await own.run();
    }
  });
});
