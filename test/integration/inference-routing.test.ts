/**
 * Model-aware routing through Fulcrum with grpc-js clients of the Triton and TorchServe protos: a
 * ModelInfer for a model ready on 2 of 4 endpoints only ever reaches those 2 (readiness from the
 * triton health dialect); no endpoint with the model ready → UNAVAILABLE naming it; a TorchServe
 * cluster refuses a model it does not list; `explain: true` adds the `fulcrum-route` trailer and
 * `fulcrum_route_decisions_total` counts the decisions. Runs on both engines (grpcConfig).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { torchserveService, tritonService } from "../../src/protos/inference-protos.js";
import { SimTorchServeWorker } from "../../src/sim/sim-torchserve-worker.js";
import { SimTritonWorker } from "../../src/sim/sim-triton-worker.js";
import { Teardown, grpcConfig } from "../helpers/grpc-client.js";
import { call, clientOf, inferWho, predictWho } from "../helpers/inference-client.js";
import { metricValue, startFulcrum, waitFor } from "../helpers/harness.js";

const HEALTH =
  "{ type: triton, interval: 100ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 1 }";

async function tritonWorkers(own: Teardown, names: readonly string[]): Promise<SimTritonWorker[]> {
  const workers: SimTritonWorker[] = [];
  for (const name of names) {
    const w = own.add(new SimTritonWorker({ name, models: ["simple", "other"] }), (x) => x.close());
    await w.listen("127.0.0.1", 0);
    workers.push(w);
  }
  return workers;
}

function addressOf(w: SimTritonWorker | SimTorchServeWorker): string {
  return `127.0.0.1:${w.port}`;
}

/** The `fulcrum-route` trailer of one ModelInfer call. */
function routeOf(
  client: grpc.Client,
  model: string,
): Promise<{ code: grpc.status; route: string | undefined }> {
  return new Promise((resolve) => {
    const c = client as unknown as Record<
      string,
      (req: unknown, opts: grpc.CallOptions, cb: () => void) => grpc.ClientUnaryCall
    >;
    const unary = c["ModelInfer"] as (
      req: unknown,
      opts: grpc.CallOptions,
      cb: () => void,
    ) => grpc.ClientUnaryCall;
    const started = unary.call(
      client,
      { model_name: model, id: "x", raw_input_contents: [Buffer.from("in")] },
      { deadline: Date.now() + 10_000 },
      () => undefined,
    );
    started.on("status", (s: grpc.StatusObject) =>
      resolve({ code: s.code, route: s.metadata.get("fulcrum-route")[0]?.toString() }),
    );
  });
}

describe("inference: model-aware routing", { timeout: 60_000 }, () => {
  it("a model ready on 2 of 4 endpoints only ever reaches those 2; explain names the route", async () => {
    const own = new Teardown();
    try {
      const workers = await tritonWorkers(own, ["a", "b", "c", "d"]);
      workers[2]!.setModelReady("simple", false);
      workers[3]!.setModelReady("simple", false);
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            name: "triton",
            policy: "round_robin",
            healthCheck: HEALTH,
            extra: ["models: [{ name: simple }, { name: other }]", "explain: true"],
            endpoints: workers.map(addressOf),
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const models = f.fulcrum.cluster("triton").models;
      await waitFor(
        () =>
          !models.isReady(addressOf(workers[2]!), { name: "simple", version: "" }) &&
          !models.isReady(addressOf(workers[3]!), { name: "simple", version: "" }),
        5000,
        "c and d counted not ready for simple",
      );
      const client = own.add(clientOf(tritonService(), f), (c) => c.close());
      const counts: Record<string, number> = {};
      for (let i = 0; i < 100; i++) {
        const who = await inferWho(client, "simple");
        counts[who] = (counts[who] ?? 0) + 1;
      }
      assert.deepEqual(counts, { a: 50, b: 50 }, "round robin over the two endpoints with the model ready");
      // Another model ready everywhere still uses all four.
      const others: Record<string, number> = {};
      for (let i = 0; i < 40; i++) {
        const who = await inferWho(client, "other");
        others[who] = (others[who] ?? 0) + 1;
      }
      assert.deepEqual(Object.keys(others).sort(), ["a", "b", "c", "d"]);
      const routed = await routeOf(client, "simple");
      assert.equal(routed.code, grpc.status.OK);
      assert.match(routed.route ?? "", /^endpoint=127\.0\.0\.1:\d+;policy=round_robin;reason=model$/);
      assert.ok(
        [addressOf(workers[0]!), addressOf(workers[1]!)].includes(
          /endpoint=([^;]+)/.exec(routed.route ?? "")?.[1] ?? "",
        ),
      );
      assert.equal(
        await metricValue(f.registry, "fulcrum_route_decisions_total", {
          cluster: "triton",
          reason: "model",
        }),
        141,
      );
    } finally {
      await own.run();
    }
  });

  it("no endpoint with the model ready → UNAVAILABLE naming the model; readiness back → served", async () => {
    const own = new Teardown();
    try {
      const workers = await tritonWorkers(own, ["a", "b"]);
      for (const w of workers) w.setModelReady("simple", false);
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            name: "triton",
            healthCheck: HEALTH,
            extra: ["models: [{ name: simple }]"],
            endpoints: workers.map(addressOf),
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const models = f.fulcrum.cluster("triton").models;
      await waitFor(
        () => workers.every((w) => !models.isReady(addressOf(w), { name: "simple", version: "" })),
        5000,
        "simple counted not ready everywhere",
      );
      const client = own.add(clientOf(tritonService(), f), (c) => c.close());
      const r = await call(client, "ModelInfer", { model_name: "simple", id: "x" });
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.code, grpc.status.UNAVAILABLE);
        assert.match(r.details, /model "simple"/);
      }
      assert.equal(workers[0]!.calls + workers[1]!.calls, 0);
      workers[1]!.setModelReady("simple", true);
      await waitFor(
        () => models.isReady(addressOf(workers[1]!), { name: "simple", version: "" }),
        5000,
        "b ready",
      );
      assert.equal(await inferWho(client, "simple"), "b");
    } finally {
      await own.run();
    }
  });

  it("a TorchServe cluster serves only the models it lists", async () => {
    const own = new Teardown();
    try {
      const w = own.add(new SimTorchServeWorker({ name: "t" }), (x) => x.close());
      await w.listen("127.0.0.1", 0);
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            name: "ts",
            healthCheck: "{ type: torchserve, interval: 100ms, timeout: 200ms }",
            extra: ["models: [{ name: simple }]"],
            endpoints: [addressOf(w)],
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const client = own.add(clientOf(torchserveService(), f), (c) => c.close());
      assert.equal(await predictWho(client), "t");
      const r = await call(client, "Predictions", {
        model_name: "unlisted",
        input: { data: Buffer.from("x") },
      });
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.code, grpc.status.UNAVAILABLE);
        assert.match(r.details, /model "unlisted" is not among cluster "ts"'s models/);
      }
    } finally {
      await own.run();
    }
  });

  it("threads: 2 — model readiness reaches every worker thread", async () => {
    const own = new Teardown();
    try {
      const workers = await tritonWorkers(own, ["a", "b", "c", "d"]);
      workers[0]!.setModelReady("simple", false);
      workers[3]!.setModelReady("simple", false);
      const yaml = grpcConfig({
        name: "triton",
        policy: "round_robin",
        healthCheck: HEALTH,
        extra: ["models: [{ name: simple }]"],
        endpoints: workers.map(addressOf),
      });
      const f = own.add(await startFulcrum(`threads: 2\n${yaml}`), (x) => x.fulcrum.stop(0));
      const models = f.fulcrum.cluster("triton").models;
      await waitFor(
        () =>
          !models.isReady(addressOf(workers[0]!), { name: "simple", version: "" }) &&
          !models.isReady(addressOf(workers[3]!), { name: "simple", version: "" }),
        5000,
        "a and d counted not ready",
      );
      // Eight connections: the kernel spreads them over both threads.
      const clients = Array.from({ length: 8 }, () =>
        own.add(clientOf(tritonService(), f), (c) => c.close()),
      );
      const counts: Record<string, number> = {};
      for (let i = 0; i < 80; i++) {
        const who = await inferWho(clients[i % clients.length]!, "simple");
        counts[who] = (counts[who] ?? 0) + 1;
      }
      assert.deepEqual(Object.keys(counts).sort(), ["b", "c"], JSON.stringify(counts));
    } finally {
      await own.run();
    }
  });

  it("a ModelStreamInfer stream is routed by its first message's model", async () => {
    const own = new Teardown();
    try {
      const workers = await tritonWorkers(own, ["a", "b", "c"]);
      workers[0]!.setModelReady("simple", false);
      workers[1]!.setModelReady("simple", false);
      const f = own.add(
        await startFulcrum(
          grpcConfig({
            name: "triton",
            policy: "round_robin",
            healthCheck: HEALTH,
            extra: ["models: [{ name: simple }]"],
            endpoints: workers.map(addressOf),
          }),
        ),
        (x) => x.fulcrum.stop(0),
      );
      const models = f.fulcrum.cluster("triton").models;
      await waitFor(
        () => [0, 1].every((i) => !models.isReady(addressOf(workers[i]!), { name: "simple", version: "" })),
        5000,
        "a and b counted not ready",
      );
      const client = own.add(clientOf(tritonService(), f), (c) => c.close());
      const open = (
        client as unknown as Record<string, () => grpc.ClientDuplexStream<unknown, Record<string, unknown>>>
      )["ModelStreamInfer"] as () => grpc.ClientDuplexStream<unknown, Record<string, unknown>>;
      for (let s = 0; s < 6; s++) {
        const stream = open.call(client);
        const answers: string[] = [];
        const done = new Promise<void>((resolve, reject) => {
          stream.on("data", (m: Record<string, unknown>) => {
            const r = m["infer_response"] as
              { parameters?: Record<string, { string_param?: string }> } | undefined;
            answers.push(r?.parameters?.["worker"]?.string_param ?? `error: ${String(m["error_message"])}`);
          });
          stream.on("end", () => resolve());
          stream.on("error", reject);
        });
        for (let i = 0; i < 5; i++)
          stream.write({ model_name: "simple", id: String(i), raw_input_contents: [Buffer.from("x")] });
        stream.end();
        await done;
        assert.deepEqual(answers, ["c", "c", "c", "c", "c"]);
      }
    } finally {
      await own.run();
    }
  });
});
