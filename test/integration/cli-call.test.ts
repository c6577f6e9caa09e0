/**
 * `fulcrum call`, the built CLI as a child process against real workers and a real Fulcrum: N calls
 * over one HTTP/2 connection spread over the workers by the listener, one line per call naming the
 * worker (from the answer, the `x-worker` header or the `fulcrum-route` trailer) and the status, a
 * summary, and the exit code (0 all OK, 1 otherwise, 2 usage). Runs on both gRPC engines.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { bindSimServer, shutdownSimServer } from "../../src/sim/sim-grpc-server.js";
import { SimGrpcWorker, simWorkerService } from "../../src/sim/sim-grpc-worker.js";
import { SimTcpWorker } from "../../src/sim/sim-tcp-worker.js";
import { SimTorchServeWorker } from "../../src/sim/sim-torchserve-worker.js";
import { SimTritonWorker } from "../../src/sim/sim-triton-worker.js";
import { runCli } from "../helpers/cli-process.js";
import { Teardown, grpcConfig } from "../helpers/grpc-client.js";
import { metricValue, startFulcrum, type StartedFulcrum } from "../helpers/harness.js";

const TRITON = "/inference.GRPCInferenceService";

interface Worker {
  listen(host: string, port: number): Promise<{ address: string }>;
  close(): Promise<void>;
}

describe("fulcrum call", { timeout: 90_000 }, () => {
  let teardown = new Teardown();
  afterEach(async () => {
    await teardown.run();
    teardown = new Teardown();
  });

  async function started<W extends Worker>(worker: W): Promise<{ worker: W; address: string }> {
    const { address } = await worker.listen("127.0.0.1", 0);
    teardown.add(worker, (w) => w.close());
    return { worker, address };
  }

  async function fulcrumOver(
    addresses: readonly string[],
    extra: readonly string[] = [],
  ): Promise<StartedFulcrum> {
    const f = await startFulcrum(grpcConfig({ policy: "least_connections", endpoints: addresses, extra }));
    teardown.add(f, (x) => x.fulcrum.stop(0));
    return f;
  }

  const listenerOf = (f: StartedFulcrum): string => `127.0.0.1:${f.target().port}`;

  it("spreads the calls of one connection over the workers and names each", async () => {
    const a = await started(new SimGrpcWorker({ name: "gpu-a", baseLatencyMs: 5 }));
    const b = await started(new SimGrpcWorker({ name: "gpu-b", baseLatencyMs: 5 }));
    const f = await fulcrumOver([a.address, b.address]);
    const r = await runCli(["call", "--address", listenerOf(f), "--count", "6"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 8, r.stdout);
    for (let i = 1; i <= 6; i++) {
      assert.match(lines[i - 1] as string, new RegExp(`^call ${i}: OK from gpu-[ab] in \\d+ ms$`));
    }
    assert.equal(lines[6], "6 calls: OK 6");
    assert.match(lines[7] as string, /^by worker: gpu-a \d, gpu-b \d$/);
    assert.equal(a.worker.calls + b.worker.calls, 6);
    assert.ok(a.worker.calls > 0 && b.worker.calls > 0, "both workers answered");
    assert.equal(
      await metricValue(f.registry, "fulcrum_downstream_connections_total", { listener: "g" }),
      1,
      "every call went over one connection",
    );
  });

  it("runs calls concurrently and shows the route of explain: true", async () => {
    const a = await started(new SimGrpcWorker({ name: "gpu-a", baseLatencyMs: 50, slots: 2 }));
    const b = await started(new SimGrpcWorker({ name: "gpu-b", baseLatencyMs: 50, slots: 2 }));
    const f = await fulcrumOver([a.address, b.address], ["explain: true"]);
    const r = await runCli(["call", "--address", listenerOf(f), "--count", "4", "--concurrency", "4"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(Math.max(a.worker.maxActive, b.worker.maxActive), 2, "four calls were in flight at once");
    for (const w of [a, b]) {
      assert.match(r.stdout, new RegExp(`OK from ${w.worker.name} \\(${w.address}\\) in \\d+ ms`));
    }
  });

  it("sends --metadata with every call (-bin keys as bytes)", async () => {
    const seen: string[] = [];
    const server = new grpc.Server();
    server.addService(simWorkerService, {
      Infer: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        seen.push(`${String(call.metadata.get("x-tenant")[0])} ${String(call.metadata.get("x-key-bin")[0])}`);
        callback(null, Buffer.from("meta-worker"));
      },
    });
    const { address } = await started({
      listen: (host, port) => bindSimServer(server, host, port),
      close: () => shutdownSimServer(server),
    });
    const r = await runCli([
      "call",
      "--address",
      address,
      "--count",
      "2",
      "--metadata",
      "x-tenant=blue",
      "--metadata",
      "X-Key-Bin=raw",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(seen, ["blue raw", "blue raw"]);
    assert.match(r.stdout, /^call 2: OK from meta-worker in \d+ ms$/m);
  });

  it("names the endpoint from the fulcrum-route trailer when the answer names no worker", async () => {
    const a = await started(new SimGrpcWorker({ name: "gpu-a" }));
    const f = await fulcrumOver([a.address], ["explain: true"]);
    const r = await runCli(["call", "--address", listenerOf(f), "--method", "/grpc.health.v1.Health/Check"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^call 1: OK from ${a.address} in \\d+ ms: status=SERVING$`, "m"));
    assert.match(r.stdout, new RegExp(`^by worker: ${a.address} 1$`, "m"));
  });

  it("calls Triton's ModelInfer, ServerReady and ModelReady with --model", async () => {
    const t = await started(new SimTritonWorker({ name: "triton-0", models: ["resnet"] }));
    const f = await fulcrumOver([t.address]);
    const infer = await runCli([
      "call",
      "--address",
      listenerOf(f),
      "--method",
      `${TRITON}/ModelInfer`,
      "--model",
      "resnet",
    ]);
    assert.equal(infer.code, 0, infer.stderr);
    assert.match(infer.stdout, /^call 1: OK from triton-0 in \d+ ms: model resnet v1$/m);
    const ready = await runCli(["call", "--address", t.address, "--method", `${TRITON}/ServerReady`]);
    assert.match(ready.stdout, /^call 1: OK from triton-0 in \d+ ms: ready=true$/m);
    const model = await runCli([
      "call",
      "--address",
      t.address,
      "--method",
      `${TRITON}/ModelReady`,
      "--data",
      '{"name":"bert"}',
    ]);
    assert.match(model.stdout, /: ready=false$/m, "--data is merged over the request");
    const unknown = await runCli(["call", "--address", t.address, "--method", `${TRITON}/ModelInfer`]);
    assert.equal(unknown.code, 1, "model simple is not served here");
    assert.match(unknown.stdout, /^call 1: NOT_FOUND in \d+ ms: .*simple/m);
    assert.match(unknown.stdout, /^1 call: NOT_FOUND 1$/m);
  });

  it("calls TorchServe's Ping and Predictions", async () => {
    const t = await started(new SimTorchServeWorker({ name: "ts-0" }));
    const prefix = "/org.pytorch.serve.grpc.inference.InferenceAPIsService";
    const ping = await runCli(["call", "--address", t.address, "--method", `${prefix}/Ping`]);
    assert.match(ping.stdout, /^call 1: OK from ts-0 in \d+ ms: health Healthy$/m);
    const predict = await runCli([
      "call",
      "--address",
      t.address,
      "--method",
      `${prefix}/Predictions`,
      "--data",
      `{"input":{"x":"${Buffer.from("hi").toString("base64")}"}}`,
    ]);
    assert.equal(predict.code, 0, predict.stdout + predict.stderr);
    assert.match(predict.stdout, /: prediction "ts-0:hi"$/m);
  });

  it("exits 1 when a call fails, and says which status", async () => {
    const a = await started(new SimGrpcWorker({ name: "gpu-a" }));
    a.worker.failWith(grpc.status.RESOURCE_EXHAUSTED, "full");
    const r = await runCli(["call", "--address", a.address, "--count", "2"]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^call 1: RESOURCE_EXHAUSTED in \d+ ms: full$/m);
    assert.match(r.stdout, /^2 calls: RESOURCE_EXHAUSTED 2$/m);
    const down = await runCli(["call", "--address", "127.0.0.1:1", "--deadline", "2s"]);
    assert.equal(down.code, 1);
    assert.match(down.stdout, /^call 1: UNAVAILABLE /m);
  });

  it("--tcp sends --data and prints what the worker sent back", async () => {
    const t = await started(new SimTcpWorker({ name: "tcp-0" }));
    const r = await runCli(["call", "--tcp", "--address", t.address, "--data", "hello", "--count", "2"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^connection 1: OK from tcp-0 in \d+ ms: "tcp-0\\nhello"$/m);
    assert.match(r.stdout, /^2 connections: OK 2$/m);
    assert.equal(t.worker.accepted, 2);
  });

  it("exits 2 with the usage line on bad arguments", async () => {
    for (const args of [
      [],
      ["--address", "nowhere"],
      ["--address", "127.0.0.1:1", "--method", "/no.Such/Method"],
      ["--address", "127.0.0.1:1", "--method", "/fulcrum.sim.Worker/Bidi"],
      ["--address", "127.0.0.1:1", "--count", "0"],
      ["--address", "127.0.0.1:1", "--data", "not json"],
      ["--address", "127.0.0.1:1", "--metadata", "novalue"],
      ["--address", "127.0.0.1:1", "--tcp", "--method", "/fulcrum.sim.Worker/Infer"],
      ["--address", "127.0.0.1:1", "--deadline", "soon"],
    ]) {
      const r = await runCli(["call", ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^usage: fulcrum call --address HOST:PORT/m, args.join(" "));
    }
  });
});
