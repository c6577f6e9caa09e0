/**
 * `fulcrum sim`, the built CLI as a child process: each kind of simulated worker binds (port 0 picks
 * one), logs its `listening` line with its name, answers as that kind of worker, says "2× slower" for
 * `--speed 2`, and exits 0 on SIGTERM; bad arguments exit 2 with the usage line, an address in use 1.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { afterEach, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { torchserveService, tritonService } from "../../src/protos/inference-protos.js";
import { simWorkerClient } from "../../src/sim/sim-grpc-worker.js";
import { bytesElement } from "../../src/sim/sim-llm-worker.js";
import { runCli, startCli, type CliProcess } from "../helpers/cli-process.js";
import { closeSocket, connectAndGreet } from "../helpers/harness.js";

type Callback<T> = (err: grpc.ServiceError | null, reply?: T) => void;
interface UnaryClient extends grpc.Client {
  [method: string]: unknown;
}

function unary<T>(
  client: UnaryClient,
  method: string,
  request: object,
): Promise<{ reply: T; worker: string }> {
  return new Promise((resolve, reject) => {
    let worker = "";
    const call = (client[method] as (r: object, cb: Callback<T>) => grpc.ClientUnaryCall).call(
      client,
      request,
      (err, reply) => (err ? reject(err) : resolve({ reply: reply as T, worker })),
    );
    call.on("metadata", (md: grpc.Metadata) => (worker = String(md.get("x-worker")[0])));
  });
}

describe("fulcrum sim", { timeout: 60_000 }, () => {
  let running: CliProcess[] = [];
  afterEach(() => {
    for (const p of running) p.child.kill("SIGKILL");
    running = [];
  });

  async function sim(args: string[]): Promise<{ proc: CliProcess; address: string }> {
    const proc = await startCli(["sim", ...args], 1);
    running.push(proc);
    const line = proc.lines.find((l) => l.msg === "listening");
    assert.equal(line?.worker, args[args.indexOf("--name") + 1]);
    return { proc, address: String(line?.address) };
  }

  async function stops(proc: CliProcess): Promise<void> {
    proc.child.kill("SIGTERM");
    assert.equal(await proc.exited(), 0);
  }

  it("grpc: Infer answers with the worker's name after its latency", async () => {
    const { proc, address } = await sim([
      "grpc",
      "--name",
      "gpu-0",
      "--listen",
      "127.0.0.1:0",
      "--latency",
      "30ms",
    ]);
    const client = simWorkerClient(address);
    const started = performance.now();
    const name = await new Promise<string>((resolve, reject) =>
      client.Infer(Buffer.alloc(0), (err, reply) => (err ? reject(err) : resolve(String(reply)))),
    );
    assert.equal(name, "gpu-0");
    assert.ok(performance.now() - started >= 25, "the latency was applied");
    client.close();
    assert.match(
      proc.stderr(),
      /simulated grpc worker "gpu-0" on 127\.0\.0\.1:\d+: .*30 ms per call, 4 at once/,
    );
    await stops(proc);
  });

  it("llm: ModelInfer generates --latency per token, names its model and KV capacity in the banner", async () => {
    const { proc, address } = await sim([
      "llm",
      "--name",
      "gen-0",
      "--listen",
      "127.0.0.1:0",
      "--latency",
      "5ms",
      "--slots",
      "2",
      "--models",
      "chat",
    ]);
    const Client = tritonService();
    const client = new Client(address, grpc.credentials.createInsecure()) as unknown as UnaryClient;
    const infer = await unary<{
      parameters: Record<string, { string_param?: string }>;
      raw_output_contents: Buffer[];
    }>(client, "ModelInfer", {
      model_name: "chat",
      inputs: [{ name: "text_input", datatype: "BYTES", shape: [1, 1] }],
      raw_input_contents: [bytesElement("hello")],
      parameters: { max_tokens: { int64_param: "3" } },
    });
    assert.equal(infer.reply.parameters["worker"]?.string_param, "gen-0");
    assert.equal(infer.reply.raw_output_contents[0]?.subarray(4).toString(), "t0 t1 t2");
    client.close();
    assert.match(proc.stderr(), /5 ms per output token, 2 generating at once, model chat/);
    await stops(proc);
  });

  it("triton: ServerReady, ModelReady of --models, and a 2× slower banner for --speed 2", async () => {
    const { proc, address } = await sim([
      "triton",
      "--name",
      "gpu-1",
      "--listen",
      "127.0.0.1:0",
      "--speed",
      "2",
      "--slots",
      "2",
      "--models",
      "resnet,bert",
    ]);
    const Client = tritonService();
    const client = new Client(address, grpc.credentials.createInsecure()) as unknown as UnaryClient;
    assert.equal((await unary<{ ready: boolean }>(client, "ServerReady", {})).reply.ready, true);
    assert.equal((await unary<{ ready: boolean }>(client, "ModelReady", { name: "bert" })).reply.ready, true);
    assert.equal(
      (await unary<{ ready: boolean }>(client, "ModelReady", { name: "simple" })).reply.ready,
      false,
    );
    const infer = await unary<{ model_name: string }>(client, "ModelInfer", { model_name: "resnet" });
    assert.equal(infer.worker, "gpu-1");
    client.close();
    assert.match(proc.stderr(), /40 ms per call \(2× slower\), 2 at once, models resnet, bert/);
    assert.doesNotMatch(proc.stderr(), /speed ×/);
    await stops(proc);
  });

  it("torchserve: Ping answers healthy", async () => {
    const { proc, address } = await sim(["torchserve", "--name", "ts-0", "--listen", "127.0.0.1:0"]);
    const Client = torchserveService();
    const client = new Client(address, grpc.credentials.createInsecure()) as unknown as UnaryClient;
    const ping = await unary<{ health: string }>(client, "Ping", {});
    assert.equal((JSON.parse(ping.reply.health) as { status: string }).status, "Healthy");
    client.close();
    await stops(proc);
  });

  it("tcp: greets each connection with its name", async () => {
    const { proc, address } = await sim(["tcp", "--name", "t-0", "--listen", "127.0.0.1:0"]);
    const { socket, worker } = await connectAndGreet(Number(/:(\d+)$/.exec(address)?.[1]));
    assert.equal(worker, "t-0");
    await closeSocket(socket);
    await stops(proc);
  });

  it("exits 2 with the usage line on bad arguments", async () => {
    for (const args of [
      [],
      ["gpu", "--name", "a", "--listen", "127.0.0.1:0"],
      ["grpc", "--listen", "127.0.0.1:0"],
      ["grpc", "--name", "a"],
      ["grpc", "--name", "a", "--listen", "localhost"],
      ["grpc", "--name", "a", "--listen", "127.0.0.1:0", "--latency", "20"],
      ["grpc", "--name", "a", "--listen", "127.0.0.1:0", "--slots", "0"],
      ["grpc", "--name", "a", "--listen", "127.0.0.1:0", "--speed", "-1"],
      ["grpc", "--name", "a", "--listen", "127.0.0.1:0", "--models", "x"],
      ["tcp", "--name", "a", "--listen", "127.0.0.1:0", "--latency", "5ms"],
      ["grpc", "--name", "a", "--listen", "127.0.0.1:0", "--colour", "blue"],
    ]) {
      const r = await runCli(["sim", ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(
        r.stderr,
        /^usage: fulcrum sim grpc\|triton\|torchserve\|tcp\|llm --name NAME/m,
        args.join(" "),
      );
    }
  });

  it("exits 1 when the address is in use", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      for (const kind of ["grpc", "tcp"]) {
        const r = await runCli(["sim", kind, "--name", "a", "--listen", `127.0.0.1:${port}`]);
        assert.equal(r.code, 1, `${kind}: ${r.stderr}`);
        assert.match(r.stderr, /cannot bind/);
      }
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
