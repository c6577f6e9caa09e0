/**
 * Latency histogram on HdrHistogram (hdr-histogram-js, the JavaScript port of Gil Tene's HdrHistogram:
 * fixed relative precision over a wide range, cheap to record and to merge). Values are recorded in
 * microseconds with 3 significant digits, up to an hour.
 */
import * as hdr from "hdr-histogram-js";

export interface LatencySummary {
  readonly count: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

export class LatencyHistogram {
  private readonly h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });

  recordMicros(micros: number): void {
    this.h.recordValue(Math.max(1, Math.round(micros)));
  }

  recordMs(ms: number): void {
    this.recordMicros(ms * 1000);
  }

  get count(): number {
    return this.h.totalCount;
  }

  percentileMs(p: number): number {
    return this.h.totalCount === 0 ? 0 : this.h.getValueAtPercentile(p) / 1000;
  }

  add(other: LatencyHistogram): void {
    this.h.add(other.h);
  }

  reset(): void {
    this.h.reset();
  }

  summary(): LatencySummary {
    return {
      count: this.h.totalCount,
      meanMs: this.h.totalCount === 0 ? 0 : this.h.mean / 1000,
      p50Ms: this.percentileMs(50),
      p90Ms: this.percentileMs(90),
      p99Ms: this.percentileMs(99),
      p999Ms: this.percentileMs(99.9),
      maxMs: this.h.totalCount === 0 ? 0 : this.h.maxValue / 1000,
    };
  }
}
