/**
 * `fulcrum.sim.Worker` as protos/fulcrum/sim/worker.proto writes it, loaded once per process with
 * @grpc/proto-loader: the simulated gRPC worker encodes its Infer answer with it, and clients that want
 * the proto's messages (`fulcrum call`, the tests) use its definition.
 */
import { join } from "node:path";
import * as protoLoader from "@grpc/proto-loader";
import { LOAD_OPTIONS, protosDir } from "../protos/protos-dir.js";

/** The proto file, relative to `protos/`. */
export const SIM_WORKER_PROTO = join("fulcrum", "sim", "worker.proto");

let definition: protoLoader.PackageDefinition | undefined;

/** The package definition of worker.proto (`fulcrum.sim.Worker` and its messages). */
export function simWorkerDefinition(): protoLoader.PackageDefinition {
  definition ??= protoLoader.loadSync(join(protosDir(), SIM_WORKER_PROTO), LOAD_OPTIONS);
  return definition;
}

let infer: protoLoader.MethodDefinition<object, { worker?: string }> | undefined;

function inferMethod(): protoLoader.MethodDefinition<object, { worker?: string }> {
  infer ??= (simWorkerDefinition()["fulcrum.sim.Worker"] as protoLoader.ServiceDefinition)[
    "Infer"
  ] as protoLoader.MethodDefinition<object, { worker?: string }>;
  return infer;
}

/** An `InferReply` naming `worker`, encoded. */
export function encodeInferReply(worker: string): Buffer {
  return inferMethod().responseSerialize({ worker });
}

/** The worker named by an encoded `InferReply`. */
export function decodeInferReply(bytes: Buffer): string {
  return inferMethod().responseDeserialize(bytes).worker ?? "";
}
