/**
 * Hot reload through the real CLI: under steady gRPC and TCP load, SIGHUP with a config that removes
 * one endpoint and adds another loses nothing, the removed endpoint gets no new work and the added one
 * does; an invalid config is refused by path, the old one keeps serving, and a metric and a log line
 * say so.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { SimGrpcWorker, simWorkerClient } from "../../src/sim/sim-grpc-worker.js";
import type { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";
import { adminGet, adminPost } from "../helpers/admin-client.js";
import { grpcEngine } from "../helpers/grpc-client.js";
import { startCli, type CliProcess } from "../helpers/cli-process.js";
import { closeSocket, connectAndGreet, startWorkers, waitFor } from "../helpers/harness.js";

function config(tcp: readonly SimTcpWorker[], grpc: readonly SimGrpcWorker[]): string {
  return `
admin: { listen: "127.0.0.1:0" }
drain_timeout: 5s
listeners:
  - { name: tcp, protocol: tcp, listen: "127.0.0.1:0", cluster: sockets }
  - { name: grpc, protocol: grpc, engine: ${grpcEngine()}, listen: "127.0.0.1:0", cluster: gpus }
clusters:
  - name: sockets
    policy: round_robin
    health_check: { type: none }
    endpoints:
${tcp.map((w) => `      - address: 127.0.0.1:${w.port}`).join("\n")}
  - name: gpus
    policy: round_robin
    health_check: { type: none }
    endpoints:
${grpc.map((w) => `      - address: 127.0.0.1:${w.port}`).join("\n")}
`;
}

describe("reload", { timeout: 60_000 }, () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it("SIGHUP under load: remove one endpoint, add another, lose nothing", async () => {
    const tcp = await startWorkers(["t1", "t2", "t3"]);
    cleanup.push(() => Promise.all(tcp.map((w) => w.close())));
    const grpc = ["g1", "g2", "g3"].map((name) => new SimGrpcWorker({ name, baseLatencyMs: 5 }));
    await Promise.all(grpc.map((w) => w.listen()));
    cleanup.push(() => Promise.all(grpc.map((w) => w.close())));
    const file = join(mkdtempSync(join(tmpdir(), "fulcrum-reload-")), "fulcrum.yaml");
    // Start with t1,t2 / g1,g2; the reload removes t1 / g1 and adds t3 / g3.
    writeFileSync(file, config(tcp.slice(0, 2), grpc.slice(0, 2)));
    const proc: CliProcess = await startCli(["--config", file], 3);
    cleanup.push(async () => {
      proc.child.kill("SIGKILL");
      await proc.exited();
    });

    const client = simWorkerClient(proc.address("grpc"));
    cleanup.push(() => Promise.resolve(client.close()));
    let reloaded = false;
    let stop = false;
    const grpcBefore = new Map<string, number>();
    const grpcAfter = new Map<string, number>();
    const tcpAfter = new Map<string, number>();
    let failures = 0;
    const grpcLoad = (async () => {
      for (let i = 0; i < 3000 && !stop; i++) {
        const phase = reloaded;
        const name = await new Promise<string>((resolve) =>
          client.Infer(Buffer.from("x"), (err, reply) => resolve(err ? `error ${err.code}` : String(reply))),
        );
        if (name.startsWith("error")) failures++;
        const m = phase ? grpcAfter : grpcBefore;
        m.set(name, (m.get(name) ?? 0) + 1);
      }
    })();
    const tcpPort = Number(/:(\d+)$/.exec(proc.address("tcp"))?.[1]);
    const tcpLoad = (async () => {
      for (let i = 0; i < 3000 && !stop; i++) {
        const phase = reloaded;
        try {
          const { socket, worker } = await connectAndGreet(tcpPort);
          if (phase) tcpAfter.set(worker, (tcpAfter.get(worker) ?? 0) + 1);
          await closeSocket(socket);
        } catch {
          failures++;
        }
      }
    })();

    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(file, config(tcp.slice(1), grpc.slice(1)));
    proc.child.kill("SIGHUP");
    await proc.waitForLine((l) => l.msg === "config reloaded", 5000);
    reloaded = true;
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all([grpcLoad, tcpLoad]);

    assert.equal(failures, 0, "no call or connection failed");
    assert.ok((grpcBefore.get("g1") ?? 0) > 0, "g1 served before the reload");
    assert.equal(grpcAfter.get("g1") ?? 0, 0, "the removed endpoint got no new streams");
    assert.ok((grpcAfter.get("g3") ?? 0) > 0, "the added endpoint got streams");
    assert.equal(tcpAfter.get("t1") ?? 0, 0, "the removed endpoint got no new connections");
    assert.ok((tcpAfter.get("t3") ?? 0) > 0, "the added endpoint got connections");
    const metrics = (await adminGet(proc.address("admin"), "/metrics")).text;
    assert.match(metrics, /^fulcrum_config_reloads_total\{result="success"\} 1$/m);
  });

  it("an invalid config is refused by path; the old config keeps serving; a metric and a log line say so", async () => {
    const tcp = await startWorkers(["only"]);
    cleanup.push(() => Promise.all(tcp.map((w) => w.close())));
    const grpc = [new SimGrpcWorker({ name: "g" })];
    await grpc[0]?.listen();
    cleanup.push(() => Promise.all(grpc.map((w) => w.close())));
    const file = join(mkdtempSync(join(tmpdir(), "fulcrum-reload-")), "fulcrum.yaml");
    writeFileSync(file, config(tcp, grpc));
    const proc = await startCli(["--config", file], 3);
    cleanup.push(async () => {
      proc.child.kill("SIGKILL");
      await proc.exited();
    });
    const admin = proc.address("admin");
    writeFileSync(
      file,
      config(tcp, grpc).replace("drain_timeout: 5s", "drain_timeout: soon").replace("threads: 1", ""),
    );
    const r = await adminPost(admin, "/reload", {});
    assert.equal(r.status, 400);
    assert.deepEqual((r.body as { errors: string[] }).errors, [
      'drain_timeout: expected a duration like "2s", got "soon"',
    ]);
    await proc.waitForLine((l) => l.msg === "config reload rejected: old config kept", 2000);
    writeFileSync(
      file,
      config(tcp, grpc).replace('admin: { listen: "127.0.0.1:0" }', 'admin: { listen: "127.0.0.1:1" }'),
    );
    const moved = await adminPost(admin, "/reload", {});
    assert.equal(moved.status, 400);
    assert.match(
      (moved.body as { errors: string[] }).errors[0] ?? "",
      /^admin\.listen: cannot change on reload/,
    );
    const { socket, worker } = await connectAndGreet(Number(/:(\d+)$/.exec(proc.address("tcp"))?.[1]));
    assert.equal(worker, "only", "the old config keeps serving");
    await closeSocket(socket);
    const metrics = (await adminGet(admin, "/metrics")).text;
    assert.match(metrics, /^fulcrum_config_reloads_total\{result="failure"\} 2$/m);
    await waitFor(() => proc.child.exitCode === null, 100, "still running");
  });
});
