/**
 * Affinity: a stream or connection carrying the key sticks to the endpoint the key hashes to
 * (Maglev, as ip_hash). With `balance_factor` ≥ 1, consistent hashing with bounded loads (Mirrokni,
 * Thorup, Zadimoghaddam, "Consistent Hashing with Bounded Loads", SODA 2018, as in HAProxy's
 * hash-balance-factor): an endpoint is full when its load is ≥ ceil(factor × (total + 1) / n), and a
 * full endpoint passes the key to the next endpoint in table order.
 */
import type { PolicySnapshot } from "./balancer.js";
import { EndpointSet, type Endpoint } from "./endpoint-set.js";
import { MaglevTable, hashKey } from "./hash-maglev.js";
import { PickedResults, noPick } from "./picked.js";
import type { LoadView, PickContext, PickResult, Picker } from "./picker.js";

export function createAffinityPicker(snapshot: PolicySnapshot, load: LoadView, balanceFactor: number): Picker {
  return new AffinityPicker(snapshot, load, balanceFactor);
}

class AffinityPicker implements Picker {
  private readonly table: MaglevTable;
  private readonly picked: PickedResults;

  constructor(
    private readonly snapshot: PolicySnapshot,
    private readonly load: LoadView,
    private readonly balanceFactor: number,
  ) {
    this.table = new MaglevTable(snapshot.healthy);
    this.picked = new PickedResults(snapshot.healthy);
  }

  pick(ctx: PickContext): PickResult {
    const key = ctx.affinityKey ?? ctx.clientAddress ?? "";
    const hash = hashKey(key);
    const exclude = ctx.exclude;
    const usable = (c: Endpoint): boolean => EndpointSet.eligible(c) && !exclude?.has(c);
    let e: Endpoint | undefined;
    if (this.balanceFactor >= 1) {
      const limit = this.capacity();
      e = this.table.walk(hash, (c) => usable(c) && this.load.activeOf(c) < limit);
    }
    e ??= this.table.walk(hash, usable);
    return e ? this.picked.of(e) : noPick(this.snapshot.eligible.length, ctx);
  }

  /** ceil(factor × (total load + 1) / eligible endpoints), with the load counted before this pick. */
  private capacity(): number {
    const eligible = this.snapshot.eligible;
    let total = 0;
    for (const e of eligible) total += this.load.activeOf(e);
    return Math.ceil((this.balanceFactor * (total + 1)) / Math.max(1, eligible.length));
  }
}
