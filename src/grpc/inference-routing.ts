/**
 * Model-aware routing for both gRPC engines (issue #9): a Triton `ModelInfer` / `ModelStreamInfer` or
 * a TorchServe `Predictions` call to a cluster with `models` waits for the head of its first message
 * (RequestPeeker: model name and version, never the tensors), then may only reach endpoints where
 * that model is ready. Past `peek_max_bytes`, on a compressed message or an unparsable head the
 * policy decides alone. Also the route's explanation: the `fulcrum-route` trailer (`explain: true`)
 * and `fulcrum_route_decisions_total{cluster,reason}`.
 */
import type { Endpoint } from "../balancer/endpoint-set.js";
import { endpointShortage } from "../balancer/endpoint-shortage.js";
import type { ModelRef } from "../health/model-readiness.js";
import type { PickResult } from "../balancer/picker.js";
import { sizeBytes } from "../config/config-units.js";
import type { UpstreamCluster } from "../cluster/upstream-cluster.js";
import { RequestPeeker, inferenceMethodOf, type PeekOutcome, type PromptSpec } from "./inference-peek.js";

/**
 * Why an endpoint was chosen: affinity decided, the model narrowed the set, least_loaded's cost, or
 * the policy; with prompt-prefix affinity, a prefix match, the least active endpoint (no usable
 * match), or why the prompt was not read (the policy then decided).
 */
export type RouteReason =
  "affinity" | "model" | "cost" | "policy" | "prefix" | "prefix_least_loaded" | PromptMissReason;

/** Why a `prompt_prefix` cluster's request was routed without its prompt. */
export type PromptMissReason = "prompt_not_found" | "prompt_short" | "prompt_too_large" | "prompt_unread";

/** Which endpoints a request may reach. */
export type ModelFilter =
  | { readonly kind: "any" }
  | { readonly kind: "only"; readonly model: string; readonly exclude: ReadonlySet<Endpoint> }
  | { readonly kind: "none"; readonly message: string };

const ANY: ModelFilter = Object.freeze({ kind: "any" });

/** The header of the explanation trailer. */
export const ROUTE_TRAILER = "fulcrum-route";

export class InferenceRouting {
  private readonly peeker: RequestPeeker;
  private outcome: PeekOutcome = { kind: "need_more" };

  private constructor(
    private readonly cluster: UpstreamCluster,
    method: NonNullable<ReturnType<typeof inferenceMethodOf>>,
  ) {
    this.peeker = new RequestPeeker(method, sizeBytes(cluster.config.peek_max_bytes), promptSpecOf(cluster));
  }

  /** The routing of a new stream, or undefined when its cluster or method needs no peek. */
  static forStream(cluster: UpstreamCluster, path: string | undefined): InferenceRouting | undefined {
    if (path === undefined) return undefined;
    // Sequence pins and prompt prefixes are read from Triton's requests only.
    const tritonOnly = cluster.pins !== undefined || cluster.config.affinity?.key === "prompt_prefix";
    if (cluster.config.models.length === 0 && !tritonOnly) return undefined;
    const method = inferenceMethodOf(path);
    if (!method) return undefined;
    if (cluster.config.models.length === 0 && !method.startsWith("triton")) return undefined;
    return new InferenceRouting(cluster, method);
  }

  /** The prompt's block hashes, once the head was read and the prompt found (`prompt_prefix` clusters). */
  get promptHashes(): readonly number[] | undefined {
    const prompt = this.outcome.kind === "done" ? this.outcome.result.prompt : undefined;
    return prompt?.kind === "found" ? prompt.hashes : undefined;
  }

  /** Why a `prompt_prefix` cluster routes this request without its prompt; undefined when found (or not asked). */
  get promptMiss(): PromptMissReason | undefined {
    if (this.cluster.config.affinity?.key !== "prompt_prefix") return undefined;
    if (this.outcome.kind === "fallback") return "prompt_unread";
    const prompt = this.outcome.kind === "done" ? this.outcome.result.prompt : undefined;
    return prompt?.kind === "missing" ? `prompt_${prompt.reason}` : undefined;
  }

  /** The Triton sequence the request belongs to, once the head was read (pinned clusters only). */
  get sequence(): { readonly key: string; readonly start: boolean; readonly end: boolean } | undefined {
    return this.cluster.pins && this.outcome.kind === "done" ? this.outcome.result.sequence : undefined;
  }

  /** True once the head was read (or cannot be): the stream may pick. */
  get decided(): boolean {
    return this.outcome.kind !== "need_more";
  }

  /** Feeds request DATA; true when this decided the route. */
  push(data: Buffer): boolean {
    if (this.decided) return false;
    this.outcome = this.peeker.push(data);
    return this.decided;
  }

  /** The request ended before its head was read. */
  end(): void {
    if (!this.decided) this.outcome = this.peeker.end();
  }

  /** The endpoints the request may reach, from the peeked model. */
  filter(): ModelFilter {
    if (this.outcome.kind !== "done") return ANY;
    return modelFilter(this.cluster, this.outcome.result.model, this.outcome.result.version);
  }
}

/**
 * Endpoints that may serve `model`: configured models match by name, and by version unless either
 * side leaves it empty ("" = any). A model the config does not list is routed by the policy for
 * Triton (its readiness is unknown, so nothing speaks against any endpoint), and refused for
 * TorchServe, whose Ping cannot tell which models a server has: there the list is the truth.
 */
export function modelFilter(cluster: UpstreamCluster, name: string, version: string): ModelFilter {
  const refs: ModelRef[] = cluster.config.models.filter(
    (m) => m.name === name && (m.version === "" || version === "" || m.version === version),
  );
  if (refs.length === 0) {
    if (cluster.config.health_check?.type === "torchserve") {
      return { kind: "none", message: `model "${name}" is not among cluster "${cluster.name}"'s models` };
    }
    return ANY;
  }
  const exclude = new Set<Endpoint>();
  for (const e of cluster.endpoints.endpoints) {
    if (!refs.some((r) => cluster.models.isReady(e.address, r))) exclude.add(e);
  }
  if (exclude.size === cluster.endpoints.endpoints.length) {
    return { kind: "none", message: `no endpoint of cluster "${cluster.name}" has model "${name}" ready` };
  }
  return { kind: "only", model: name, exclude };
}

/**
 * Why a pick went where it did, for explain, the access log and the decisions metric: affinity; else
 * `cost` when least_loaded compared two candidates' costs and they differed (among the model's
 * endpoints too); else `model` when the model narrowed the endpoints; else the policy (least_loaded
 * included, when it had one candidate or a tie).
 */
export function routeReason(
  cluster: UpstreamCluster,
  affinityKey: string | undefined,
  filter: ModelFilter,
  picked: PickResult,
  promptMiss?: PromptMissReason,
): RouteReason {
  if (affinityKey !== undefined && cluster.config.affinity) return "affinity";
  const decidedBy = picked.kind === "complete" ? picked.decidedBy : undefined;
  if (decidedBy === "prefix_match") return "prefix";
  if (decidedBy === "least_loaded") return "prefix_least_loaded";
  if (decidedBy === "cost") return "cost";
  if (filter.kind === "only") return "model";
  return promptMiss ?? "policy";
}

/** The prompt a `prompt_prefix` cluster reads from Triton requests, if it is one. */
function promptSpecOf(cluster: UpstreamCluster): PromptSpec | undefined {
  const a = cluster.config.affinity;
  if (a?.key !== "prompt_prefix") return undefined;
  return { input: a.input, blockBytes: a.block_bytes, maxBlocks: a.max_blocks };
}

/**
 * The `fulcrum-route` trailer value; `endpoint` is "none" and `reason` a failure flag
 * (no_healthy_endpoint, model_unavailable, …) when Fulcrum answered without an endpoint.
 */
export function routeTrailer(endpoint: string, cluster: UpstreamCluster, reason: string): string {
  return `endpoint=${endpoint};policy=${cluster.config.policy};reason=${reason}`;
}

/** Where a request of a Triton sequence goes. */
export type SequenceDecision =
  | { readonly kind: "endpoint"; readonly endpoint: Endpoint }
  | { readonly kind: "unavailable"; readonly message: string };

/**
 * A sequence's endpoint (docs/architecture.md: Triton sequence pins): a pinned sequence stays on its endpoint
 * while that endpoint is healthy, whatever else changed in the cluster (drained included: running
 * sequences finish there); if it is not, the request gets UNAVAILABLE and the sequence is never
 * moved (its state lives on that instance). A new sequence, or a `sequence_start`, is placed by
 * consistent hash on its id among eligible endpoints (never a drained one), so replicas agree, and
 * pinned; `sequence_end` ends the pin after routing the last request.
 */
export function routeSequence(
  cluster: UpstreamCluster,
  sequence: { readonly key: string; readonly start: boolean; readonly end: boolean },
  clientAddress: string | undefined,
  exclude: ReadonlySet<Endpoint> | undefined,
  nowSeconds: number,
): SequenceDecision {
  const pins = cluster.pins;
  if (!pins) throw new Error(`cluster ${cluster.name} has no sequence pins`);
  const label = sequence.key.slice(2);
  const slot = sequence.start ? undefined : pins.lookup(sequence.key, nowSeconds);
  if (slot !== undefined) {
    const e = cluster.endpoints.bySlot(slot);
    if (!e || e.health !== "healthy" || e.ejected || e.removed) {
      return {
        kind: "unavailable",
        message: `sequence ${label} is pinned to ${e?.address ?? "an endpoint no longer in the cluster"}, which cannot take it`,
      };
    }
    if (sequence.end) pins.unpin(sequence.key, nowSeconds);
    return { kind: "endpoint", endpoint: e };
  }
  const picked = cluster.pick({ clientAddress, affinityKey: sequence.key, exclude });
  if (picked.kind === "unavailable") {
    return {
      kind: "unavailable",
      message: `${endpointShortage(cluster.name, cluster.endpoints.endpoints).message} for sequence ${label}`,
    };
  }
  if (!sequence.end) pins.pin(sequence.key, picked.endpoint.slot, nowSeconds);
  return { kind: "endpoint", endpoint: picked.endpoint };
}

/** The union of two exclusion sets (either may be absent). */
export function unionExclude(
  a: ReadonlySet<Endpoint> | undefined,
  b: ReadonlySet<Endpoint> | undefined,
): ReadonlySet<Endpoint> | undefined {
  if (!a || a.size === 0) return b;
  if (!b || b.size === 0) return a;
  return new Set([...a, ...b]);
}
