/**
 * grpc-js clients of the Triton and TorchServe protos for tests: one unary call that never rejects,
 * which simulated worker answered a ModelInfer or Predictions call, and counts under bounded load.
 */
import * as grpc from "@grpc/grpc-js";
import type { StartedFulcrum } from "./harness.js";

type Callback = (err: grpc.ServiceError | null, res?: Record<string, unknown>) => void;
export type UnaryClient = grpc.Client &
  Record<string, (req: unknown, options: grpc.CallOptions, cb: Callback) => void>;

/** One unary call; resolves with the response or the error, never rejects. */
export function call(
  client: UnaryClient,
  method: string,
  request: unknown,
): Promise<{ ok: true; res: Record<string, unknown> } | { ok: false; code: grpc.status; details: string }> {
  return new Promise((resolve) => {
    client[method]?.call(client, request, { deadline: Date.now() + 10_000 }, (err, res) =>
      resolve(err ? { ok: false, code: err.code, details: err.details } : { ok: true, res: res ?? {} }),
    );
  });
}

export function clientOf(Ctor: grpc.ServiceClientConstructor, f: StartedFulcrum): UnaryClient {
  const t = f.target("g");
  return new Ctor(`${t.host}:${t.port}`, grpc.credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
  }) as unknown as UnaryClient;
}

/** Which Triton worker answered a ModelInfer (its `worker` parameter), or `!CODE` for a failure. */
export async function inferWho(client: UnaryClient, model = "simple"): Promise<string> {
  const r = await call(client, "ModelInfer", {
    model_name: model,
    id: "x",
    raw_input_contents: [Buffer.from("in")],
  });
  if (!r.ok) return `!${grpc.status[r.code]}`;
  const params = r.res["parameters"] as Record<string, { string_param?: string }> | undefined;
  return params?.["worker"]?.string_param ?? "?";
}

/** Which TorchServe worker answered a Predictions call (the prediction's prefix). */
export async function predictWho(client: UnaryClient): Promise<string> {
  const r = await call(client, "Predictions", { model_name: "simple", input: { data: Buffer.from("x") } });
  if (!r.ok) return `!${grpc.status[r.code]}`;
  const prediction = (r.res["prediction"] as Buffer).toString("utf8");
  return prediction.slice(0, prediction.indexOf(":"));
}

/**
 * `total` calls of `who`, `concurrency` at a time (each loop starts its next call when the last ended),
 * counted by who answered.
 */
export async function countUnderLoad(
  who: () => Promise<string>,
  total: number,
  concurrency: number,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let started = 0;
  const loop = async (): Promise<void> => {
    while (started < total) {
      started++;
      const name = await who();
      counts[name] = (counts[name] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return counts;
}
