/**
 * Threshold logic for active health checking (Envoy's health checker semantics): an endpoint starts
 * healthy and changes state after exactly `threshold` consecutive probe results that disagree with it.
 * Pure: it only counts; the health checker feeds it probe results and acts on the transition.
 */
import type { EndpointHealth } from "../balancer/endpoint-set.js";

export type ProbeResult = "success" | "failure";

/** What one probe result did: moved the state, confirmed it, or counted towards a threshold. */
export type HealthTransition =
  | { readonly kind: "changed"; readonly to: EndpointHealth }
  | { readonly kind: "unchanged" }
  | { readonly kind: "pending"; readonly streak: number; readonly threshold: number };

export interface Thresholds {
  readonly healthy: number;
  readonly unhealthy: number;
}

export class HealthThresholds {
  private current: EndpointHealth;
  private streak = 0;

  /** `initial`: the state to count from (a new endpoint starts healthy; a reload keeps what it knew). */
  constructor(
    private readonly thresholds: Thresholds,
    initial: EndpointHealth = "healthy",
  ) {
    if (thresholds.healthy < 1 || thresholds.unhealthy < 1) throw new RangeError("thresholds must be ≥ 1");
    this.current = initial;
  }

  get state(): EndpointHealth {
    return this.current;
  }

  observe(result: ProbeResult): HealthTransition {
    const agrees = (result === "success") === (this.current === "healthy");
    if (agrees) {
      this.streak = 0;
      return UNCHANGED;
    }
    this.streak++;
    const threshold = this.current === "healthy" ? this.thresholds.unhealthy : this.thresholds.healthy;
    if (this.streak < threshold) return { kind: "pending", streak: this.streak, threshold };
    this.streak = 0;
    this.current = this.current === "healthy" ? "unhealthy" : "healthy";
    return { kind: "changed", to: this.current };
  }
}

const UNCHANGED: HealthTransition = Object.freeze({ kind: "unchanged" });
