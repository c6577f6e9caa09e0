/**
 * Passive outlier detection after Envoy's consecutive-5xx detector: data-path results (connect
 * failures, resets) count per endpoint; `consecutive_failures` in a row eject it for
 * `base_ejection_time × ejections so far`, unless more than `max_ejection_percent` of the cluster
 * would be ejected (one endpoint may always be ejected). Pure: the caller passes the time and arms the
 * timer that ends an ejection.
 */

export interface OutlierSettings {
  readonly consecutiveFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionPercent: number;
}

export type OutlierVerdict =
  | { readonly kind: "none" }
  | { readonly kind: "eject"; readonly durationMs: number; readonly ejections: number };

interface Track {
  consecutive: number;
  ejections: number;
  ejectedUntil: number;
}

const NONE: OutlierVerdict = Object.freeze({ kind: "none" });

export class OutlierDetector {
  private readonly tracks = new Map<string, Track>();

  constructor(private readonly settings: OutlierSettings) {}

  /**
   * Records one data-path result for `address` among `clusterSize` endpoints. On failure that
   * crosses the threshold, returns the ejection to apply.
   */
  record(address: string, ok: boolean, now: number, clusterSize: number): OutlierVerdict {
    const t = this.track(address);
    if (ok) {
      t.consecutive = 0;
      return NONE;
    }
    if (t.ejectedUntil > now) return NONE;
    t.consecutive++;
    if (this.settings.consecutiveFailures <= 0 || t.consecutive < this.settings.consecutiveFailures)
      return NONE;
    if (!this.mayEject(now, clusterSize)) return NONE;
    t.consecutive = 0;
    t.ejections++;
    const durationMs = this.settings.baseEjectionMs * t.ejections;
    t.ejectedUntil = now + durationMs;
    return { kind: "eject", durationMs, ejections: t.ejections };
  }

  /** An ejection ended (its timer fired); the endpoint takes work again. */
  uneject(address: string): void {
    const t = this.tracks.get(address);
    if (t) t.ejectedUntil = 0;
  }

  forget(address: string): void {
    this.tracks.delete(address);
  }

  ejectedCount(now: number): number {
    let n = 0;
    for (const t of this.tracks.values()) if (t.ejectedUntil > now) n++;
    return n;
  }

  /**
   * Whether one more endpoint may be ejected while `ejected` of `clusterSize` are: not when that
   * would put more than `max_ejection_percent` of the cluster out, but one endpoint always may be.
   * The one statement of the limit: the runtime checks it again, on the set every worker thread
   * reads, before applying an ejection a thread asked for.
   */
  mayEjectAnother(ejected: number, clusterSize: number): boolean {
    if (ejected === 0) return true;
    return ((ejected + 1) * 100) / Math.max(1, clusterSize) <= this.settings.maxEjectionPercent;
  }

  private mayEject(now: number, clusterSize: number): boolean {
    return this.mayEjectAnother(this.ejectedCount(now), clusterSize);
  }

  private track(address: string): Track {
    let t = this.tracks.get(address);
    if (!t) {
      t = { consecutive: 0, ejections: 0, ejectedUntil: 0 };
      this.tracks.set(address, t);
    }
    return t;
  }
}
