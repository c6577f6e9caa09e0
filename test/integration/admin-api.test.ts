/**
 * The admin API of docs/architecture.md over real HTTP: probes, /status, drain / undrain / weight with their
 * effect on real TCP and gRPC traffic, the bearer token, and the error statuses.
 */
import { grpcEngine } from "../helpers/grpc-client.js";
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { SimGrpcWorker, simWorkerClient } from "../../src/sim/sim-grpc-worker.js";
import type { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";
import { adminGet, adminPost } from "../helpers/admin-client.js";
import {
  closeAll,
  closeSocket,
  connectAndGreet,
  endpointsYaml,
  startFulcrum,
  startWorkers,
  whoAnswers,
  type StartedFulcrum,
} from "../helpers/harness.js";

const TOKEN = "s3cret-token";

describe("admin api", { timeout: 60_000 }, () => {
  let workers: SimTcpWorker[] = [];
  let grpcWorkers: SimGrpcWorker[] = [];
  let f: StartedFulcrum | undefined;
  let admin = "";

  before(async () => {
    workers = await startWorkers(["a", "b", "c"]);
    grpcWorkers = ["ga", "gb", "gc"].map((name) => new SimGrpcWorker({ name }));
    const bound = await Promise.all(grpcWorkers.map((w) => w.listen()));
    f = await startFulcrum(`
admin: { listen: "127.0.0.1:0", token: ${TOKEN} }
listeners:
  - { name: tcp, protocol: tcp, listen: "127.0.0.1:0", cluster: workers }
  - { name: grpc, protocol: grpc, engine: ${grpcEngine()}, listen: "127.0.0.1:0", cluster: gpus }
clusters:
  - name: workers
    policy: weighted_round_robin
    health_check: { type: none }
    endpoints:
${endpointsYaml(workers)}
  - name: gpus
    policy: round_robin
    health_check: { type: none }
    endpoints:
${bound.map((b) => `      - address: ${b.address}`).join("\n")}
`);
    admin = f.fulcrum.adminAddress ?? "";
    assert.match(admin, /^127\.0\.0\.1:\d+$/);
  });
  after(async () => {
    await closeAll(f, workers);
    await Promise.all(grpcWorkers.map((w) => w.close()));
  });

  it("GET /healthz, /readyz and /status", async () => {
    assert.equal((await adminGet(admin, "/healthz")).status, 200);
    assert.equal((await adminGet(admin, "/readyz")).status, 200);
    const status = (await adminGet(admin, "/status")).body as {
      listeners: { name: string; protocol: string; address: string; engine: string | null; active: number }[];
      clusters: {
        name: string;
        policy: string;
        endpoints: { address: string; health: string; drained: boolean }[];
      }[];
    };
    assert.deepEqual(
      status.listeners.map((l) => [l.name, l.protocol, l.engine, l.active]),
      [
        ["tcp", "tcp", null, 0],
        ["grpc", "grpc", grpcEngine(), 0],
      ],
    );
    assert.equal(status.listeners[0]?.address, f?.fulcrum.addressOf("tcp"));
    assert.deepEqual(
      status.clusters.map((c) => [c.name, c.policy, c.endpoints.length]),
      [
        ["workers", "weighted_round_robin", 3],
        ["gpus", "round_robin", 3],
      ],
    );
    assert.ok(status.clusters.every((c) => c.endpoints.every((e) => e.health === "healthy" && !e.drained)));
  });

  it("/readyz is 503 while a cluster has no healthy endpoint", async () => {
    const set = (f as StartedFulcrum).fulcrum.cluster("gpus").endpoints;
    for (const e of set.endpoints) set.setHealth(e.address, "unhealthy");
    try {
      const r = await adminGet(admin, "/readyz");
      assert.equal(r.status, 503);
      assert.match(r.text, /gpus/);
    } finally {
      for (const e of set.endpoints) set.setHealth(e.address, "healthy");
    }
  });

  it("POSTs need the bearer token: missing or wrong → 401", async () => {
    const body = { cluster: "workers", address: `127.0.0.1:${workers[0]?.port}` };
    assert.equal((await adminPost(admin, "/endpoints/drain", body)).status, 401);
    assert.equal((await adminPost(admin, "/endpoints/drain", body, "wrong")).status, 401);
    assert.equal((await adminPost(admin, "/endpoints/drain", body, `${TOKEN}x`)).status, 401);
  });

  it("unknown cluster or endpoint → 404; bad body → 400; unknown route → 404; reload → 200", async () => {
    const address = `127.0.0.1:${workers[0]?.port}`;
    assert.equal(
      (await adminPost(admin, "/endpoints/drain", { cluster: "nope", address }, TOKEN)).status,
      404,
    );
    assert.equal(
      (await adminPost(admin, "/endpoints/drain", { cluster: "workers", address: "127.0.0.1:1" }, TOKEN))
        .status,
      404,
    );
    assert.equal((await adminPost(admin, "/endpoints/drain", "{not json", TOKEN)).status, 400);
    assert.equal((await adminPost(admin, "/endpoints/drain", { cluster: "workers" }, TOKEN)).status, 400);
    assert.equal(
      (await adminPost(admin, "/endpoints/weight", { cluster: "workers", address, weight: 0 }, TOKEN)).status,
      400,
    );
    assert.equal((await adminPost(admin, "/endpoints/frobnicate", {}, TOKEN)).status, 404);
    assert.equal((await adminGet(admin, "/nothing-here")).status, 404);
    assert.equal((await adminPost(admin, "/reload", {}, TOKEN)).status, 200, "reload of the unchanged file");
  });

  it("drain stops new TCP connections to the endpoint while an open one finishes; undrain restores it", async () => {
    const port = (f as StartedFulcrum).target("tcp").port;
    const held: Socket[] = [];
    // Weighted round robin with equal weights: three connections reach a, b and c.
    const first = await Promise.all([0, 1, 2].map(() => connectAndGreet(port)));
    held.push(...first.map((c) => c.socket));
    const onA = first.find((c) => c.worker === "a");
    assert.ok(onA, "a connection reached a");
    const address = `127.0.0.1:${workers[0]?.port}`;
    const r = await adminPost(admin, "/endpoints/drain", { cluster: "workers", address }, TOKEN);
    assert.equal(r.status, 200);
    const seen: string[] = [];
    for (let i = 0; i < 12; i++) seen.push(await whoAnswers(port));
    assert.ok(!seen.includes("a"), `a took new connections while drained: ${seen.join(",")}`);
    // The connection opened before the drain still works.
    onA.socket.resume();
    const echoed = new Promise<string>((resolve) =>
      onA.socket.once("data", (d: Buffer) => resolve(d.toString())),
    );
    onA.socket.write("still here");
    assert.equal(await echoed, "still here");
    assert.equal(
      (await adminPost(admin, "/endpoints/undrain", { cluster: "workers", address }, TOKEN)).status,
      200,
    );
    const again = new Set<string>();
    for (let i = 0; i < 6; i++) again.add(await whoAnswers(port));
    assert.ok(again.has("a"), "a takes connections again after undrain");
    await Promise.all(held.map(closeSocket));
  });

  it("drain stops new gRPC streams to the endpoint", async () => {
    const client = simWorkerClient((f as StartedFulcrum).fulcrum.addressOf("grpc"));
    const call = (): Promise<string> =>
      new Promise((resolve, reject) =>
        client.Infer(Buffer.from("x"), (err, reply) => (err ? reject(err) : resolve(String(reply)))),
      );
    try {
      const address = grpcWorkers[1]?.port ? `127.0.0.1:${grpcWorkers[1].port}` : "";
      assert.equal(
        (await adminPost(admin, "/endpoints/drain", { cluster: "gpus", address }, TOKEN)).status,
        200,
      );
      const seen: string[] = [];
      for (let i = 0; i < 9; i++) seen.push(await call());
      assert.deepEqual([...new Set(seen)].sort(), ["ga", "gc"]);
      assert.equal(
        (await adminPost(admin, "/endpoints/undrain", { cluster: "gpus", address }, TOKEN)).status,
        200,
      );
      const back = new Set<string>();
      for (let i = 0; i < 6; i++) back.add(await call());
      assert.ok(back.has("gb"));
    } finally {
      client.close();
    }
  });

  it("weight changes the shares of a weighted policy", async () => {
    const port = (f as StartedFulcrum).target("tcp").port;
    const weights = [1, 2, 3];
    for (const [i, w] of workers.entries()) {
      const r = await adminPost(
        admin,
        "/endpoints/weight",
        { cluster: "workers", address: `127.0.0.1:${w.port}`, weight: weights[i] },
        TOKEN,
      );
      assert.equal(r.status, 200);
    }
    const counts = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const w = await whoAnswers(port);
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries(counts), { a: 10, b: 20, c: 30 });
    const status = (await adminGet(admin, "/status")).body as {
      clusters: { name: string; endpoints: { weight: number }[] }[];
    };
    assert.deepEqual(
      status.clusters.find((c) => c.name === "workers")?.endpoints.map((e) => e.weight),
      [1, 2, 3],
    );
  });
});
