// Policy registry after grpc-js's load-balancer → picker split: one file per policy, one factory here.
import type { LoadCosts } from "./load-cost.js";
import type { LoadView, Picker, PolicySnapshot, RandomSource } from "./picker.js";
import { IpHashPicker } from "./policy-ip-hash.js";
import { LeastConnectionsPicker } from "./policy-least-connections.js";
import { LeastLoadedPicker } from "./policy-least-loaded.js";
import { P2cPicker } from "./policy-p2c.js";
import { RandomPicker } from "./policy-random.js";
import { RoundRobinPicker } from "./policy-round-robin.js";
import { WeightedRoundRobinPicker } from "./policy-weighted-round-robin.js";

/** The `clusters[].policy` values; see docs/architecture.md "Semantics that outside tools rely on". */
export type PolicyName =
  | "round_robin"
  | "weighted_round_robin"
  | "least_connections"
  | "p2c"
  | "random"
  | "ip_hash"
  | "least_loaded";

/**
 * Builds the picker of policy `name` over one snapshot. The picker reads live active counts through
 * `load` and draws from `random`; it never returns an endpoint in `ctx.exclude`, and reports
 * `no_healthy_endpoint` (nothing eligible) or `all_endpoints_tried` (everything eligible excluded).
 * `least_loaded` also needs the cluster's `costs` (latency estimates and scraped queue depths); it
 * throws without them (a wiring bug, caught at start-up).
 */
export function createPolicyPicker(
  name: PolicyName,
  snapshot: PolicySnapshot,
  load: LoadView,
  random: RandomSource,
  costs?: LoadCosts,
): Picker {
  switch (name) {
    case "round_robin":
      return new RoundRobinPicker(snapshot.eligible);
    case "weighted_round_robin":
      return new WeightedRoundRobinPicker(snapshot.eligible);
    case "least_connections":
      return new LeastConnectionsPicker(snapshot.eligible, load);
    case "p2c":
      return new P2cPicker(snapshot.eligible, load, random);
    case "random":
      return new RandomPicker(snapshot.eligible, random);
    case "ip_hash":
      return new IpHashPicker(snapshot, new RoundRobinPicker(snapshot.eligible));
    case "least_loaded":
      if (!costs) throw new Error("least_loaded needs the cluster's load costs");
      return new LeastLoadedPicker(snapshot.eligible, load, random, costs);
  }
}
