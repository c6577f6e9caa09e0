/**
 * The messages between the main thread and its worker threads (`threads: N`). The main thread owns
 * config, health, ejections and membership and sends the state each worker thread mirrors; worker
 * threads serve traffic and send back what only they see (outliers, activity, metrics, log lines).
 * Everything here survives structured cloning; counters travel as SharedArrayBuffers.
 */
import type { EndpointCounterBuffers } from "../balancer/endpoint-counters.js";
import type { EndpointHealth } from "../balancer/endpoint-set.js";
import type { ModelRef } from "../health/model-readiness.js";
import type { SequencePinBuffers } from "../balancer/sequence-pins.js";
import type { FulcrumConfig } from "../config/config-schema.js";
import type { ClusterStatsReport } from "../metrics/endpoint-stats.js";
import type { ListenerStatus } from "../net/listener.js";
import type { PortOverrides } from "./data-plane.js";

/** One endpoint as the main thread's set holds it. */
export interface EndpointState {
  readonly address: string;
  readonly weight: number;
  readonly slot: number;
  readonly health: EndpointHealth;
  readonly drained: boolean;
  readonly ejected: boolean;
}

/** A cluster a worker thread must serve: its counters, current endpoints and where models are not ready. */
export interface ClusterState {
  readonly name: string;
  readonly counters: EndpointCounterBuffers;
  readonly endpoints: readonly EndpointState[];
  readonly modelsNotReady: readonly (readonly [ModelRef, readonly string[]])[];
  /** Triton sequence pins, when the cluster routes by `triton_sequence`. */
  readonly pins: SequencePinBuffers | undefined;
}

/** What a worker thread is started with (`workerData`). */
export interface ThreadInit {
  readonly index: number;
  readonly config: FulcrumConfig;
  readonly clusters: readonly ClusterState[];
}

export type ToThread =
  | { readonly type: "start"; readonly id: number; readonly ports: PortOverrides }
  | { readonly type: "endpoints"; readonly cluster: ClusterState }
  | {
      readonly type: "prepare";
      readonly id: number;
      readonly config: FulcrumConfig;
      readonly ports: PortOverrides;
    }
  | { readonly type: "commit"; readonly config: FulcrumConfig; readonly clusters: readonly ClusterState[] }
  | { readonly type: "abort" }
  | { readonly type: "status"; readonly id: number }
  | { readonly type: "metrics"; readonly id: number }
  | { readonly type: "endpoint-stats"; readonly id: number }
  | { readonly type: "stop"; readonly id: number; readonly drainMs: number }
  | { readonly type: "close-now" };

/** A failed request: a listener that could not bind, or anything else (`index` -1). */
export interface ThreadFailure {
  readonly index: number;
  readonly code: string;
}

export type FromThread =
  | { readonly type: "reply"; readonly id: number; readonly value: ThreadReplyValue }
  | { readonly type: "failed"; readonly id: number; readonly failure: ThreadFailure }
  | {
      readonly type: "eject";
      readonly cluster: string;
      readonly address: string;
      readonly durationMs: number;
    }
  | { readonly type: "log"; readonly line: string };

export type ThreadReplyValue =
  | { readonly kind: "addresses"; readonly addresses: readonly (string | undefined)[] }
  | { readonly kind: "status"; readonly listeners: readonly ListenerStatus[] }
  | { readonly kind: "metrics"; readonly metrics: unknown[] }
  | { readonly kind: "endpoint-stats"; readonly clusters: readonly ClusterStatsReport[] }
  | { readonly kind: "stopped" };
