/**
 * The unary methods `fulcrum call` knows, from the protos the package ships (protos/): the simulated
 * worker's `fulcrum.sim.Worker`, grpc.health.v1, Triton's `inference.GRPCInferenceService` and
 * TorchServe's `InferenceAPIsService`, each with how to build a request and how to read, from an
 * answer, which worker sent it and a short detail worth printing.
 */
import { join } from "node:path";
import * as protoLoader from "@grpc/proto-loader";
import { LOAD_OPTIONS, protosDir } from "./protos/protos-dir.js";
import { SIM_WORKER_PROTO } from "./sim/sim-worker-proto.js";

const PROTO_FILES = [
  SIM_WORKER_PROTO,
  "health.proto",
  join("triton", "grpc_service.proto"),
  join("torchserve", "inference.proto"),
];

type Reply = Record<string, unknown>;

/** A method `fulcrum call` can send, with what it knows of its messages. */
export interface CallMethod {
  readonly path: string;
  readonly definition: protoLoader.MethodDefinition<object, Reply>;
  /** The request before `--data` is merged over it (`model`: `--model`). */
  request(model: string): Reply;
  /** The worker's name as the answer itself carries it (simulated workers do). */
  workerOf(reply: Reply): string | undefined;
  /** A few words about the answer, or "". */
  detailOf(reply: Reply): string;
}

const TRITON = "/inference.GRPCInferenceService/";
const TORCHSERVE = "/org.pytorch.serve.grpc.inference.InferenceAPIsService/";

interface Shape {
  request?: (model: string) => Reply;
  workerOf?: (reply: Reply) => string | undefined;
  detailOf?: (reply: Reply) => string;
}

const field = (name: string) => (reply: Reply) => `${name}=${String(reply[name])}`;

/** What is known about particular methods; every other unary method is sent as `--data` says. */
const SHAPES: Record<string, Shape> = {
  "/fulcrum.sim.Worker/Infer": { workerOf: (r) => stringOr(r.worker) },
  "/grpc.health.v1.Health/Check": { detailOf: field("status") },
  [`${TRITON}ServerLive`]: { detailOf: field("live") },
  [`${TRITON}ServerReady`]: { detailOf: field("ready") },
  [`${TRITON}ModelReady`]: { request: (model) => ({ name: model }), detailOf: field("ready") },
  [`${TRITON}ModelInfer`]: {
    request: (model) => ({ model_name: model }),
    // The simulated Triton worker names itself in a response parameter; Triton does not.
    workerOf: (r) => stringOr((r.parameters as Record<string, Reply> | undefined)?.worker?.string_param),
    detailOf: (r) => `model ${String(r.model_name)} v${String(r.model_version)}`,
  },
  [`${TORCHSERVE}Ping`]: { detailOf: (r) => `health ${healthStatus(String(r.health))}` },
  [`${TORCHSERVE}Predictions`]: {
    request: (model) => ({ model_name: model }),
    detailOf: (r) => `prediction ${JSON.stringify(clip(Buffer.from(r.prediction as Uint8Array).toString()))}`,
  },
};

let methods: Map<string, CallMethod> | undefined;

/** Every unary method of the shipped protos, by path (`/package.Service/Method`). */
export function callMethods(): ReadonlyMap<string, CallMethod> {
  if (methods) return methods;
  methods = new Map();
  for (const file of PROTO_FILES) {
    const definition = protoLoader.loadSync(join(protosDir(), file), LOAD_OPTIONS);
    for (const service of Object.values(definition)) {
      if (!isService(service)) continue;
      for (const method of Object.values(service)) {
        if (method.requestStream || method.responseStream) continue;
        const shape = SHAPES[method.path] ?? {};
        methods.set(method.path, {
          path: method.path,
          definition: method as protoLoader.MethodDefinition<object, Reply>,
          request: shape.request ?? (() => ({})),
          workerOf: shape.workerOf ?? (() => undefined),
          detailOf: shape.detailOf ?? (() => ""),
        });
      }
    }
  }
  return methods;
}

function isService(
  value: protoLoader.AnyDefinition | protoLoader.ServiceDefinition,
): value is protoLoader.ServiceDefinition {
  return !("format" in value) && Object.values(value).every((m) => typeof m === "object" && "path" in m);
}

function stringOr(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** TorchServe's Ping answers a JSON document; its `status` when it parses, else the text. */
function healthStatus(body: string): string {
  try {
    const status = (JSON.parse(body) as { status?: unknown }).status;
    if (typeof status === "string") return status;
  } catch {
    // not JSON: shown as it came
  }
  return JSON.stringify(clip(body));
}
