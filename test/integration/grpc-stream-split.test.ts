/**
 * Per-request balancing inside one `ModelStreamInfer` stream (`listeners[].stream_balancing:
 * per_request`, src/grpc/stream-split.ts) with grpc-js Triton clients and simulated workers: 100
 * requests of one stream spread 25/25/25/25 over four workers (per_stream: all on one), with 32 KiB
 * each way per request, so every byte's flow-control window has to come back; ten interleaved
 * sequences each stay on one worker, in order, and never reach a worker that did not start them;
 * prompt-prefix affinity picks each request on its own (a conversation's turns on one worker);
 * decoupled responses keep their `triton_final_response` flags and a worker's in-band error passes
 * through; Fulcrum's own refusal of one request (every endpoint at its cap, no queue) becomes an
 * in-band error while the others finish; cancelling the client's stream cancels every upstream one.
 * Runs on both engines (grpcConfig).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { tritonService } from "../../src/protos/inference-protos.js";
import { SimLlmWorker, bytesElement } from "../../src/sim/sim-llm-worker.js";
import { SimTritonWorker } from "../../src/sim/sim-triton-worker.js";
import { MAX_LANES } from "../../src/grpc/stream-split.js";
import { Teardown, grpcConfig } from "../helpers/grpc-client.js";
import { clientOf } from "../helpers/inference-client.js";
import { startFulcrum, waitFor, type StartedFulcrum } from "../helpers/harness.js";

const PER_REQUEST = ["stream_balancing: per_request"];

interface Answer {
  infer_response?: {
    id?: string;
    parameters?: Record<string, { string_param?: string; bool_param?: boolean }>;
    raw_output_contents?: Buffer[];
  } | null;
  error_message?: string;
}

interface OpenStream {
  readonly call: grpc.ClientDuplexStream<unknown, Answer>;
  readonly answers: Answer[];
  /** The stream's status once it ends. */
  readonly done: Promise<grpc.status>;
}

function openStream(own: Teardown, f: StartedFulcrum): OpenStream {
  const client = own.add(clientOf(tritonService(), f), (c) => c.close());
  const call = (
    client as unknown as { ModelStreamInfer: () => grpc.ClientDuplexStream<unknown, Answer> }
  ).ModelStreamInfer();
  const answers: Answer[] = [];
  call.on("data", (a: Answer) => answers.push(a));
  const done = new Promise<grpc.status>((resolve) => {
    call.on("status", (s: grpc.StatusObject) => resolve(s.code));
    call.on("error", () => undefined);
  });
  return { call, answers, done };
}

const workerOf = (a: Answer): string => a.infer_response?.parameters?.["worker"]?.string_param ?? "?";

function tally(answers: readonly Answer[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) out[workerOf(a)] = (out[workerOf(a)] ?? 0) + 1;
  return out;
}

async function tritonWorkers(own: Teardown, latencyMs: number): Promise<SimTritonWorker[]> {
  return Promise.all(
    ["a", "b", "c", "d"].map(async (name) => {
      const w = own.add(new SimTritonWorker({ name, baseLatencyMs: latencyMs }), (x) => x.close());
      await w.listen("127.0.0.1", 0);
      return w;
    }),
  );
}

async function llmWorkers(own: Teardown, decodeMsPerToken: number): Promise<SimLlmWorker[]> {
  return Promise.all(
    ["a", "b", "c", "d"].map(async (name) => {
      const w = own.add(new SimLlmWorker({ name, decodeMsPerToken, prefillMsPerBlock: 0 }), (x) => x.close());
      await w.listen("127.0.0.1", 0);
      return w;
    }),
  );
}

async function fulcrumOver(
  own: Teardown,
  workers: readonly { readonly port: number }[],
  options: { policy?: string; extra?: string[]; listener?: string[] } = {},
): Promise<StartedFulcrum> {
  const config = grpcConfig(
    {
      name: "triton",
      policy: options.policy ?? "round_robin",
      endpoints: workers.map((w) => `127.0.0.1:${w.port}`),
      ...(options.extra ? { extra: options.extra } : {}),
    },
    { fields: options.listener ?? PER_REQUEST },
  );
  return own.add(await startFulcrum(config), (x) => x.fulcrum.stop(0));
}

const llmRequest = (id: string, tokens: number, model = "llm"): Record<string, unknown> => ({
  model_name: model,
  id,
  inputs: [{ name: "text_input", datatype: "BYTES", shape: [1, 1] }],
  raw_input_contents: [bytesElement(`prompt of ${id}`)],
  parameters: { max_tokens: { int64_param: String(tokens) } },
});

describe("grpc: per-request balancing inside ModelStreamInfer", { timeout: 60_000 }, () => {
  it("100 requests of one stream spread 25/25/25/25 (per_stream: 100 on one), 32 KiB each way", async () => {
    const own = new Teardown();
    try {
      const workers = await tritonWorkers(own, 1);
      const payload = Buffer.alloc(32 * 1024, 0x5a);
      const run = async (f: StartedFulcrum): Promise<Answer[]> => {
        const s = openStream(own, f);
        for (let i = 0; i < 100; i++) {
          s.call.write({ model_name: "simple", id: String(i), raw_input_contents: [payload] });
        }
        s.call.end();
        assert.equal(await s.done, grpc.status.OK);
        return s.answers;
      };
      const split = await run(await fulcrumOver(own, workers));
      assert.equal(split.length, 100);
      assert.deepEqual(tally(split), { a: 25, b: 25, c: 25, d: 25 });
      const ids = split.map((a) => Number(a.infer_response?.id)).sort((x, y) => x - y);
      assert.deepEqual(
        ids,
        Array.from({ length: 100 }, (_, i) => i),
      );
      for (const a of split) assert.ok(a.infer_response?.raw_output_contents?.[0]?.equals(payload));

      const pinned = await run(await fulcrumOver(own, workers, { listener: [] }));
      assert.equal(pinned.length, 100);
      assert.deepEqual(Object.values(tally(pinned)), [100]);
    } finally {
      await own.run();
    }
  });

  it(`one stream makes at most ${MAX_LANES} upstream streams at once: 250 requests, all answered`, async () => {
    const own = new Teardown();
    try {
      const workers = await tritonWorkers(own, 300);
      const s = openStream(own, await fulcrumOver(own, workers));
      // The calls in service at the workers, sampled: at most the bound at any moment (unbounded: 250).
      let most = 0;
      const sampler = setInterval(() => {
        most = Math.max(
          most,
          workers.reduce((n, w) => n + w.active, 0),
        );
      }, 2);
      for (let i = 0; i < 250; i++) s.call.write({ model_name: "simple", id: String(i) });
      s.call.end();
      const status = await s.done;
      clearInterval(sampler);
      assert.equal(status, grpc.status.OK);
      assert.equal(s.answers.filter((a) => a.infer_response).length, 250);
      assert.ok(most <= MAX_LANES && most >= MAX_LANES / 2, `at most ${most} in service at once`);
    } finally {
      await own.run();
    }
  });

  it("10 interleaved sequences: each on one worker, in order, none on a worker that did not start it", async () => {
    const own = new Teardown();
    try {
      const workers = await tritonWorkers(own, 1);
      const s = openStream(own, await fulcrumOver(own, workers));
      const SEQUENCES = 10;
      const STEPS = 10;
      for (let k = 0; k < STEPS; k++) {
        for (let q = 1; q <= SEQUENCES; q++) {
          const parameters: Record<string, unknown> = { sequence_id: { int64_param: String(q) } };
          if (k === 0) parameters["sequence_start"] = { bool_param: true };
          if (k === STEPS - 1) parameters["sequence_end"] = { bool_param: true };
          s.call.write({ model_name: "simple", id: `${q}:${k}`, parameters });
        }
      }
      s.call.end();
      assert.equal(await s.done, grpc.status.OK);
      assert.deepEqual(
        s.answers.filter((a) => a.error_message),
        [],
      );
      assert.equal(s.answers.length, SEQUENCES * STEPS);
      const bySequence = new Map<string, { workers: Set<string>; steps: number[] }>();
      for (const a of s.answers) {
        const [q, k] = (a.infer_response?.id ?? "").split(":");
        const entry = bySequence.get(q as string) ?? { workers: new Set<string>(), steps: [] };
        entry.workers.add(workerOf(a));
        entry.steps.push(Number(k));
        bySequence.set(q as string, entry);
      }
      assert.equal(bySequence.size, SEQUENCES);
      const perWorker: Record<string, number> = {};
      for (const [q, entry] of bySequence) {
        assert.equal(entry.workers.size, 1, `sequence ${q} reached ${[...entry.workers].join(", ")}`);
        assert.deepEqual(
          entry.steps,
          Array.from({ length: STEPS }, (_, i) => i),
          `sequence ${q} order`,
        );
        const w = [...entry.workers][0] as string;
        perWorker[w] = (perWorker[w] ?? 0) + 1;
      }
      // Round robin over ten new lanes: 3/3/2/2.
      assert.deepEqual(Object.values(perWorker).sort(), [2, 2, 3, 3]);
      assert.equal(
        workers.reduce((n, w) => n + w.sequenceErrors, 0),
        0,
      );
    } finally {
      await own.run();
    }
  });

  it("prefix affinity per request: each conversation's turns on one worker, four conversations on four", async () => {
    const own = new Teardown();
    try {
      const workers = await tritonWorkers(own, 1);
      const f = await fulcrumOver(own, workers, {
        policy: "least_connections",
        extra: ["affinity: { key: prompt_prefix, input: text_input, block_bytes: 64 }"],
      });
      const s = openStream(own, f);
      const system = (c: number): string => `System ${c}: you answer questions about topic ${c}. `.repeat(12);
      const turn = (c: number, k: number): Record<string, unknown> => {
        let prompt = system(c);
        for (let i = 0; i <= k; i++) prompt += `\nUser: question ${i} of conversation ${c}`;
        return {
          model_name: "simple",
          id: `${c}:${k}`,
          inputs: [{ name: "text_input", datatype: "BYTES", shape: [1, 1] }],
          raw_input_contents: [bytesElement(prompt)],
        };
      };
      // Each turn in another order: the policy alone (ties in rotation) would follow the order.
      const orders = [
        [0, 1, 2, 3],
        [3, 2, 1, 0],
        [1, 3, 0, 2],
      ];
      for (const [k, order] of orders.entries()) {
        for (const c of order) s.call.write(turn(c, k));
        // The next turn of every conversation after this one's answers (as a chat client does).
        await waitFor(() => s.answers.length === 4 * (k + 1), 10_000, `turn ${k} answered`);
      }
      s.call.end();
      assert.equal(await s.done, grpc.status.OK);
      const byConversation = new Map<string, Set<string>>();
      for (const a of s.answers) {
        const c = (a.infer_response?.id ?? "").split(":")[0] as string;
        byConversation.set(c, (byConversation.get(c) ?? new Set()).add(workerOf(a)));
      }
      const homes = [...byConversation.values()].map((w) => [...w].join(","));
      assert.equal(homes.length, 4);
      for (const home of homes) assert.ok(!home.includes(","), `a conversation reached ${home}`);
      assert.equal(new Set(homes).size, 4, `homes ${homes.join(" ")}`);
    } finally {
      await own.run();
    }
  });

  it("decoupled responses keep their final flags; a worker's in-band error passes through", async () => {
    const own = new Teardown();
    try {
      const workers = await llmWorkers(own, 2);
      const s = openStream(own, await fulcrumOver(own, workers, { policy: "least_connections" }));
      for (let i = 0; i < 8; i++) s.call.write(llmRequest(`r${i}`, 12));
      s.call.write(llmRequest("bad", 12, "other"));
      s.call.end();
      assert.equal(await s.done, grpc.status.OK);
      const errors = s.answers.filter((a) => a.error_message).map((a) => a.error_message);
      assert.deepEqual(errors, ["Request for unknown model: 'other' is not found"]);
      const tokens = s.answers.filter((a) => a.infer_response);
      assert.equal(tokens.length, 8 * 12);
      for (let i = 0; i < 8; i++) {
        const mine = tokens.filter((a) => a.infer_response?.id === `r${i}`);
        const finals = mine.map((a) => a.infer_response?.parameters?.["triton_final_response"]?.bool_param);
        assert.deepEqual(finals, [...Array<boolean>(11).fill(false), true], `r${i}`);
        assert.equal(new Set(mine.map(workerOf)).size, 1);
      }
      // Least connections over eight concurrent requests: two on each worker.
      assert.deepEqual(
        workers.map((w) => w.completed),
        [2, 2, 2, 2],
      );
    } finally {
      await own.run();
    }
  });

  it("a request Fulcrum refuses becomes an in-band error; the stream goes on", async () => {
    const own = new Teardown();
    try {
      const workers = await llmWorkers(own, 2);
      const f = await fulcrumOver(own, workers, {
        policy: "least_connections",
        extra: ["max_active_per_endpoint: 1"],
      });
      const s = openStream(own, f);
      for (let i = 0; i < 5; i++) s.call.write(llmRequest(`r${i}`, 30));
      s.call.end();
      assert.equal(await s.done, grpc.status.OK);
      const errors = s.answers.filter((a) => a.error_message).map((a) => a.error_message ?? "");
      assert.equal(errors.length, 1);
      assert.match(errors[0] as string, /^RESOURCE_EXHAUSTED: cluster "triton" is overloaded/);
      assert.equal(s.answers.filter((a) => a.infer_response).length, 4 * 30);
      assert.deepEqual(
        workers.map((w) => w.completed),
        [1, 1, 1, 1],
      );
    } finally {
      await own.run();
    }
  });

  it("cancelling the client's stream cancels every upstream stream", async () => {
    const own = new Teardown();
    try {
      const workers = await llmWorkers(own, 5);
      const s = openStream(own, await fulcrumOver(own, workers, { policy: "least_connections" }));
      for (let i = 0; i < 4; i++) s.call.write(llmRequest(`r${i}`, 2000));
      await waitFor(() => workers.every((w) => w.active === 1), 10_000);
      await waitFor(() => s.answers.length >= 8, 10_000);
      s.call.cancel();
      assert.equal(await s.done, grpc.status.CANCELLED);
      await waitFor(() => workers.every((w) => w.active === 0), 10_000);
      assert.deepEqual(
        workers.map((w) => w.completed),
        [0, 0, 0, 0],
      );
    } finally {
      await own.run();
    }
  });
});
