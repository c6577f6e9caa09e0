/**
 * Which endpoint has which prompt prefixes, as far as Fulcrum routed them (prefix-cache affinity), and
 * the rule that turns that into a pick.
 *
 * Per endpoint, a bounded LRU set of the chained block hashes (prefix-blocks.ts) of the prompts routed
 * there: what its prefix cache most likely still holds. A request's match on an endpoint is the
 * number of its leading blocks found there; since hash i names the whole prefix up to block i, a
 * prompt is recorded whole (every block touched), and the scan stops at the first miss.
 *
 * The rule (after SGLang's cache-aware router, with Fulcrum's bounded loads):
 * 1. Among the candidates, the endpoint with the longest match wins (ties: the less active, then
 *    configuration order), unless it is over the bounded-load limit — active ≥ ceil(balanceFactor ×
 *    (total active + 1) / candidates) + slack — or much busier than the least active candidate —
 *    active ≥ ceil(balanceFactor × (least + 1)) + 1 + slack. Then the next longest match is tried,
 *    and so on. The slack (`balance_slack`, default 2 in the config) lets a match stay while the
 *    counts are small: a GPU worker batches several requests at once, so a hand-over (a cold
 *    prefill of the whole prompt elsewhere) costs more than one or two more requests on the worker
 *    that has the prefix.
 *    A match covering less than `minMatch` of the prompt's blocks (`min_match`, default 0.5 in the
 *    config, 0 here) does not decide, as in SGLang's cache threshold: a popular system prompt
 *    before a long new question would otherwise send every conversation that starts with it to one
 *    endpoint.
 * 2. No candidate with a match under both limits (or none covering `minMatch`): the least active
 *    candidate takes it, among equals the one with the fewest recorded blocks (a cold prompt goes
 *    where it costs least and spreads; its blocks are then recorded there).
 * A balance factor below 1 sets no limit: the longest match always wins.
 * The winner's index records the whole prompt.
 */
import { EndpointSet, type Endpoint } from "./endpoint-set.js";
import { isExcluded, noPick } from "./picker-results.js";
import {
  unavailable,
  type LoadView,
  type PickContext,
  type PickResult,
  type Picker,
  type PolicySnapshot,
} from "./picker.js";

/** A bounded set of block hashes kept in least-recently-used order. */
export class BlockLru {
  private readonly blocks = new Map<number, true>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.blocks.size;
  }

  /** The number of leading `hashes` present. */
  matchLength(hashes: readonly number[]): number {
    let n = 0;
    while (n < hashes.length && this.blocks.has(hashes[n] as number)) n++;
    return n;
  }

  /** Records every hash as the most recently used, evicting the least recently used past the capacity. */
  record(hashes: readonly number[]): void {
    const blocks = this.blocks;
    for (const h of hashes) {
      blocks.delete(h);
      blocks.set(h, true);
    }
    for (let over = blocks.size - this.capacity; over > 0; over--) {
      const oldest = blocks.keys().next().value as number;
      blocks.delete(oldest);
    }
  }
}

/** Why the rule picked the endpoint it did (a metric label and the route's explanation). */
export type PrefixDecision = "prefix_match" | "least_loaded";

export interface PrefixPick {
  readonly endpoint: Endpoint;
  readonly decision: PrefixDecision;
  /** Leading blocks of the prompt the chosen endpoint already had. */
  readonly matched: number;
}

export class PrefixIndex {
  private readonly byEndpoint = new Map<string, BlockLru>();

  /**
   * `blocksPerEndpoint`: the most block hashes kept per endpoint (a Map entry each, about 80 bytes);
   * `blockBytes`: the block size the hashes were made with (an index is only valid for one);
   * `balanceSlack`: streams an endpoint may hold beyond both limits before its match is handed on;
   * `minMatch`: the fraction of the prompt's blocks the best match must cover to decide (0 to 1).
   */
  constructor(
    readonly blocksPerEndpoint: number,
    readonly balanceFactor: number,
    readonly blockBytes = 64,
    readonly balanceSlack = 0,
    readonly minMatch = 0,
  ) {}

  /** Leading blocks of `hashes` recorded for `endpoint`. */
  matchLength(endpoint: Endpoint, hashes: readonly number[]): number {
    return this.byEndpoint.get(endpoint.address)?.matchLength(hashes) ?? 0;
  }

  /** Applies the rule above to `candidates` (eligible, not excluded; at least one) and records the pick. */
  pick(candidates: readonly Endpoint[], load: LoadView, hashes: readonly number[]): PrefixPick {
    // One reading of the live counts for the whole rule (other threads move them meanwhile).
    const actives = candidates.map((e) => load.activeOf(e));
    let total = 0;
    let least = Infinity;
    let leastAt = 0;
    let leastCached = Infinity;
    for (let i = 0; i < candidates.length; i++) {
      const active = actives[i] as number;
      total += active;
      if (active > least) continue;
      // Ties go to the endpoint with the fewest cached blocks, so cold prompts spread.
      const cached = this.sizeOf(candidates[i] as Endpoint);
      if (active < least || cached < leastCached) {
        least = active;
        leastAt = i;
        leastCached = cached;
      }
    }
    const f = this.balanceFactor;
    const limit =
      f >= 1
        ? Math.min(Math.ceil((f * (total + 1)) / candidates.length), Math.ceil(f * (least + 1)) + 1) +
          this.balanceSlack
        : Infinity;
    let best: Endpoint | undefined;
    let bestMatch = 0;
    let bestActive = Infinity;
    for (let i = 0; i < candidates.length; i++) {
      const active = actives[i] as number;
      if (active >= limit) continue;
      const e = candidates[i] as Endpoint;
      const matched = this.matchLength(e, hashes);
      if (matched > bestMatch || (matched === bestMatch && matched > 0 && active < bestActive)) {
        best = e;
        bestMatch = matched;
        bestActive = active;
      }
    }
    // A match covering too little of the prompt (a shared system prompt before a long history) does
    // not decide: following it would pile every conversation of a popular prompt on one endpoint.
    if (best !== undefined && bestMatch >= this.minMatch * hashes.length) {
      this.lruOf(best).record(hashes);
      return { endpoint: best, decision: "prefix_match", matched: bestMatch };
    }
    const endpoint = candidates[leastAt] as Endpoint;
    const matched = this.matchLength(endpoint, hashes);
    this.lruOf(endpoint).record(hashes);
    return { endpoint, decision: "least_loaded", matched };
  }

  /** Forgets endpoints that left the cluster. */
  keepOnly(addresses: ReadonlySet<string>): void {
    for (const address of this.byEndpoint.keys())
      if (!addresses.has(address)) this.byEndpoint.delete(address);
  }

  /** Block hashes kept for `endpoint` (tests, /status). */
  sizeOf(endpoint: Endpoint): number {
    return this.byEndpoint.get(endpoint.address)?.size ?? 0;
  }

  private lruOf(endpoint: Endpoint): BlockLru {
    let lru = this.byEndpoint.get(endpoint.address);
    if (lru === undefined) {
      lru = new BlockLru(this.blocksPerEndpoint);
      this.byEndpoint.set(endpoint.address, lru);
    }
    return lru;
  }
}

/** What the prefix picker reads of the endpoint set: live counts and caps. */
export interface PrefixLoadView extends LoadView {
  readonly hasCaps: boolean;
  hasRoom(endpoint: Endpoint): boolean;
}

/**
 * The picker for a pick whose context carries `prefix` (the prompt's block hashes): the rule above
 * over the snapshot's eligible endpoints that are not excluded and, with caps, have a free slot.
 */
export class PrefixPicker implements Picker {
  constructor(
    private readonly snapshot: PolicySnapshot,
    private readonly load: PrefixLoadView,
    private readonly index: PrefixIndex,
  ) {}

  pick(ctx: PickContext): PickResult {
    const hashes = ctx.prefix ?? [];
    const load = this.load;
    const candidates = this.snapshot.eligible.filter(
      (e) => EndpointSet.eligible(e) && !isExcluded(ctx, e) && (!load.hasCaps || load.hasRoom(e)),
    );
    if (candidates.length === 0) {
      const open = this.snapshot.eligible.some((e) => EndpointSet.eligible(e) && !isExcluded(ctx, e));
      return open ? unavailable("at_capacity") : noPick(this.snapshot.eligible.length, ctx);
    }
    const chosen = this.index.pick(candidates, load, hashes);
    return { kind: "complete", endpoint: chosen.endpoint, decidedBy: chosen.decision };
  }
}
