/**
 * protos/fulcrum/sim/worker.proto is what the simulated gRPC worker speaks: a client generated from
 * the proto file alone (@grpc/proto-loader, as any gRPC user would load it) calls every method of a
 * SimGrpcWorker and decodes its answers as the proto's messages.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { SimGrpcWorker } from "../../src/sim/sim-grpc-worker.js";
import { repoRoot } from "../helpers/repo-root.js";

interface Payload {
  data: Buffer[];
}
type Callback<T> = (err: grpc.ServiceError | null, reply?: T) => void;
interface ProtoWorkerClient extends grpc.Client {
  Infer(request: { input: Buffer }, callback: Callback<{ worker: string }>): grpc.ClientUnaryCall;
  Echo(request: Payload, callback: Callback<Payload>): grpc.ClientUnaryCall;
  ServerStream(request: Payload, metadata: grpc.Metadata): grpc.ClientReadableStream<Payload>;
  ClientStream(callback: Callback<Payload>): grpc.ClientWritableStream<Payload>;
  Bidi(): grpc.ClientDuplexStream<Payload, Payload>;
}

function unary<T>(start: (cb: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => start((err, reply) => (err ? reject(err) : resolve(reply as T))));
}

function collect<T>(
  stream: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>,
): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const got: T[] = [];
    stream.on("data", (m: T) => got.push(m));
    stream.on("error", reject);
    stream.on("end", () => resolve(got));
  });
}

const texts = (p: Payload): string[] => p.data.map((d) => d.toString());

describe("protos/fulcrum/sim/worker.proto", { timeout: 30_000 }, () => {
  let worker: SimGrpcWorker;
  let client: ProtoWorkerClient;

  before(async () => {
    worker = new SimGrpcWorker({ name: "gpu-7", baseLatencyMs: 1, slots: 2 });
    const { address } = await worker.listen();
    const definition = protoLoader.loadSync(join(repoRoot(), "protos/fulcrum/sim/worker.proto"), {
      keepCase: true,
      defaults: true,
    });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      fulcrum: { sim: { Worker: grpc.ServiceClientConstructor } };
    };
    client = new loaded.fulcrum.sim.Worker(
      address,
      grpc.credentials.createInsecure(),
    ) as unknown as ProtoWorkerClient;
  });
  after(async () => {
    client.close();
    await worker.close();
  });

  it("Infer answers an InferReply naming the worker", async () => {
    const reply = await unary<{ worker: string }>((cb) => client.Infer({ input: Buffer.from("x") }, cb));
    assert.deepEqual(reply, { worker: "gpu-7" });
    assert.equal(worker.calls, 1);
  });

  it("Echo answers the request message", async () => {
    const reply = await unary<Payload>((cb) =>
      client.Echo({ data: [Buffer.from("a"), Buffer.from("bc")] }, cb),
    );
    assert.deepEqual(texts(reply), ["a", "bc"]);
  });

  it("ServerStream sends the request back x-repeat times", async () => {
    const md = new grpc.Metadata();
    md.set("x-repeat", "3");
    const got = await collect(client.ServerStream({ data: [Buffer.from("r")] }, md));
    assert.deepEqual(got.map(texts), [["r"], ["r"], ["r"]]);
  });

  it("ClientStream answers every part of every request message in order", async () => {
    const reply = await unary<Payload>((cb) => {
      const call = client.ClientStream(cb);
      call.write({ data: [Buffer.from("one")] });
      call.write({ data: [Buffer.from("two"), Buffer.from("three")] });
      call.end();
    });
    assert.deepEqual(texts(reply), ["one", "two", "three"]);
  });

  it("Bidi echoes each message", async () => {
    const call = client.Bidi();
    const got = collect(call);
    call.write({ data: [Buffer.from("p")] });
    call.write({ data: [Buffer.from("q")] });
    call.end();
    assert.deepEqual((await got).map(texts), [["p"], ["q"]]);
  });
});
