/**
 * Prompt-prefix affinity through Fulcrum (`affinity.key: prompt_prefix`) with grpc-js Triton clients
 * and four simulated Triton workers: every turn of a conversation reaches the worker that served its
 * first turn (its prompt grows, its prefix stays), cold conversations spread evenly, the prompt is
 * found in raw_input_contents, in contents.bytes_contents and behind a 20 KiB input (past the first
 * DATA frame), and `fulcrum_route_decisions_total` counts prefix matches, cold picks and requests
 * whose prompt was not found (routed by the policy); under load, the bounded-load limit hands a hot
 * prefix over to the least active worker with exact counts. Runs on both engines (grpcConfig).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { tritonService } from "../../src/protos/inference-protos.js";
import { SimLlmWorker, bytesElement } from "../../src/sim/sim-llm-worker.js";
import { SimTritonWorker } from "../../src/sim/sim-triton-worker.js";
import { Teardown, grpcConfig } from "../helpers/grpc-client.js";
import { call, clientOf, type UnaryClient } from "../helpers/inference-client.js";
import { metricValue, startFulcrum, waitFor } from "../helpers/harness.js";

const AFFINITY =
  "{ key: prompt_prefix, input: text_input, block_bytes: 64, max_blocks: 256, balance_factor: 1.25, balance_slack: 0 }";
/** The same with the default slack of 2: a match stays until its endpoint holds 2 more. */
const AFFINITY_SLACK =
  "{ key: prompt_prefix, input: text_input, block_bytes: 64, max_blocks: 256, balance_factor: 1.25 }";

const tensor = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name,
  datatype: "BYTES",
  shape: [1, 1],
  ...extra,
});

type Encoding = "raw" | "contents" | "behind_image";

function request(prompt: string, encoding: Encoding = "raw"): Record<string, unknown> {
  const bytes = Buffer.from(prompt);
  if (encoding === "contents")
    return { model_name: "llm", inputs: [tensor("text_input", { contents: { bytes_contents: [bytes] } })] };
  if (encoding === "behind_image")
    return {
      model_name: "llm",
      inputs: [tensor("image"), tensor("text_input")],
      raw_input_contents: [bytesElement(Buffer.alloc(20 * 1024, 7)), bytesElement(bytes)],
    };
  return { model_name: "llm", inputs: [tensor("text_input")], raw_input_contents: [bytesElement(bytes)] };
}

async function who(client: UnaryClient, req: Record<string, unknown>): Promise<string> {
  const r = await call(client, "ModelInfer", req);
  if (!r.ok) return `!${grpc.status[r.code]}`;
  const params = r.res["parameters"] as Record<string, { string_param?: string }> | undefined;
  return params?.["worker"]?.string_param ?? "?";
}

/** A system prompt of its own per conversation (about 600 bytes: 9 blocks of 64). */
function system(c: number): string {
  return `System ${c}: you are assistant number ${c}. `.repeat(16).slice(0, 600);
}

/** Fulcrum with prompt-prefix affinity (least_connections otherwise) over `workers`, and a Triton client of it. */
async function startPrefixFulcrum(
  own: Teardown,
  workers: readonly { readonly port: number }[],
  affinity = AFFINITY,
) {
  const f = own.add(
    await startFulcrum(
      grpcConfig({
        name: "llm",
        policy: "least_connections",
        affinity,
        endpoints: workers.map((w) => `127.0.0.1:${w.port}`),
      }),
    ),
    (x) => x.fulcrum.stop(0),
  );
  const client = own.add(clientOf(tritonService(), f), (c) => c.close());
  return { f, client };
}

describe("inference: prompt-prefix affinity", { timeout: 60_000 }, () => {
  it("each conversation stays on one worker turn after turn; cold ones spread 2/2/2/2; both encodings", async () => {
    const own = new Teardown();
    try {
      const workers: SimTritonWorker[] = [];
      for (const name of ["a", "b", "c", "d"]) {
        const w = own.add(new SimTritonWorker({ name, models: ["llm"] }), (x) => x.close());
        await w.listen("127.0.0.1", 0);
        workers.push(w);
      }
      const { f, client } = await startPrefixFulcrum(own, workers);
      const history = Array.from({ length: 8 }, (_, c) => system(c));
      const served: string[][] = history.map(() => []);
      for (let turn = 0; turn < 3; turn++) {
        for (let c = 0; c < history.length; c++) {
          history[c] += `\nUser: question ${turn} of conversation ${c}?`;
          served[c]!.push(await who(client, request(history[c]!)));
          history[c] += `\nAssistant: answer ${turn}.`;
        }
      }
      for (let c = 0; c < served.length; c++)
        assert.equal(new Set(served[c]).size, 1, `conversation ${c}: ${served[c]!.join(",")}`);
      const perWorker: Record<string, number> = {};
      for (const s of served) perWorker[s[0]!] = (perWorker[s[0]!] ?? 0) + 1;
      assert.deepEqual(perWorker, { a: 2, b: 2, c: 2, d: 2 });

      // The same conversation in the other encodings, and behind a 20 KiB input, finds its worker.
      for (const encoding of ["contents", "behind_image"] as const)
        assert.equal(await who(client, request(history[3]!, encoding)), served[3]![0], encoding);

      // No text_input: the policy decides, counted as such.
      assert.notEqual(
        await who(client, { model_name: "llm", raw_input_contents: [bytesElement(Buffer.from("x"))] }),
        "?",
      );
      const decided = async (reason: string): Promise<number | undefined> =>
        metricValue(f.registry, "fulcrum_route_decisions_total", { cluster: "llm", reason });
      assert.equal(await decided("prefix_least_loaded"), 8);
      assert.equal(await decided("prefix"), 8 * 2 + 2);
      assert.equal(await decided("prompt_not_found"), 1);
    } finally {
      await own.run();
    }
  });

  /** Four LLM workers with long generations, Fulcrum, and the same hot prompt sent 3 times at once. */
  async function hotThree(own: Teardown, affinity: string) {
    const workers: SimLlmWorker[] = [];
    for (const name of ["a", "b", "c", "d"]) {
      // Long generations: the first three requests are all in flight when the next is picked.
      const w = own.add(new SimLlmWorker({ name, decodeMsPerToken: 5, outputTokens: 60 }), (x) => x.close());
      await w.listen("127.0.0.1", 0);
      workers.push(w);
    }
    const { f, client } = await startPrefixFulcrum(own, workers, affinity);
    const hot = request(system(42) + "\nUser: the same question");
    const calls: Promise<string>[] = [];
    for (let i = 0; i < 3; i++) {
      calls.push(who(client, hot));
      // Each pick sees the ones before it in flight.
      await waitFor(
        () => workers.reduce((n, w) => n + w.active, 0) === i + 1,
        5000,
        `request ${i + 1} generating`,
      );
    }
    const first = await Promise.all(calls);
    const decided = async (reason: string): Promise<number | undefined> =>
      metricValue(f.registry, "fulcrum_route_decisions_total", { cluster: "llm", reason });
    return { workers, f, client, hot, first, decided };
  }

  it("bounded load: the same hot prompt 3 times at once goes 1/1/1, then back to its first worker", async () => {
    const own = new Teardown();
    try {
      const { workers, f, client, hot, first, decided } = await hotThree(own, AFFINITY);
      // a: cold, least active; then a is at ceil(1.25 × 2 / 4) = 1 and b takes it; then a and b are
      // at ceil(1.25 × 3 / 4) = 1 and c takes it.
      assert.deepEqual(first, ["a", "b", "c"]);
      // Idle again (Fulcrum's counts too): all three hold the prefix; the tie goes to the first.
      const set = f.fulcrum.cluster("llm").endpoints;
      await waitFor(() => set.endpoints.every((e) => set.activeOf(e) === 0), 5000, "every stream released");
      assert.equal(await who(client, hot), "a");
      assert.equal(await decided("prefix_least_loaded"), 3);
      assert.equal(await decided("prefix"), 1);
      assert.deepEqual(
        workers.map((w) => [w.cacheHitBlocks, w.cacheMissBlocks]),
        [
          [9, 9],
          [0, 9],
          [0, 9],
          [0, 0],
        ],
      );
    } finally {
      await own.run();
    }
  });

  it("balance_slack (default 2): the hot prompt stays on its worker while it holds 2 more than the limit", async () => {
    const own = new Teardown();
    try {
      const { first, decided } = await hotThree(own, AFFINITY_SLACK);
      // a: cold; then a at 1, then at 2: under ceil(1.25 × 2 / 4) + 2 = 3 and ceil(1.25 × 3 / 4) + 2 = 3.
      assert.deepEqual(first, ["a", "a", "a"]);
      assert.equal(await decided("prefix_least_loaded"), 1);
      assert.equal(await decided("prefix"), 2);
    } finally {
      await own.run();
    }
  });
});
