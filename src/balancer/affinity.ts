// Affinity: Maglev + bounded loads (Mirrokni et al., SODA 2018; HAProxy): sticky, never overloaded.
import { EndpointSet, type Endpoint } from "./endpoint-set.js";
import { MaglevTable, maglevKeyHash, type MaglevWalk } from "./hash-maglev.js";
import { completeResults, isExcluded, noPick } from "./picker-results.js";
import type { LoadView, PickContext, PickResult, Picker, PolicySnapshot } from "./picker.js";

/**
 * A picker for work that carries `ctx.affinityKey`: the key hashes into a Maglev table over the
 * snapshot's healthy endpoints and takes, in table order from its entry, the first endpoint that is
 * eligible and not excluded.
 *
 * `balanceFactor` 0 is pure consistent hashing. `balanceFactor` ≥ 1 gives consistent hashing with
 * bounded loads (Mirrokni, Thorup, Zadimoghaddam, SODA 2018; HAProxy's hash-balance-factor): an
 * endpoint is full when its active count is ≥ `ceil(balanceFactor × (total + 1) / eligible)`, total
 * being the active count over the eligible endpoints before this pick; a full endpoint passes the key
 * on to the next one in table order, and when all are full the first usable one takes it anyway. A
 * pick without a key hashes "".
 */
export function createAffinityPicker(
  snapshot: PolicySnapshot,
  load: LoadView,
  balanceFactor: number,
): Picker {
  return new AffinityPicker(snapshot, load, balanceFactor);
}

class AffinityPicker implements Picker {
  private readonly table: MaglevTable<Endpoint>;
  private readonly walk: MaglevWalk;
  private readonly results: readonly PickResult[];
  private readonly eligible: readonly Endpoint[];
  private readonly bounded: boolean;

  constructor(
    snapshot: PolicySnapshot,
    private readonly load: LoadView,
    private readonly balanceFactor: number,
  ) {
    this.table = new MaglevTable(snapshot.healthy);
    this.walk = this.table.walker();
    this.results = completeResults(this.table.members);
    this.eligible = snapshot.eligible;
    this.bounded = balanceFactor >= 1;
  }

  pick(ctx: PickContext): PickResult {
    const members = this.table.members;
    const limit = this.bounded ? this.capacity() : Infinity;
    let firstUsable = -1;
    this.walk.start(maglevKeyHash(ctx.affinityKey ?? ""));
    for (let i = this.walk.next(); i >= 0; i = this.walk.next()) {
      const e = members[i] as Endpoint;
      if (!EndpointSet.eligible(e) || isExcluded(ctx, e)) continue;
      if (this.load.activeOf(e) < limit) return this.results[i] as PickResult;
      if (firstUsable < 0) firstUsable = i;
    }
    return firstUsable >= 0 ? (this.results[firstUsable] as PickResult) : noPick(this.eligible.length, ctx);
  }

  /** The bounded-load capacity of one endpoint for this pick. */
  private capacity(): number {
    const eligible = this.eligible;
    let total = 0;
    for (const e of eligible) total += this.load.activeOf(e);
    return Math.ceil((this.balanceFactor * (total + 1)) / Math.max(1, eligible.length));
  }
}
