/**
 * The inference-shaped simulated workers spoken to directly with real grpc-js clients: the Triton
 * worker's per-model readiness, sequence state (a sequence not started here fails as on a real Triton)
 * and Prometheus queue gauge; the TorchServe worker's Ping JSON, Predictions and StreamPredictions.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { torchserveService, tritonService } from "../../src/protos/inference-protos.js";
import { sumPromMetric } from "../../src/health/load-metrics-scraper.js";
import { SimTorchServeWorker } from "../../src/sim/sim-torchserve-worker.js";
import { PENDING_METRIC, SimTritonWorker } from "../../src/sim/sim-triton-worker.js";
import { Teardown } from "../helpers/grpc-client.js";
import { waitFor } from "../helpers/harness.js";

type Callback = (err: grpc.ServiceError | null, res: Record<string, unknown>) => void;
type Client = grpc.Client & Record<string, (req: unknown, cb: Callback) => void>;
type StreamingClient = grpc.Client & {
  StreamPredictions(req: unknown): grpc.ClientReadableStream<{ prediction: Buffer }>;
};

function call(client: Client, method: string, request: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) =>
    client[method]?.call(client, request, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

function sequenceRequest(id: number, flags: { start?: boolean; end?: boolean } = {}): unknown {
  const parameters: Record<string, unknown> = { sequence_id: { int64_param: id } };
  if (flags.start) parameters["sequence_start"] = { bool_param: true };
  if (flags.end) parameters["sequence_end"] = { bool_param: true };
  return { model_name: "simple", id: String(id), parameters, raw_input_contents: [Buffer.from("x")] };
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

describe("simulated inference workers", { timeout: 60_000 }, () => {
  it("Triton: per-model readiness; a model that is not ready fails inference with UNAVAILABLE", async () => {
    const own = new Teardown();
    try {
      const worker = own.add(new SimTritonWorker({ name: "t", models: ["simple", "other"] }), (w) =>
        w.close(),
      );
      const { address } = await worker.listen();
      const Ctor = tritonService();
      const client = own.add(new Ctor(address, grpc.credentials.createInsecure()) as unknown as Client, (c) =>
        c.close(),
      );
      worker.setModelReady("other", false);
      assert.deepEqual(await call(client, "ModelReady", { name: "other" }), { ready: false });
      assert.deepEqual(await call(client, "ModelReady", { name: "simple" }), { ready: true });
      assert.deepEqual(await call(client, "ServerReady", {}), { ready: true });
      await assert.rejects(
        call(client, "ModelInfer", { model_name: "other", raw_input_contents: [] }),
        (err: grpc.ServiceError) =>
          err.code === grpc.status.UNAVAILABLE && /no available versions/.test(err.details),
      );
      worker.setModelReady("other", true);
      const res = await call(client, "ModelInfer", { model_name: "other", raw_input_contents: [] });
      assert.equal(res["model_name"], "other");
      assert.equal(worker.modelReadyProbes, 2);
      assert.equal(worker.readyProbes, 1);
    } finally {
      await own.run();
    }
  });

  it("Triton: a sequence request without START on an instance that did not start it fails like Triton", async () => {
    const own = new Teardown();
    try {
      const worker = own.add(new SimTritonWorker({ name: "t" }), (w) => w.close());
      const { address } = await worker.listen();
      const Ctor = tritonService();
      const client = own.add(new Ctor(address, grpc.credentials.createInsecure()) as unknown as Client, (c) =>
        c.close(),
      );
      await assert.rejects(call(client, "ModelInfer", sequenceRequest(7)), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
        assert.equal(
          err.details,
          "inference request for sequence 7 to model 'simple' must specify the START flag on the first request of the sequence",
        );
        return true;
      });
      await call(client, "ModelInfer", sequenceRequest(7, { start: true }));
      await call(client, "ModelInfer", sequenceRequest(7));
      await call(client, "ModelInfer", sequenceRequest(7, { end: true }));
      // Ended: the next request of id 7 must start a new sequence.
      await assert.rejects(call(client, "ModelInfer", sequenceRequest(7)), {
        code: grpc.status.INVALID_ARGUMENT,
      });
      assert.equal(worker.sequenceErrors, 2);
      assert.equal(worker.sequences.get("7"), 5);
    } finally {
      await own.run();
    }
  });

  it("Triton: /metrics reports queued requests per model in nv_inference_pending_request_count", async () => {
    const own = new Teardown();
    try {
      const worker = own.add(
        new SimTritonWorker({ name: "t", models: ["simple", "other"], slots: 1, baseLatencyMs: 300 }),
        (w) => w.close(),
      );
      const { address } = await worker.listen();
      const metrics = await worker.listenMetrics();
      const Ctor = tritonService();
      const client = own.add(new Ctor(address, grpc.credentials.createInsecure()) as unknown as Client, (c) =>
        c.close(),
      );
      assert.equal(sumPromMetric(await scrape(metrics.port), PENDING_METRIC), 0);
      const calls = [1, 2, 3, 4].map((i) =>
        call(client, "ModelInfer", { model_name: "simple", id: String(i), raw_input_contents: [] }),
      );
      await waitFor(() => worker.queued === 3, 5000, "three queued requests");
      const text = await scrape(metrics.port);
      assert.match(text, /^nv_inference_pending_request_count\{model="simple",version="1"\} 3$/m);
      assert.match(text, /^nv_inference_pending_request_count\{model="other",version="1"\} 0$/m);
      worker.setExternalPending("other", 5);
      assert.equal(sumPromMetric(await scrape(metrics.port), PENDING_METRIC), 8);
      await Promise.all(calls);
      assert.equal(worker.maxActive, 1);
      assert.equal(worker.metricsScrapes, 3);
    } finally {
      await own.run();
    }
  });

  it("TorchServe: Ping answers its JSON health; Predictions and StreamPredictions echo the inputs", async () => {
    const own = new Teardown();
    try {
      const worker = own.add(new SimTorchServeWorker({ name: "ts", streamChunks: 2 }), (w) => w.close());
      const { address } = await worker.listen();
      const Ctor = torchserveService();
      const client = own.add(new Ctor(address, grpc.credentials.createInsecure()) as unknown as Client, (c) =>
        c.close(),
      );
      const health = async (): Promise<unknown> =>
        JSON.parse(String((await call(client, "Ping", {}))["health"]));
      assert.deepEqual(await health(), { status: "Healthy" });
      worker.setHealth("Partial Healthy");
      assert.deepEqual(await health(), { status: "Partial Healthy" });
      worker.setPingBody("not json");
      assert.equal((await call(client, "Ping", {}))["health"], "not json");
      assert.equal(worker.pings, 3);

      const request = { model_name: "simple", input: { b: Buffer.from("2"), a: Buffer.from("1") } };
      const res = await call(client, "Predictions", request);
      assert.deepEqual(res["prediction"], Buffer.from("ts:12"));
      await assert.rejects(call(client, "Predictions", { ...request, model_name: "nope" }), {
        code: grpc.status.NOT_FOUND,
      });
      const stream = (client as unknown as StreamingClient).StreamPredictions(request);
      const parts: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        stream.on("data", (m: { prediction: Buffer }) => parts.push(m.prediction));
        stream.on("end", () => resolve());
        stream.on("error", reject);
      });
      assert.equal(parts.length, 2);
      assert.deepEqual(Buffer.concat(parts), Buffer.from("ts:12"));
      assert.equal(worker.calls, 3);
    } finally {
      await own.run();
    }
  });
});
