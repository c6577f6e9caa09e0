/**
 * Triton readiness prober, on the KServe v2 gRPC protocol Triton implements
 * (`inference.GRPCInferenceService`): `ServerReady` decides the endpoint's health, and `ModelReady`
 * for each of `clusters[].models` gives per-model readiness. Triton's grpc.health.v1 `Check` only
 * says whether the whole server is ready, while a Triton instance is often up with one model still
 * loading or unloaded; model-aware routing needs to know which, so this prober asks.
 *
 * All calls of one probe go out at once on the endpoint's pooled connection and share the probe's
 * deadline (`timeout`), so a probe costs one round trip however many models there are. When the server
 * is not ready the model answers are dropped: the endpoint is unhealthy as a whole, and its models keep
 * the state they had until the server is back.
 */
import type * as grpc from "@grpc/grpc-js";
import type { ModelRef } from "./model-readiness.js";
import { tritonService } from "../protos/inference-protos.js";
import { GrpcProbeClients, unaryProbeCall, type CallResult, type GrpcProbeTls } from "./prober-grpc-pool.js";
import type { ModelProbeOutcome, ProbeOutcome, ProbeTarget, Prober } from "./prober.js";

export interface TritonProberOptions {
  /** `clusters[].models`; `ModelReady` is asked for each, with its version (`""` = any). */
  readonly models: readonly ModelRef[];
  /** Absent: plaintext (h2c). */
  readonly tls?: GrpcProbeTls;
}

type Callback<T> = (err: grpc.ServiceError | null, response?: T) => void;

interface TritonClient extends grpc.Client {
  ServerReady(
    request: object,
    options: grpc.CallOptions,
    cb: Callback<{ ready?: boolean }>,
  ): grpc.ClientUnaryCall;
  ModelReady(
    request: { name: string; version: string },
    options: grpc.CallOptions,
    cb: Callback<{ ready?: boolean }>,
  ): grpc.ClientUnaryCall;
}

export class TritonProber implements Prober {
  private readonly clients: GrpcProbeClients<TritonClient>;
  private closed = false;

  /** Throws (control plane) when the proto or the CA file cannot be read. */
  constructor(private readonly options: TritonProberOptions) {
    this.clients = new GrpcProbeClients(tritonService(), options.tls);
  }

  async probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
    if (this.closed) return { result: "failure", reason: "prober closed" };
    const client = this.clients.clientFor(target);
    const deadline = Date.now() + timeoutMs;
    const server = unaryProbeCall<{ ready?: boolean }>(deadline, (options, cb) =>
      client.ServerReady({}, options, cb),
    );
    const models = this.options.models.map((m) =>
      unaryProbeCall<{ ready?: boolean }>(deadline, (options, cb) =>
        client.ModelReady({ name: m.name, version: m.version }, options, cb),
      ),
    );
    const serverResult = readiness(await server);
    const modelResults = await Promise.all(models);
    if (serverResult !== undefined) return { result: "failure", reason: serverResult };
    return {
      result: "success",
      models: this.options.models.map((model, i): ModelProbeOutcome => {
        const reason = readiness(modelResults[i] as CallResult<{ ready?: boolean }>);
        return reason === undefined ? { model, result: "success" } : { model, result: "failure", reason };
      }),
    };
  }

  close(): void {
    this.closed = true;
    this.clients.close();
  }
}

/** Undefined when the answer says ready; otherwise why not. */
function readiness(r: CallResult<{ ready?: boolean }>): string | undefined {
  if (!r.ok) return r.reason;
  return r.value.ready === true ? undefined : "not ready";
}
