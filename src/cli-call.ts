/**
 * `fulcrum call --address HOST:PORT [--method /pkg.Service/Method] [--count N] [--concurrency C]
 * [--metadata k=v ...] [--data TEXT] [--model NAME] [--deadline 1s] [--tcp]`: a tiny grpcurl for the
 * demo and for checking a deployment. N calls go over ONE HTTP/2 connection (at most C at a time), so
 * a listener that balances each stream shows it; each prints a line with its status and the worker that
 * answered, then a summary by status and by worker. Exit codes: 0 every call OK, 1 otherwise, 2 usage.
 *
 * Which worker answered: the name the answer carries (the simulated workers put theirs in the reply or
 * in an `x-worker` header), else the endpoint of Fulcrum's `fulcrum-route` trailer (clusters with
 * `explain: true`). With `--tcp`, N connections each send `--data`, half-close and print what came
 * back; the first line of it names the worker (the simulated TCP worker greets with its name).
 */
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { splitAddress } from "./balancer/endpoint-set.js";
import { callMethods, type CallMethod } from "./cli-call-methods.js";
import type { CallResult } from "./cli-call-result.js";
import { tcpCall } from "./cli-call-tcp.js";
import { durationMs } from "./config/config-units.js";
import { ROUTE_TRAILER } from "./grpc/inference-routing.js";

export const CALL_USAGE =
  "usage: fulcrum call --address HOST:PORT [--method /pkg.Service/Method] [--count N] [--concurrency C] [--metadata k=v ...] [--data TEXT] [--model NAME] [--deadline 5s] [--tcp]";

export const DEFAULT_METHOD = "/fulcrum.sim.Worker/Infer";

interface CallSpec {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly count: number;
  readonly concurrency: number;
  readonly deadlineMs: number;
  readonly data: string | undefined;
  readonly tcp: boolean;
  readonly method: CallMethod | undefined;
  readonly request: Record<string, unknown>;
  readonly metadata: grpc.Metadata;
}

class CallUsageError extends Error {}

function parseCallArgs(argv: string[]): CallSpec {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        address: { type: "string" },
        method: { type: "string" },
        count: { type: "string" },
        concurrency: { type: "string" },
        metadata: { type: "string", multiple: true },
        data: { type: "string" },
        model: { type: "string" },
        deadline: { type: "string" },
        tcp: { type: "boolean" },
      },
    });
  } catch (err) {
    throw new CallUsageError((err as Error).message);
  }
  const { values } = parsed;
  if (values.address === undefined) throw new CallUsageError("--address HOST:PORT is required");
  const where = splitAddress(values.address);
  if (!where) throw new CallUsageError(`--address: expected host:port, got "${values.address}"`);
  const count = wholeNumber("--count", values.count ?? "1");
  const concurrency = Math.min(count, wholeNumber("--concurrency", values.concurrency ?? "1"));
  let deadlineMs: number;
  try {
    deadlineMs = durationMs(values.deadline ?? "5s");
  } catch {
    throw new CallUsageError(`--deadline: expected a duration like "1s", got "${values.deadline}"`);
  }
  if (deadlineMs <= 0) throw new CallUsageError("--deadline: must be more than 0");
  const base = { address: values.address, ...where, count, concurrency, deadlineMs, data: values.data };
  if (values.tcp) {
    for (const option of ["method", "metadata", "model"] as const) {
      if (values[option] !== undefined) throw new CallUsageError(`--${option} does not apply with --tcp`);
    }
    return { ...base, tcp: true, method: undefined, request: {}, metadata: new grpc.Metadata() };
  }
  const path = values.method ?? DEFAULT_METHOD;
  const method = callMethods().get(path);
  if (!method) {
    throw new CallUsageError(
      `--method: "${path}" is not a unary method of the shipped protos; known:\n  ${[...callMethods().keys()].join("\n  ")}`,
    );
  }
  let data: unknown = {};
  if (values.data !== undefined) {
    try {
      data = JSON.parse(values.data);
    } catch {
      data = undefined;
    }
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      throw new CallUsageError(
        `--data: expected the request as a JSON object, got ${JSON.stringify(values.data)}`,
      );
    }
  }
  const request = { ...method.request(values.model ?? "simple"), ...(data as Record<string, unknown>) };
  try {
    method.definition.requestSerialize(request);
  } catch (err) {
    throw new CallUsageError(`--data: not a valid request for ${path}: ${(err as Error).message}`);
  }
  return { ...base, tcp: false, method, request, metadata: metadataOf(values.metadata ?? []) };
}

function wholeNumber(option: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 1_000_000) {
    throw new CallUsageError(`${option}: expected a whole number from 1 to 1000000, got "${text}"`);
  }
  return n;
}

function metadataOf(pairs: readonly string[]): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    const key = eq > 0 ? pair.slice(0, eq).trim().toLowerCase() : "";
    if (!/^[0-9a-z_.-]+$/.test(key))
      throw new CallUsageError(`--metadata: expected key=value, got "${pair}"`);
    const value = pair.slice(eq + 1);
    if (key.endsWith("-bin")) md.add(key, Buffer.from(value));
    else md.add(key, value);
  }
  return md;
}

/** Runs `fulcrum call …`; resolves with the exit code. */
export async function callCommand(argv: string[]): Promise<number> {
  let spec: CallSpec;
  try {
    spec = parseCallArgs(argv);
  } catch (err) {
    if (!(err instanceof CallUsageError)) throw err;
    process.stderr.write(`fulcrum call: ${err.message}\n${CALL_USAGE}\n`);
    return 2;
  }
  const label = spec.tcp ? "connection" : "call";
  const results: CallResult[] = [];
  const print = (i: number, r: CallResult): void => {
    results.push(r);
    process.stdout.write(`${label} ${i}: ${resultLine(r)}\n`);
  };
  if (spec.tcp) {
    await inTurns(spec, (i) =>
      tcpCall(spec.host, spec.port, spec.data, spec.deadlineMs).then((r) => print(i, r)),
    );
  } else {
    const client = new grpc.Client(spec.address, grpc.credentials.createInsecure());
    try {
      await inTurns(spec, (i) => grpcCall(client, spec).then((r) => print(i, r)));
    } finally {
      client.close();
    }
  }
  for (const line of summaryLines(results, spec.tcp ? "connection" : "call")) {
    process.stdout.write(`${line}\n`);
  }
  return results.every((r) => r.status === "OK") ? 0 : 1;
}

/** Calls 1..count, at most `concurrency` in flight. */
async function inTurns(spec: CallSpec, one: (i: number) => Promise<void>): Promise<void> {
  let next = 1;
  const lane = async (): Promise<void> => {
    while (next <= spec.count) await one(next++);
  };
  await Promise.all(Array.from({ length: spec.concurrency }, lane));
}

function grpcCall(client: grpc.Client, spec: CallSpec): Promise<CallResult> {
  const method = spec.method as CallMethod;
  const def = method.definition;
  const started = performance.now();
  return new Promise((resolve) => {
    let reply: Record<string, unknown> | undefined;
    let headerWorker: string | undefined;
    const call = client.makeUnaryRequest(
      method.path,
      def.requestSerialize,
      def.responseDeserialize,
      spec.request,
      spec.metadata.clone(),
      { deadline: Date.now() + spec.deadlineMs },
      (_err, value) => (reply = value),
    );
    call.on("metadata", (md: grpc.Metadata) => (headerWorker = firstString(md, "x-worker")));
    call.on("status", (status: grpc.StatusObject) => {
      const route = firstString(status.metadata, ROUTE_TRAILER);
      const endpoint = route === undefined ? undefined : /(?:^|;)endpoint=([^;]+)/.exec(route)?.[1];
      const ok = status.code === grpc.status.OK && reply !== undefined;
      resolve({
        status: ok ? "OK" : (grpc.status[status.code] ?? String(status.code)),
        worker: (reply && method.workerOf(reply)) ?? headerWorker,
        endpoint,
        ms: performance.now() - started,
        detail: ok ? method.detailOf(reply as Record<string, unknown>) : status.details,
      });
    });
  });
}

function firstString(md: grpc.Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return v === undefined ? undefined : v.toString();
}

/** `OK from gpu-1 in 21 ms`, with the route's endpoint and a detail when there are. */
export function resultLine(r: CallResult): string {
  const who =
    r.worker !== undefined
      ? ` from ${r.worker}${r.endpoint !== undefined ? ` (${r.endpoint})` : ""}`
      : r.endpoint !== undefined
        ? ` from ${r.endpoint}`
        : "";
  return `${r.status}${who} in ${Math.round(r.ms)} ms${r.detail === "" ? "" : `: ${r.detail}`}`;
}

/** `6 calls: OK 6` and `by worker: gpu-0 3, gpu-1 3` (`what`: "call" or "connection"). */
export function summaryLines(results: readonly CallResult[], what: string): string[] {
  const statuses = countBy(results.map((r) => r.status));
  const workers = countBy(
    results.map((r) => r.worker ?? r.endpoint ?? (r.status === "OK" ? "unnamed" : "none")),
  );
  const list = (m: Map<string, number>): string => [...m].map(([k, n]) => `${k} ${n}`).join(", ");
  const lines = [`${plural(results.length, what)}: ${list(statuses)}`, `by worker: ${list(workers)}`];
  if (results.some((r) => r.worker === undefined && r.endpoint === undefined && r.status === "OK")) {
    lines.push("(unnamed: the answer names no worker; a cluster with explain: true adds the endpoint)");
  }
  return lines;
}

function countBy(keys: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const k of [...keys].sort()) counts.set(k, (counts.get(k) ?? 0) + 1);
  return counts;
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? "" : "s"}`;
}
