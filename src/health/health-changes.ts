/**
 * The last health change of each endpoint of one cluster, with its reason and time, for `/status`
 * and the status page: active health transitions (`unhealthy: 3 failed probes (ECONNREFUSED)`),
 * outlier ejections and their end, and drains through the admin API. Only the main thread records
 * them (it probes, ejects and serves the admin API). Pure: the caller passes the time.
 */

/** What an endpoint became. */
export type HealthChangeTo = "healthy" | "unhealthy" | "ejected" | "drained" | "undrained";

export interface HealthChange {
  readonly to: HealthChangeTo;
  readonly reason: string;
  /** Epoch ms. */
  readonly at: number;
}

export class HealthChanges {
  private readonly last = new Map<string, HealthChange>();

  record(address: string, to: HealthChangeTo, reason: string, atMs: number): void {
    this.last.set(address, { to, reason, at: atMs });
  }

  lastOf(address: string): HealthChange | undefined {
    return this.last.get(address);
  }

  /** Forgets endpoints that left the cluster. */
  keepOnly(addresses: ReadonlySet<string>): void {
    for (const address of this.last.keys()) if (!addresses.has(address)) this.last.delete(address);
  }
}

/** `3 failed probes (ECONNREFUSED)` / `2 passed probes`: why a threshold moved an endpoint. */
export function probeReason(
  to: "healthy" | "unhealthy",
  threshold: number,
  lastReason: string | undefined,
): string {
  const what = to === "healthy" ? "passed" : "failed";
  const probes = `${threshold} ${what} probe${threshold === 1 ? "" : "s"}`;
  return lastReason && to === "unhealthy" ? `${probes} (${lastReason})` : probes;
}
