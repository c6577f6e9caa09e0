// ip_hash over Maglev (hash-maglev.ts): a client keeps its endpoint across connections and replicas.
import { EndpointSet, type Endpoint } from "./endpoint-set.js";
import { MaglevTable, maglevKeyHash, type MaglevWalk } from "./hash-maglev.js";
import { completeResults, isExcluded, noPick } from "./picker-results.js";
import type { PickContext, PickResult, Picker, PolicySnapshot } from "./picker.js";

/**
 * Hashes `ctx.clientAddress` (already normalised by the caller, see `normalizeClientAddress`) into a
 * Maglev table over the snapshot's healthy endpoints, so drains and ejections do not reshuffle other
 * clients; from the key's entry it takes the first endpoint in table order that is eligible and not
 * excluded. Without a client address it delegates to `fallback` (round robin).
 */
export class IpHashPicker implements Picker {
  private readonly table: MaglevTable<Endpoint>;
  private readonly walk: MaglevWalk;
  private readonly results: readonly PickResult[];
  private readonly eligibleCount: number;

  constructor(
    snapshot: PolicySnapshot,
    private readonly fallback: Picker,
  ) {
    this.table = new MaglevTable(snapshot.healthy);
    this.walk = this.table.walker();
    this.results = completeResults(this.table.members);
    this.eligibleCount = snapshot.eligible.length;
  }

  pick(ctx: PickContext): PickResult {
    if (ctx.clientAddress === undefined) return this.fallback.pick(ctx);
    const members = this.table.members;
    this.walk.start(maglevKeyHash(ctx.clientAddress));
    for (let i = this.walk.next(); i >= 0; i = this.walk.next()) {
      const e = members[i] as Endpoint;
      if (EndpointSet.eligible(e) && !isExcluded(ctx, e)) return this.results[i] as PickResult;
    }
    return noPick(this.eligibleCount, ctx);
  }
}
