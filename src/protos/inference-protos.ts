/**
 * The gRPC services of the inference servers Fulcrum probes and simulates, loaded once per process
 * with @grpc/proto-loader from `<package>/protos/` (protos-dir.ts): Triton's KServe v2 `inference.GRPCInferenceService` and TorchServe's
 * `org.pytorch.serve.grpc.inference.InferenceAPIsService`. Each constructor's `.service` is the
 * server-side definition the simulated workers implement, so prober and worker share one schema.
 */
import type * as grpc from "@grpc/grpc-js";
import { join } from "node:path";
import { loadProto } from "./protos-dir.js";

let triton: grpc.ServiceClientConstructor | undefined;
let torchserve: grpc.ServiceClientConstructor | undefined;

/** `inference.GRPCInferenceService` (protos/triton/grpc_service.proto). */
export function tritonService(): grpc.ServiceClientConstructor {
  if (triton) return triton;
  const loaded = loadProto(join("triton", "grpc_service.proto")) as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  };
  triton = loaded.inference.GRPCInferenceService;
  return triton;
}

/** `org.pytorch.serve.grpc.inference.InferenceAPIsService` (protos/torchserve/inference.proto). */
export function torchserveService(): grpc.ServiceClientConstructor {
  if (torchserve) return torchserve;
  const loaded = loadProto(join("torchserve", "inference.proto")) as {
    org: {
      pytorch: { serve: { grpc: { inference: { InferenceAPIsService: grpc.ServiceClientConstructor } } } };
    };
  };
  torchserve = loaded.org.pytorch.serve.grpc.inference.InferenceAPIsService;
  return torchserve;
}
