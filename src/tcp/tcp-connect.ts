/**
 * Connects to an endpoint of the cluster within `connect_timeout`, trying up to `connect_attempts`
 * distinct endpoints; with caps (`max_active`) a connection finding every endpoint full waits in the
 * cluster's queue (src/cluster/work-queue.ts) until a slot frees, or is closed when it is shed. Each attempt counts against the endpoint's active count (least-connections sees
 * connections being set up); a failed attempt releases it and feeds outlier detection. Nothing throws:
 * the outcome is a tagged result handed to `done` exactly once.
 */
import { connect, type OnReadOpts, type Socket } from "node:net";
import type { Endpoint } from "../balancer/endpoint-set.js";
import { endpointShortage } from "../balancer/endpoint-shortage.js";
import type { PickContext, PickFailureReason } from "../balancer/picker.js";
import type { UpstreamCluster } from "../cluster/upstream-cluster.js";
import type { QueuedCall } from "../cluster/work-queue.js";

export interface ConnectFailure {
  /**
   * `drained`: every endpoint is drained; `no_healthy_endpoint`: nothing else to try at all;
   * `connect_failed`: every attempt failed; `at_capacity`: every endpoint is at its cap (`max_active`).
   */
  readonly reason: "drained" | "no_healthy_endpoint" | "connect_failed" | "at_capacity";
  readonly detail: string;
}

/** `attempts`: connects tried; `endpoint` of a failure: the last one tried, if any. */
export type ConnectOutcome =
  | {
      readonly kind: "connected";
      readonly endpoint: Endpoint;
      readonly socket: Socket;
      readonly attempts: number;
    }
  | {
      readonly kind: "failure";
      readonly failure: ConnectFailure;
      readonly attempts: number;
      readonly endpoint: Endpoint | undefined;
    };

/** What one downstream connection asks of its upstream connection. */
export interface ConnectRequest {
  readonly pick: Omit<PickContext, "exclude">;
  /** True once the downstream connection has closed: no further attempt is made. */
  readonly aborted: () => boolean;
  /** Where the upstream socket's reads land (TcpRelay); given to every attempt's socket. */
  readonly onread: OnReadOpts;
  /** Registers what to do if the downstream connection closes while it waits in the queue. */
  readonly onAbort?: ((leave: () => void) => void) | undefined;
}

export function connectUpstream(
  cluster: UpstreamCluster,
  request: ConnectRequest,
  done: (outcome: ConnectOutcome) => void,
): void {
  const base = request.pick;
  let exclude: Set<Endpoint> | undefined;
  let attempts = 0;
  let lastError = "";
  let lastEndpoint: Endpoint | undefined;
  const failed = (failure: ConnectFailure): void =>
    done({ kind: "failure", failure, attempts, endpoint: lastEndpoint });

  /**
   * Every endpoint it may use is at its cap: the connection waits in the cluster's queue (its
   * client's bytes wait in the kernel), and `bind` runs when a slot frees.
   */
  const wait = (pinned: Endpoint | undefined): void => {
    let waiting = true;
    const call: QueuedCall = {
      bind: () => {
        if (!waiting) return true;
        if (request.aborted()) {
          waiting = false;
          failed({ reason: "connect_failed", detail: "client closed" });
          return true;
        }
        if (place().full) return false;
        waiting = false;
        return true;
      },
      shed: (reason) => {
        waiting = false;
        failed({ reason: "at_capacity", detail: `cluster "${cluster.name}" is overloaded: ${reason}` });
      },
    };
    const entry = cluster.queue.offer(call, 0, "", pinned);
    if (typeof entry === "string") return call.shed(entry);
    request.onAbort?.(() => {
      if (!waiting) return;
      waiting = false;
      cluster.queue.leave(entry);
      failed({ reason: "connect_failed", detail: "client closed" });
    });
  };

  /**
   * Picks and counts an endpoint and connects to it (or fails the connection); "full" when every
   * endpoint it may use is at its cap, with the endpoint an affinity pick keeps, if any.
   */
  const place = (): { readonly full: boolean; readonly pinned?: Endpoint } => {
    const picked = cluster.pick(exclude ? { ...base, exclude } : base);
    if (picked.kind === "unavailable" && picked.reason === "at_capacity") return FULL;
    if (picked.kind === "unavailable") {
      failed(failureOf(cluster, picked.reason, lastError));
      return PLACED;
    }
    if (!cluster.tryAcquire(picked.endpoint))
      return base.affinityKey !== undefined ? { full: true, pinned: picked.endpoint } : FULL;
    connectTo(picked.endpoint);
    return PLACED;
  };

  const attempt = (): void => {
    if (request.aborted()) return failed({ reason: "connect_failed", detail: "client closed" });
    if (cluster.queue.waiting > 0 && base.affinityKey === undefined) return wait(undefined);
    const placed = place();
    if (placed.full) wait(placed.pinned);
  };

  const connectTo = (endpoint: Endpoint): void => {
    lastEndpoint = endpoint;
    attempts++;
    const socket = connect({
      host: endpoint.host,
      port: endpoint.port,
      allowHalfOpen: true,
      noDelay: true,
      onread: request.onread,
    });
    const timer = setTimeout(() => fail("connect timeout"), cluster.connectTimeoutMs);

    function onConnect(): void {
      clearTimeout(timer);
      socket.off("error", onError);
      cluster.connectSucceeded(endpoint);
      done({ kind: "connected", endpoint, socket, attempts });
    }
    function onError(err: NodeJS.ErrnoException): void {
      fail(err.code ?? err.message);
    }
    function fail(reason: string): void {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("error", onError);
      socket.on("error", noop);
      socket.destroy();
      cluster.release(endpoint);
      cluster.connectFailed(endpoint, reason);
      lastError = `${endpoint.address}: ${reason}`;
      (exclude ??= new Set()).add(endpoint);
      if (attempts >= cluster.connectAttempts) {
        failed({ reason: "connect_failed", detail: lastError });
      } else {
        attempt();
      }
    }
    socket.once("connect", onConnect);
    socket.once("error", onError);
  };
  attempt();
}

const FULL = Object.freeze({ full: true });
const PLACED = Object.freeze({ full: false });

function failureOf(cluster: UpstreamCluster, reason: PickFailureReason, lastError: string): ConnectFailure {
  if (reason === "at_capacity")
    return { reason, detail: `every endpoint of cluster "${cluster.name}" is at its cap (max_active)` };
  if (reason === "all_endpoints_tried" || lastError !== "")
    return { reason: "connect_failed", detail: lastError };
  const shortage = endpointShortage(cluster.name, cluster.endpoints.endpoints);
  return { reason: shortage.reason, detail: shortage.message };
}

function noop(): void {}
