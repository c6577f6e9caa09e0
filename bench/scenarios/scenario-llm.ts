/**
 * Scenario `llm`: conversations on an LLM fleet with prefix caches. Four simulated LLM servers
 * (src/sim/sim-llm-worker.ts: 4 requests generating at once, 4 ms per output token, 1 ms of prefill
 * per 64-byte prompt block missing from a 2,048-block prefix cache, which keeps a finished request's
 * prompt and answer) behind: HAProxy `leastconn`, Fulcrum `least_connections`, Fulcrum
 * `least_loaded`, and Fulcrum with prompt-prefix affinity.
 *
 * The workload is seeded: 20 system prompts of 512 bytes; sessions (a system prompt and a user) start
 * at a fixed rate (open loop) and each runs 5 turns, a turn's prompt being the system prompt, the
 * history so far (every earlier question and the model's answers) and a new question of 1.5 KiB (a
 * question with the context it pastes); the user reads each answer for 500 ms before the next turn.
 * Each turn is one decoupled `ModelStreamInfer` request of 16 output tokens. The fleet's caches
 * together hold the live conversations, one worker's cache does not: the regime where routing by
 * prefix matters. Reported per variant: the workers' prefix-cache hit rate (blocks), time to first
 * token p50 / p99, output tokens per second, and the per-worker spread of requests (the busiest worker
 * over the mean). Then one client stream through per_stream and per_request balancing
 * (scenario-llm-stream.ts).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { tritonService } from "../../src/protos/inference-protos.js";
import { seededRandom } from "../../src/balancer/random-seeded.js";
import { LatencyHistogram, type LatencySummary } from "../loadgen/loadgen-histogram.js";
import { TOOLS, ensureTools } from "../proc/proc-debian.js";
import { startTarget } from "../targets/target-start.js";
import type { ListenerSpec, Policy, RunningTarget, TargetName } from "../targets/target.js";
import { startWorkerPool, type WorkerPool } from "../worker/worker-pool.js";
import type { WorkerCounters } from "../worker/worker-main.js";
import { bytesElement } from "../../src/sim/sim-llm-worker.js";
import {
  STREAM_VARIANTS,
  measureOneStream,
  type LlmStreamPoint,
  type StreamVariant,
} from "./scenario-llm-stream.js";

export const LLM_WORKERS = 4;
export const LLM_SLOTS = 4;
export const LLM_MS_PER_TOKEN = 4;
export const LLM_TOKENS = 16;
export const SYSTEM_PROMPTS = 20;
export const TURNS = 5;
/** Sessions started per second: about 80 turns/s, the fleet's KV slots half busy or more. */
export const LLM_SESSION_RATE = 16;
export const SYSTEM_BYTES = 512;
/** A user's turn: a question with the context it pastes (about 384 tokens). */
export const MESSAGE_BYTES = 1536;
/** Between an answer and the next question: the user reads. */
export const THINK_MS = 500;
const TURN_DEADLINE_MS = 10_000;
const CHANNELS = 4;
/** Prefix cache per worker, in blocks: about a third of the live conversations' blocks at 16 sessions/s. */
export const LLM_CACHE_BLOCKS = 2048;

interface Variant {
  readonly name: string;
  readonly target: TargetName;
  readonly policy: Policy;
  readonly prefix?: boolean;
}

const VARIANTS: readonly Variant[] = [
  { name: "haproxy leastconn", target: "haproxy", policy: "least_connections" },
  { name: "fulcrum least_connections", target: "fulcrum", policy: "least_connections" },
  { name: "fulcrum least_loaded", target: "fulcrum", policy: "least_loaded" },
  { name: "fulcrum prefix affinity", target: "fulcrum", policy: "least_connections", prefix: true },
];

export interface LlmOptions {
  readonly targets: readonly TargetName[];
  readonly repeat: number;
  readonly seconds: number;
  /** Sessions started per second. */
  readonly sessionRate: number;
  readonly dir: string;
  readonly variants?: readonly string[] | undefined;
  readonly say: (line: string) => void;
}

export interface LlmPoint {
  readonly variant: string;
  readonly rep: number;
  readonly sessions: number;
  readonly requests: number;
  readonly failed: number;
  /** Prompt blocks the workers found in their caches, over all prompt blocks they saw. */
  readonly hitRate: number;
  readonly ttft: LatencySummary;
  readonly tokensPerSecond: number;
  /** Requests per worker, and the busiest worker over the mean. */
  readonly perWorker: readonly number[];
  readonly spread: number;
}

export interface LlmResult {
  readonly seconds: number;
  readonly sessionRate: number;
  readonly points: LlmPoint[];
  /** The single-stream part (scenario-llm-stream.ts). */
  readonly streams: LlmStreamPoint[];
  readonly problems: string[];
}

/** Deterministic text of `bytes` bytes for `tag` (distinct tags differ from their first bytes). */
function text(tag: string, bytes: number): string {
  const unit = `${tag}: lorem ipsum dolor sit amet. `;
  return unit.repeat(Math.ceil(bytes / unit.length)).slice(0, bytes);
}

export async function runLlm(o: LlmOptions): Promise<LlmResult> {
  const variants = VARIANTS.filter(
    (v) => o.targets.includes(v.target) && (!o.variants || o.variants.some((f) => v.name.includes(f))),
  );
  const streamVariants = STREAM_VARIANTS.filter(
    (v) => o.targets.includes("fulcrum") && (!o.variants || o.variants.some((f) => v.name.includes(f))),
  );
  if (variants.length === 0 && streamVariants.length === 0)
    throw new Error("llm: --targets/--policies left no variant");
  if (variants.some((v) => v.target === "haproxy")) ensureTools([TOOLS.haproxy]);
  const points: LlmPoint[] = [];
  const streams: LlmStreamPoint[] = [];
  const problems: string[] = [];
  for (let rep = 0; rep < o.repeat; rep++) {
    for (const v of streamVariants) streams.push(await runOneStream(v, rep, o, problems));
    for (const v of variants) {
      // A fresh fleet per point: every variant starts with cold caches.
      const pool = await startFleet();
      const listener: ListenerSpec = {
        name: "llm",
        protocol: "grpc",
        upstreams: pool.workers.map((w) => w.address),
        policy: v.policy,
        prefixAffinity: v.prefix,
      };
      const dir = join(o.dir, `llm-${rep}-${points.length}`);
      mkdirSync(dir, { recursive: true });
      let target: RunningTarget | undefined;
      try {
        target = await startTarget(v.target, [listener], { dir });
        const p = await measure(v, rep, pool, `127.0.0.1:${target.port("llm")}`, o);
        points.push(p);
        if (p.requests === 0 || p.failed > 0)
          problems.push(`${v.name}: ${p.failed} of ${p.requests} turns failed`);
        o.say(
          `llm ${v.name.padEnd(28)} hit rate ${(p.hitRate * 100).toFixed(0)} %, TTFT p50 ${p.ttft.p50Ms.toFixed(1)} ms ` +
            `p99 ${p.ttft.p99Ms.toFixed(1)} ms, ${p.tokensPerSecond.toFixed(0)} tokens/s, ` +
            `spread ${p.spread.toFixed(2)} (${p.perWorker.join("/")}), ${p.failed} failed`,
        );
      } finally {
        await target?.stop();
        await pool.stop();
      }
    }
  }
  return { seconds: o.seconds, sessionRate: o.sessionRate, points, streams, problems };
}

function startFleet(): Promise<WorkerPool> {
  return startWorkerPool(
    Array.from({ length: LLM_WORKERS }, (_, i) => ({
      name: `llm-${i}`,
      kind: "llm" as const,
      baseLatencyMs: LLM_MS_PER_TOKEN,
      slots: LLM_SLOTS,
      prefillMsPerBlock: 1,
      cacheBlocks: LLM_CACHE_BLOCKS,
    })),
  );
}

async function runOneStream(
  v: StreamVariant,
  rep: number,
  o: LlmOptions,
  problems: string[],
): Promise<LlmStreamPoint> {
  const pool = await startFleet();
  const listener: ListenerSpec = {
    name: "llm",
    protocol: "grpc",
    upstreams: pool.workers.map((w) => w.address),
    policy: "least_connections",
    perRequest: v.perRequest,
  };
  const dir = join(o.dir, `llm-stream-${rep}-${v.perRequest ? "split" : "whole"}`);
  mkdirSync(dir, { recursive: true });
  let target: RunningTarget | undefined;
  try {
    target = await startTarget("fulcrum", [listener], { dir });
    const p = await measureOneStream(v, rep, pool, `127.0.0.1:${target.port("llm")}`, o.seconds);
    if (p.completed === 0 || p.failed > 0)
      problems.push(`${v.name}: ${p.failed} failed, ${p.completed} completed`);
    o.say(
      `llm ${v.name.padEnd(28)} ${p.requestsPerSecond.toFixed(1)} requests/s, ` +
        `${p.tokensPerSecond.toFixed(0)} tokens/s (${p.perWorker.join("/")}), ${p.failed} failed`,
    );
    return p;
  } finally {
    await target?.stop();
    await pool.stop();
  }
}

async function measure(
  v: Variant,
  rep: number,
  pool: WorkerPool,
  address: string,
  o: LlmOptions,
): Promise<LlmPoint> {
  const Client = tritonService();
  // A subchannel pool of its own per channel: CHANNELS distinct HTTP/2 connections.
  const clients = Array.from(
    { length: CHANNELS },
    () => new Client(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }),
  );
  const random = seededRandom(1000 + rep);
  const systems = Array.from({ length: SYSTEM_PROMPTS }, (_, i) => text(`system ${i}`, SYSTEM_BYTES));
  const ttft = new LatencyHistogram();
  let requests = 0;
  let failed = 0;
  let tokens = 0;
  const before = await pool.counters();
  const started = performance.now();
  const sessions: Promise<void>[] = [];
  const total = Math.round(o.seconds * o.sessionRate);
  for (let s = 0; s < total; s++) {
    const at = started + (s * 1000) / o.sessionRate;
    const wait = at - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const system = systems[Math.floor(random() * systems.length)] as string;
    const client = clients[s % clients.length] as grpc.Client;
    sessions.push(
      (async () => {
        let history = system;
        for (let turn = 0; turn < TURNS; turn++) {
          history += `\n${text(`user ${s} question ${turn}`, MESSAGE_BYTES)}`;
          requests++;
          const r = await streamTurn(client, history);
          if (!r.ok) {
            failed++;
            return;
          }
          ttft.recordMs(r.firstMs);
          tokens += r.tokens;
          // The model's answer joins the history (the worker cached it with the prompt), then the
          // user reads it before asking again.
          history += r.answer;
          if (turn < TURNS - 1) await new Promise((resolve) => setTimeout(resolve, THINK_MS));
        }
      })(),
    );
  }
  await Promise.all(sessions);
  const seconds = (performance.now() - started) / 1000;
  for (const c of clients) c.close();
  const after = await pool.counters();
  const delta = (k: keyof WorkerCounters, i: number): number =>
    Number(after[i]?.[k] ?? 0) - Number(before[i]?.[k] ?? 0);
  const hits = after.reduce((n, _, i) => n + delta("cacheHitBlocks", i), 0);
  const misses = after.reduce((n, _, i) => n + delta("cacheMissBlocks", i), 0);
  const perWorker = after.map((_, i) => delta("requests", i));
  const mean = perWorker.reduce((a, b) => a + b, 0) / Math.max(1, perWorker.length);
  return {
    variant: v.name,
    rep,
    sessions: total,
    requests,
    failed,
    hitRate: hits + misses === 0 ? 0 : hits / (hits + misses),
    ttft: ttft.summary(),
    tokensPerSecond: tokens / seconds,
    perWorker,
    spread: mean === 0 ? 0 : Math.max(...perWorker) / mean,
  };
}

interface StreamedResponse {
  infer_response?: {
    parameters?: Record<string, { bool_param?: boolean }>;
    raw_output_contents?: Buffer[];
  } | null;
  error_message?: string;
}

/** One turn: a ModelStreamInfer request; its time to first token and tokens, or not ok. */
function streamTurn(
  client: grpc.Client,
  prompt: string,
): Promise<{ ok: true; firstMs: number; tokens: number; answer: string } | { ok: false }> {
  return new Promise((resolve) => {
    const sent = performance.now();
    const stream = (
      client as unknown as {
        ModelStreamInfer: (o: grpc.CallOptions) => grpc.ClientDuplexStream<unknown, StreamedResponse>;
      }
    ).ModelStreamInfer({ deadline: Date.now() + TURN_DEADLINE_MS });
    let firstMs = -1;
    let tokens = 0;
    let final = false;
    let answer = "";
    stream.on("data", (r: StreamedResponse) => {
      if (r.error_message) return;
      if (firstMs < 0) firstMs = performance.now() - sent;
      tokens++;
      const raw = r.infer_response?.raw_output_contents?.[0];
      if (raw !== undefined && raw.length >= 4) answer += raw.toString("utf8", 4);
      if (r.infer_response?.parameters?.["triton_final_response"]?.bool_param) final = true;
    });
    stream.on("error", () => resolve({ ok: false }));
    stream.on("end", () =>
      resolve(final && firstMs >= 0 ? { ok: true, firstMs, tokens, answer } : { ok: false }),
    );
    stream.write({
      model_name: "llm",
      id: "turn",
      inputs: [{ name: "text_input", datatype: "BYTES", shape: [1, 1] }],
      raw_input_contents: [bytesElement(prompt)],
      parameters: { max_tokens: { int64_param: String(LLM_TOKENS) } },
    });
    stream.end();
  });
}
