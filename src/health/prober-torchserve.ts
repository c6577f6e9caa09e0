/**
 * TorchServe health prober: TorchServe serves no grpc.health.v1, so its own whole-server health RPC,
 * `org.pytorch.serve.grpc.inference.InferenceAPIsService/Ping`, is called every interval with a
 * deadline of `timeout`. The answer is a JSON document in `TorchServeHealthResponse.health`, e.g.
 * `{"status": "Healthy"}`; TorchServe also says "Partial Healthy" (some model workers down) and
 * "Unhealthy". Only "Healthy" passes: a partially healthy server fails some of the requests sent to
 * it, and Ping cannot tell which models, so it is safer to send them elsewhere (model routing on
 * TorchServe trusts `clusters[].models` instead). An answer that is not such a document fails too:
 * a server that cannot say it is healthy is not counted as healthy.
 */
import type * as grpc from "@grpc/grpc-js";
import { torchserveService } from "../protos/inference-protos.js";
import { GrpcProbeClients, unaryProbeCall, type GrpcProbeTls } from "./prober-grpc-pool.js";
import type { ProbeOutcome, ProbeTarget, Prober } from "./prober.js";

export interface TorchServeProberOptions {
  /** Absent: plaintext (h2c). */
  readonly tls?: GrpcProbeTls;
}

interface TorchServeClient extends grpc.Client {
  Ping(
    request: object,
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, response?: { health?: string }) => void,
  ): grpc.ClientUnaryCall;
}

/** The `status` TorchServe reports when every model's workers are up. */
export const TORCHSERVE_HEALTHY = "Healthy";

export class TorchServeProber implements Prober {
  private readonly clients: GrpcProbeClients<TorchServeClient>;
  private closed = false;

  /** Throws (control plane) when the proto or the CA file cannot be read. */
  constructor(options: TorchServeProberOptions = {}) {
    this.clients = new GrpcProbeClients(torchserveService(), options.tls);
  }

  async probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
    if (this.closed) return { result: "failure", reason: "prober closed" };
    const client = this.clients.clientFor(target);
    const r = await unaryProbeCall<{ health?: string }>(Date.now() + timeoutMs, (options, cb) =>
      client.Ping({}, options, cb),
    );
    if (!r.ok) return { result: "failure", reason: r.reason };
    const status = torchServeStatus(r.value.health ?? "");
    if (status === undefined) return { result: "failure", reason: "unparsable health response" };
    return status === TORCHSERVE_HEALTHY ? { result: "success" } : { result: "failure", reason: status };
  }

  close(): void {
    this.closed = true;
    this.clients.close();
  }
}

/** The `status` string of a Ping's health document, or undefined when it is not such a document. */
export function torchServeStatus(health: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(health);
  } catch {
    return undefined;
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return undefined;
  const status = (doc as Record<string, unknown>)["status"];
  return typeof status === "string" ? status : undefined;
}
