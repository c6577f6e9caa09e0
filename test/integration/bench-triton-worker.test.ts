/**
 * The Triton-shaped simulated worker (src/sim/sim-triton-worker.ts), spoken to with a real grpc-js
 * client built from protos/triton/grpc_service.proto: KServe v2 liveness and readiness, ModelInfer
 * (echo of raw inputs, the worker named in a parameter, unknown model NOT_FOUND, slots and queueing,
 * sequence ids counted), ModelStreamInfer, and grpc.health.v1 Check following readiness.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { healthService } from "../../src/protos/health-proto.js";
import { SimTritonWorker, tritonService } from "../../src/sim/sim-triton-worker.js";

type Callback = (err: grpc.ServiceError | null, res: Record<string, unknown>) => void;
type Client = grpc.Client &
  Record<string, (req: unknown, cb: Callback) => void> & {
    ModelStreamInfer(): grpc.ClientDuplexStream<unknown, Record<string, unknown>>;
  };

function call(client: Client, method: string, request: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) =>
    client[method]?.call(client, request, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

async function withTriton(
  options: ConstructorParameters<typeof SimTritonWorker>[0],
  body: (client: Client, worker: SimTritonWorker, address: string) => Promise<void>,
): Promise<void> {
  const worker = new SimTritonWorker(options);
  const { address } = await worker.listen("127.0.0.1", 0);
  const Ctor = tritonService();
  const client = new Ctor(address, grpc.credentials.createInsecure()) as unknown as Client;
  try {
    await body(client, worker, address);
  } finally {
    client.close();
    await worker.close();
  }
}

const infer = (id: string, sequence?: number) => ({
  model_name: "simple",
  id,
  parameters:
    sequence === undefined
      ? {}
      : { sequence_id: { int64_param: sequence }, sequence_start: { bool_param: true } },
  raw_input_contents: [Buffer.from(`in-${id}`)],
});

describe("simulated Triton worker", { timeout: 120_000 }, () => {
  it("answers liveness, readiness and ModelReady; health Check follows readiness", async () => {
    await withTriton({ name: "t0", models: ["simple"] }, async (client, worker, address) => {
      assert.deepEqual(await call(client, "ServerLive", {}), { live: true });
      assert.deepEqual(await call(client, "ServerReady", {}), { ready: true });
      assert.deepEqual(await call(client, "ModelReady", { name: "simple" }), { ready: true });
      assert.deepEqual(await call(client, "ModelReady", { name: "other" }), { ready: false });
      const Health = healthService();
      const health = new Health(address, grpc.credentials.createInsecure()) as unknown as Client;
      try {
        assert.equal((await call(health, "Check", { service: "anything" }))["status"], "SERVING");
        worker.setReady(false);
        assert.equal((await call(health, "Check", { service: "" }))["status"], "NOT_SERVING");
        assert.deepEqual(await call(client, "ServerReady", {}), { ready: false });
      } finally {
        health.close();
      }
    });
  });

  it("ModelInfer echoes raw inputs, names the worker, counts sequences; unknown model is NOT_FOUND", async () => {
    await withTriton({ name: "t1" }, async (client, worker) => {
      const res = await call(client, "ModelInfer", infer("a", 42));
      assert.equal(res["id"], "a");
      assert.equal(res["model_name"], "simple");
      assert.deepEqual(res["raw_output_contents"], [Buffer.from("in-a")]);
      assert.equal(
        (res["parameters"] as Record<string, { string_param: string }>)["worker"]?.string_param,
        "t1",
      );
      await call(client, "ModelInfer", infer("b", 42));
      assert.equal(worker.sequences.get("42"), 2);
      await assert.rejects(call(client, "ModelInfer", { ...infer("c"), model_name: "nope" }), {
        code: grpc.status.NOT_FOUND,
      });
      worker.failWith(grpc.status.UNAVAILABLE);
      await assert.rejects(call(client, "ModelInfer", infer("d")), { code: grpc.status.UNAVAILABLE });
      assert.equal(worker.calls, 4);
    });
  });

  it("serves `slots` at once and queues the rest (service time × speed)", async () => {
    await withTriton({ name: "t2", slots: 2, baseLatencyMs: 50, speed: 2 }, async (client, worker) => {
      const started = performance.now();
      await Promise.all([1, 2, 3, 4].map((i) => call(client, "ModelInfer", infer(String(i)))));
      const ms = performance.now() - started;
      assert.equal(worker.maxActive, 2);
      assert.ok(ms >= 190, `4 calls over 2 slots of 100 ms took ${ms} ms`);
    });
  });

  it("ModelStreamInfer answers each request on the stream", async () => {
    await withTriton({ name: "t3" }, async (client) => {
      const stream = client.ModelStreamInfer();
      const got: string[] = [];
      const done = new Promise<void>((resolve, reject) => {
        stream.on("data", (m: { infer_response?: { id: string } }) => got.push(m.infer_response?.id ?? "?"));
        stream.on("end", () => resolve());
        stream.on("error", reject);
      });
      for (const id of ["x", "y", "z"]) stream.write(infer(id));
      stream.end();
      await done;
      assert.deepEqual(got.sort(), ["x", "y", "z"]);
    });
  });
});
