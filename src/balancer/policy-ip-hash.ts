/**
 * ip_hash: consistent hashing of the client address through a Maglev table (hash-maglev.ts), so a
 * client keeps its endpoint across connections, processes and replicas while membership holds.
 * The table is built over healthy endpoints; drained, ejected and excluded ones pass the key to the
 * next endpoint in table order. A pick without a client address falls back to round robin.
 */
import type { PolicySnapshot } from "./balancer.js";
import { EndpointSet, type Endpoint } from "./endpoint-set.js";
import { MaglevTable, hashKey } from "./hash-maglev.js";
import { PickedResults, noPick } from "./picked.js";
import type { PickContext, PickResult, Picker } from "./picker.js";

export class IpHashPicker implements Picker {
  private readonly table: MaglevTable;
  private readonly picked: PickedResults;
  private readonly eligibleCount: number;

  constructor(
    snapshot: PolicySnapshot,
    private readonly fallback: Picker,
  ) {
    this.table = new MaglevTable(snapshot.healthy);
    this.picked = new PickedResults(snapshot.healthy);
    this.eligibleCount = snapshot.eligible.length;
  }

  pick(ctx: PickContext): PickResult {
    if (ctx.clientAddress === undefined) return this.fallback.pick(ctx);
    const exclude = ctx.exclude;
    const e = this.table.walk(hashKey(ctx.clientAddress), (c: Endpoint) => EndpointSet.eligible(c) && !exclude?.has(c));
    return e ? this.picked.of(e) : noPick(this.eligibleCount, ctx);
  }
}
