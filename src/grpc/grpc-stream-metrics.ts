/**
 * The metrics of finished gRPC streams for one listener, either engine: streams by status, their
 * duration and bytes. Counters go through hot-path tallies (metrics-tally.ts), resolved once per
 * cluster and status, so a stream costs a few additions.
 */
import type { Metrics } from "../metrics/metrics.js";
import type { CounterTally, HistogramTally } from "../metrics/metrics-tally.js";
import type { StreamOutcome } from "./stream-outcome.js";
import { statusName } from "./grpc-status.js";

type StreamsTally = CounterTally<"listener" | "cluster" | "grpc_code">;

export class GrpcStreamMetrics {
  private readonly byCluster = new Map<
    string,
    { duration: HistogramTally<"listener" | "cluster">; codes: StreamsTally[] }
  >();
  private readonly bytesIn: CounterTally<"listener" | "direction">;
  private readonly bytesOut: CounterTally<"listener" | "direction">;

  constructor(
    private readonly metrics: Metrics,
    private readonly listener: string,
  ) {
    this.bytesIn = metrics.bytesTally({ listener, direction: "in" });
    this.bytesOut = metrics.bytesTally({ listener, direction: "out" });
  }

  report(cluster: string, outcome: StreamOutcome): void {
    let entry = this.byCluster.get(cluster);
    if (!entry) {
      entry = {
        duration: this.metrics.streamDuration.tally({ listener: this.listener, cluster }),
        codes: [],
      };
      this.byCluster.set(cluster, entry);
    }
    const code = outcome.status;
    let tally = Number.isInteger(code) && code >= 0 && code < 64 ? entry.codes[code] : undefined;
    if (!tally) {
      tally = this.metrics.grpcStreamsTally({
        listener: this.listener,
        cluster,
        grpc_code: statusName(code),
      });
      if (Number.isInteger(code) && code >= 0 && code < 64) entry.codes[code] = tally;
    }
    tally.add(1);
    entry.duration.observe(outcome.seconds);
    if (outcome.bytesIn > 0) this.bytesIn.add(outcome.bytesIn);
    if (outcome.bytesOut > 0) this.bytesOut.add(outcome.bytesOut);
  }
}
