/**
 * The gRPC services of the inference servers Fulcrum probes and simulates, loaded once per process
 * with @grpc/proto-loader from `<package>/protos/` (found upward from this compiled file, so it works
 * from src/ and dist/src/): Triton's KServe v2 `inference.GRPCInferenceService` and TorchServe's
 * `org.pytorch.serve.grpc.inference.InferenceAPIsService`. Each constructor's `.service` is the
 * server-side definition the simulated workers implement, so prober and worker share one schema.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/** Decoding as the simulated workers and probers expect it: field names as written, int64 as strings. */
export const LOAD_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

let triton: grpc.ServiceClientConstructor | undefined;
let torchserve: grpc.ServiceClientConstructor | undefined;

/** `inference.GRPCInferenceService` (protos/triton/grpc_service.proto). */
export function tritonService(): grpc.ServiceClientConstructor {
  if (triton) return triton;
  const loaded = load(join("triton", "grpc_service.proto")) as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  };
  triton = loaded.inference.GRPCInferenceService;
  return triton;
}

/** `org.pytorch.serve.grpc.inference.InferenceAPIsService` (protos/torchserve/inference.proto). */
export function torchserveService(): grpc.ServiceClientConstructor {
  if (torchserve) return torchserve;
  const loaded = load(join("torchserve", "inference.proto")) as {
    org: {
      pytorch: { serve: { grpc: { inference: { InferenceAPIsService: grpc.ServiceClientConstructor } } } };
    };
  };
  torchserve = loaded.org.pytorch.serve.grpc.inference.InferenceAPIsService;
  return torchserve;
}

function load(relative: string): unknown {
  const definition = protoLoader.loadSync(join(protosDir(), relative), LOAD_OPTIONS);
  return grpc.loadPackageDefinition(definition);
}

/** The package's `protos/` folder. */
export function protosDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("protos/: no package.json above " + fileURLToPath(import.meta.url));
    dir = up;
  }
  return join(dir, "protos");
}
