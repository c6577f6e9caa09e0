/**
 * Which endpoint a gRPC stream goes to, attempt after attempt, for both engines: the model filter and
 * Triton sequence pins of inference-aware clusters, then the cluster's policy or affinity, excluding
 * endpoints that failed to connect; endpoints that refused the stream (never processed it) may be
 * tried again when nothing else is left. It also keeps the route's explanation (`explain`) and counts
 * the decision. One object per stream; the engine reports connect failures and refusals to it.
 */
import type { Endpoint } from "../balancer/endpoint-set.js";
import { endpointShortage } from "../balancer/endpoint-shortage.js";
import type { PickResult } from "../balancer/picker.js";
import type { UpstreamCluster } from "../cluster/upstream-cluster.js";
import { priorityOf } from "../cluster/work-queue.js";
import {
  routeReason,
  routeSequence,
  routeTrailer,
  unionExclude,
  type InferenceRouting,
  type ModelFilter,
  type RouteReason,
} from "./inference-routing.js";

export type EndpointChoice =
  /** The attempt's endpoint, its slot already counted (`acquire`d): pair with one `release`. */
  | { readonly kind: "endpoint"; readonly endpoint: Endpoint }
  | { readonly kind: "unavailable"; readonly message: string }
  /**
   * Every endpoint the stream may use is at its cap: it waits in the queue, for `pinned` alone when
   * affinity or a Triton sequence keeps it there.
   */
  | { readonly kind: "full"; readonly pinned: Endpoint | undefined };

const FULL: EndpointChoice = Object.freeze({ kind: "full", pinned: undefined });

const ANY_MODEL: ModelFilter = Object.freeze({ kind: "any" });

/** What `affinityKeyOf` reads a stream's request headers through (a frames HeaderList is one). */
export interface RequestHeaders {
  get(name: string): string | undefined;
}

/**
 * A stream's affinity key, for both engines: the value of the request header `affinity.key:
 * header:<name>` names, the client's address for `source_ip`, else none (`triton_sequence` keys come
 * from the message, in inference routing).
 */
export function affinityKeyOf(
  cluster: UpstreamCluster,
  clientAddress: string | undefined,
  headers: RequestHeaders,
): string | undefined {
  const key = cluster.config.affinity?.key;
  if (key === undefined) return undefined;
  if (key === "source_ip") return clientAddress;
  return key.startsWith("header:") ? headers.get(key.slice(7).toLowerCase()) : undefined;
}

/** A stream's queue order (`clusters[].queue`): its priority and flow from the configured headers. */
export interface QueueKeys {
  readonly priority: number;
  readonly flow: string;
}

const NO_QUEUE_KEYS: QueueKeys = Object.freeze({ priority: 0, flow: "" });

export function queueKeysOf(cluster: UpstreamCluster, headers: RequestHeaders): QueueKeys {
  const q = cluster.config.queue;
  if (q.priority_header === "" && q.fairness_header === "") return NO_QUEUE_KEYS;
  return {
    priority: q.priority_header === "" ? 0 : priorityOf(headers.get(q.priority_header)),
    flow: q.fairness_header === "" ? "" : (headers.get(q.fairness_header) ?? ""),
  };
}

export class StreamEndpointChoice {
  /** Attempts made so far (a retry is attempt 2 and on). */
  attempts = 0;
  /** The `fulcrum-route` trailer value, when the cluster explains its routes and an endpoint was picked. */
  explanation: string | undefined;
  /** The endpoint of the last attempt (the access log's `endpoint`). */
  endpoint: Endpoint | undefined;
  /** Why the first attempt's endpoint was picked. */
  reason: RouteReason | undefined;
  /** Why no endpoint could be picked for the first attempt, for the explanation of the answer. */
  private failure: string | undefined;
  /** Why the last attempt failed, for the final UNAVAILABLE message. */
  lastError = "";
  private filter: ModelFilter | undefined;
  private sequenceEndpoint: Endpoint | undefined;
  private failedConnects: Set<Endpoint> | undefined;
  private refused: Set<Endpoint> | undefined;

  constructor(
    private readonly cluster: UpstreamCluster,
    private readonly clientAddress: string | undefined,
    private readonly affinityKey: string | undefined,
    private readonly routing: InferenceRouting | undefined,
  ) {}

  /** The endpoint of the next attempt, or why there is none. */
  next(): EndpointChoice {
    const cluster = this.cluster;
    const filter = (this.filter ??= this.routing?.filter() ?? ANY_MODEL);
    if (filter.kind === "none") {
      this.failure = "model_unavailable";
      return { kind: "unavailable", message: filter.message };
    }
    const modelExclude = filter.kind === "only" ? filter.exclude : undefined;
    const sequence = this.routing?.sequence;
    let picked: PickResult;
    if (sequence) {
      // A Triton sequence goes where its pin says, retries included: never to another instance.
      const decision = this.sequenceEndpoint
        ? ({ kind: "endpoint", endpoint: this.sequenceEndpoint } as const)
        : routeSequence(cluster, sequence, this.clientAddress, modelExclude, Math.floor(Date.now() / 1000));
      if (decision.kind === "unavailable") {
        if (this.attempts === 0) this.failure = "sequence_unavailable";
        return decision;
      }
      this.sequenceEndpoint = decision.endpoint;
      picked = { kind: "complete", endpoint: decision.endpoint };
    } else {
      const prefix = this.routing?.promptHashes;
      picked = cluster.pick({
        clientAddress: this.clientAddress,
        affinityKey: this.affinityKey,
        exclude: unionExclude(modelExclude, this.excluded()),
        prefix,
      });
      if (picked.kind === "unavailable" && this.refused && picked.reason === "all_endpoints_tried") {
        // Streams refused by a draining connection were never processed: the same endpoint may take them again.
        picked = cluster.pick({
          clientAddress: this.clientAddress,
          affinityKey: this.affinityKey,
          exclude: unionExclude(modelExclude, this.failedConnects),
          prefix,
        });
      }
    }
    if (picked.kind === "unavailable" && picked.reason === "at_capacity") return FULL;
    if (picked.kind === "unavailable") {
      if (this.attempts === 0) this.failure = filter.kind === "only" ? "model_unavailable" : picked.reason;
      const message =
        this.attempts === 0 && filter.kind === "only"
          ? `no healthy endpoint of cluster "${cluster.name}" has model "${filter.model}" ready`
          : this.attempts === 0 && picked.reason === "no_healthy_endpoint"
            ? endpointShortage(cluster.name, cluster.endpoints.endpoints).message
            : `no endpoint of cluster "${cluster.name}" could take the stream: ${this.lastError}`;
      return { kind: "unavailable", message };
    }
    const endpoint = picked.endpoint;
    if (!cluster.tryAcquire(endpoint)) {
      // At its cap: an affinity or sequence pick waits for that endpoint; a policy pick lost a race
      // for the last slot (another thread, or the balancer's view) and waits for any.
      const pinned = sequence !== undefined || this.affinityKey !== undefined;
      return pinned ? { kind: "full", pinned: endpoint } : FULL;
    }
    this.endpoint = endpoint;
    if (this.attempts === 0) {
      const reason = routeReason(
        cluster,
        sequence?.key ?? this.affinityKey,
        filter,
        picked,
        this.routing?.promptMiss,
      );
      this.reason = reason;
      cluster.routeDecided(reason);
      if (cluster.config.explain) this.explanation = routeTrailer(endpoint.address, cluster, reason);
    } else if (this.explanation !== undefined) {
      this.explanation = this.explanation.replace(/^endpoint=[^;]*/, `endpoint=${endpoint.address}`);
    }
    this.attempts++;
    return { kind: "endpoint", endpoint };
  }

  /** Attempts beyond the first. */
  get retries(): number {
    return this.attempts > 1 ? this.attempts - 1 : 0;
  }

  /**
   * The `fulcrum-route` value of an answer Fulcrum gives itself (no endpoint, deadline, reset…): the
   * route's explanation once an endpoint was picked, else `endpoint=none` with why there was none
   * (`undecided` while the route waited for the request's first message).
   */
  answerExplanation(): string | undefined {
    if (this.explanation !== undefined || !this.cluster.config.explain) return this.explanation;
    return routeTrailer("none", this.cluster, this.failure ?? "undecided");
  }

  /** The endpoint could not be connected to (counted and fed to outlier detection by the caller). */
  connectFailed(endpoint: Endpoint, reason: string): void {
    (this.failedConnects ??= new Set()).add(endpoint);
    this.lastError = reason;
  }

  /** True when affinity or a Triton sequence keeps the stream on one endpoint (it waits for that one). */
  get keepsEndpoint(): boolean {
    return this.affinityKey !== undefined || this.routing?.sequence !== undefined;
  }

  /** True when every attempt must go to one endpoint (a Triton sequence's pin): no retry elsewhere. */
  get pinnedToSequence(): boolean {
    return this.routing?.sequence !== undefined;
  }

  /** `endpoint` answered a retryable status: the retry goes elsewhere. */
  answeredWith(endpoint: Endpoint, reason: string): void {
    (this.failedConnects ??= new Set()).add(endpoint);
    this.lastError = reason;
  }

  /** The endpoint refused the stream before processing it (REFUSED_STREAM, GOAWAY). */
  refusedBy(endpoint: Endpoint, reason: string): void {
    (this.refused ??= new Set()).add(endpoint);
    this.lastError = reason;
  }

  private excluded(): ReadonlySet<Endpoint> | undefined {
    if (!this.refused) return this.failedConnects;
    if (!this.failedConnects) return this.refused;
    return new Set([...this.failedConnects, ...this.refused]);
  }
}
