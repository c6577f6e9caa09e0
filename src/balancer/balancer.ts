/**
 * A cluster's balancer: the endpoint set, its policy and optional affinity, behind one `pick()`.
 * The picker is an immutable snapshot rebuilt lazily when the endpoint set's version moved, so
 * health, drain, weight and membership changes cost nothing on picks that follow no change.
 */
import { EndpointSet, type Endpoint } from "./endpoint-set.js";
import {
  unavailable,
  type PickContext,
  type PickResult,
  type Picker,
  type PolicySnapshot,
  type RandomSource,
} from "./picker.js";
import type { LoadCosts } from "./load-cost.js";
import { createPolicyPicker, type PolicyName } from "./policy.js";
import { createAffinityPicker } from "./affinity.js";
import { PrefixPicker, type PrefixIndex } from "./prefix-index.js";

export interface BalancerOptions {
  readonly policy: PolicyName;
  /** Present when the cluster has `affinity`; picks whose context carries `affinityKey` use it. */
  readonly affinity?: { readonly balanceFactor: number } | undefined;
  /**
   * `affinity.key: prompt_prefix`: what was routed where (kept by the caller across reloads); picks
   * whose context carries `prefix` use the prefix picker (prefix-index.ts).
   */
  readonly prefix?: PrefixIndex | undefined;
  readonly random: RandomSource;
  /** `least_loaded` only: the cluster's latency estimates and queue depths (kept across rebuilds). */
  readonly costs?: LoadCosts | undefined;
}

export class Balancer {
  private picker: Picker | undefined;
  private affinityPicker: Picker | undefined;
  private prefixPicker: Picker | undefined;
  private builtVersion = -1;
  private nextRampAt = 0;

  constructor(
    readonly endpoints: EndpointSet,
    private readonly options: BalancerOptions,
  ) {
    // Pickers are built lazily on the data path, where nothing may throw: refuse the wiring bug here.
    if (options.policy === "least_loaded" && !options.costs) throw new Error("least_loaded needs costs");
  }

  get policy(): PolicyName {
    return this.options.policy;
  }

  /**
   * With caps (`max_active`), an endpoint at its cap is not eligible for the policy: a pick that
   * lands on one is made again without the full ones, and "at_capacity" when every candidate is
   * full. An affinity pick keeps its endpoint even when full: the caller waits for a slot there.
   */
  pick(ctx: PickContext): PickResult {
    const set = this.endpoints;
    if (set.ramping) this.stepRamps();
    if (this.builtVersion !== set.version) this.rebuild();
    if (ctx.affinityKey !== undefined && this.affinityPicker) return this.affinityPicker.pick(ctx);
    const picker =
      ctx.prefix !== undefined && this.prefixPicker ? this.prefixPicker : (this.picker as Picker);
    const first = picker.pick(ctx);
    if (first.kind !== "complete" || !set.hasCaps || set.hasRoom(first.endpoint)) return first;
    const exclude = new Set(ctx.exclude);
    for (const e of set.endpoints) if (!set.hasRoom(e)) exclude.add(e);
    const again = picker.pick({ ...ctx, exclude });
    return again.kind === "complete" ? again : unavailable("at_capacity");
  }

  /** Slow start: the ramped weights move on every `rampStepMs` (the pickers are rebuilt). */
  private stepRamps(): void {
    const set = this.endpoints;
    const now = set.now;
    if (now < this.nextRampAt) return;
    this.nextRampAt = now + set.rampStepMs;
    set.refreshRamps();
  }

  private rebuild(): void {
    const snapshot = snapshotOf(this.endpoints.endpoints);
    this.picker = createPolicyPicker(
      this.options.policy,
      snapshot,
      this.endpoints,
      this.options.random,
      this.options.costs,
    );
    this.affinityPicker = this.options.affinity
      ? createAffinityPicker(snapshot, this.endpoints, this.options.affinity.balanceFactor)
      : undefined;
    const index = this.options.prefix;
    if (index) {
      // The index forgets endpoints that left the set.
      index.keepOnly(new Set(this.endpoints.endpoints.map((e) => e.address)));
      this.prefixPicker = new PrefixPicker(snapshot, this.endpoints, index);
    }
    this.builtVersion = this.endpoints.version;
  }
}

export function snapshotOf(endpoints: readonly Endpoint[]): PolicySnapshot {
  return {
    eligible: endpoints.filter((e) => EndpointSet.eligible(e)),
    healthy: endpoints.filter((e) => e.health === "healthy" && !e.removed),
  };
}
