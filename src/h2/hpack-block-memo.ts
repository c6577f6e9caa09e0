/**
 * The last few header blocks one HPACK encoder wrote, kept so that a block whose fields repeat one of
 * them is copied instead of encoded again: on a proxy's upstream connection every stream of a method
 * carries the same request fields, and on a client's connection every response the same headers and
 * the same trailers. Encoding such a block is two or three hash lookups per field; matching it is a
 * string comparison per field, most of them between one and the same string.
 *
 * The rule that keeps it exact: the encoder's output for a field list depends only on the list and on
 * the dynamic table (entries and size). A block is kept only when encoding it left the table as it was
 * (every field indexed, or a literal without indexing), and is reused only while the table's version —
 * bumped on every insertion and every size change — is still the one it was encoded against. Reusing it
 * then writes what encoding would write, and leaves both peers' tables as they were.
 *
 * `KeptBlocks` (which blocks are kept, and when keeping stops being worth it) serves the decoder's
 * memo too (hpack-decode-memo.ts).
 */
import { Buffer } from "node:buffer";

/** Blocks kept per encoder: a request, or a response's headers and trailers, and room for a few more. */
const SLOTS = 4;
/** Larger blocks are worked out every time: they are rare, and keeping them would cost their copy. */
export const MEMO_MAX_FIELDS = 24;
export const MEMO_MAX_OCTETS = 512;
/**
 * After this many blocks kept without one reused (a value that changes with every message: a
 * grpc-timeout, a trace id), only one block in `SPARSE_KEEP` is kept, until one is reused again.
 */
const UNUSED_KEEPS = 32;
const SPARSE_KEEP = 16;

export const EMPTY_OCTETS = Buffer.alloc(0);

/** The kept blocks of one memo, newest first (so the freshest of near-alike blocks is tried first). */
export class KeptBlocks<B> {
  readonly list: B[] = [];
  /** Blocks reused rather than worked out again; for tests and diagnostics. */
  reused = 0;
  /** Blocks kept (or passed over) since one was last reused. */
  private sinceReuse = 0;

  constructor(private readonly make: () => B) {}

  /** Counts a reuse of `b` and returns it. */
  hit(b: B): B {
    this.reused++;
    this.sinceReuse = 0;
    return b;
  }

  /**
   * The object to fill with a block to keep, now the newest (the oldest one's, once all are in use);
   * undefined when blocks have long gone unreused and this one is passed over.
   */
  slot(): B | undefined {
    const since = this.sinceReuse++;
    if (since >= UNUSED_KEEPS && since % SPARSE_KEEP !== 0) return undefined;
    const list = this.list;
    const b = list.length < SLOTS ? this.make() : (list.pop() as B);
    list.unshift(b);
    return b;
  }
}

/** One kept block: its fields and the octets they encoded to, against table version `version`. */
class MemoBlock {
  version = -1;
  count = 0;
  length = 0;
  readonly names: string[] = [];
  readonly values: string[] = [];
  readonly never: boolean[] = [];
  /** Sized to the largest block kept here (most gRPC blocks are a few dozen octets). */
  octets: Buffer = EMPTY_OCTETS;

  /** Whether field `i` of this block is (name, value, never). */
  has(i: number, name: string, value: string, never: boolean): boolean {
    return this.names[i] === name && this.values[i] === value && this.never[i] === never;
  }

  /** Whether this block's first `n` fields are `other`'s first `n`. */
  sharesPrefix(other: MemoBlock, n: number): boolean {
    for (let i = 0; i < n; i++) {
      if (!this.has(i, other.names[i] as string, other.values[i] as string, other.never[i] as boolean))
        return false;
    }
    return true;
  }
}

/**
 * Used by the encoder around each block: `begin`, then `match` per field — which says whether the
 * fields so far still match a kept block, or how many matched fields the encoder must now encode
 * (`replayName` …) before this one — then `end`: the kept block the whole list matched, or undefined
 * (the encoder encodes any fields still matched, `unmatched`, and offers the block to `keep`).
 */
export class HpackBlockMemo {
  private readonly kept = new KeptBlocks(() => new MemoBlock());
  /** The kept block the fields so far match (its first `matched` fields), while matching. */
  private candidate: MemoBlock | undefined;
  private matched = 0;
  private matching = false;
  private keepable = false;
  private version = 0;
  /** The fields of the block being encoded, for keeping it afterwards. */
  private readonly names: string[] = [];
  private readonly values: string[] = [];
  private readonly never: boolean[] = [];
  private recorded = 0;

  /** Blocks copied from a kept one rather than encoded; for tests and diagnostics. */
  get reused(): number {
    return this.kept.reused;
  }

  /** Starts a block encoded against table version `version`. */
  begin(version: number): void {
    this.version = version;
    this.matching = true;
    this.keepable = true;
    this.candidate = undefined;
    this.matched = 0;
    this.recorded = 0;
  }

  /** This block starts with a table size update: no kept block applies, and it is not kept. */
  skip(): void {
    this.matching = false;
    this.keepable = false;
  }

  /**
   * -1 while the fields so far, this one included, match a kept block (nothing to encode yet);
   * otherwise the number of earlier fields matched but not yet encoded, which the encoder encodes
   * (`replayName(i)` …) before this one; 0 once matching has failed.
   */
  match(name: string, value: string, never: boolean): number {
    if (!this.matching) return 0;
    const n = this.matched;
    const current = this.candidate;
    if (current !== undefined && current.count > n && current.has(n, name, value, never)) {
      this.matched = n + 1;
      return -1;
    }
    for (const b of this.kept.list) {
      if (b === current || b.version !== this.version || b.count <= n || !b.has(n, name, value, never))
        continue;
      if (current !== undefined && !b.sharesPrefix(current, n)) continue;
      this.candidate = b;
      this.matched = n + 1;
      return -1;
    }
    this.matching = false;
    return n;
  }

  replayName(i: number): string {
    return (this.candidate as MemoBlock).names[i] as string;
  }

  replayValue(i: number): string {
    return (this.candidate as MemoBlock).values[i] as string;
  }

  replayNever(i: number): boolean {
    return (this.candidate as MemoBlock).never[i] as boolean;
  }

  /** Notes a field the encoder encodes, for keeping the block afterwards. */
  record(name: string, value: string, never: boolean): void {
    const i = this.recorded++;
    if (i >= MEMO_MAX_FIELDS) return;
    this.names[i] = name;
    this.values[i] = value;
    this.never[i] = never;
  }

  /** The kept block the whole list matched; undefined when the block has to be encoded. */
  end(): MemoBlock | undefined {
    if (!this.matching) return undefined;
    const n = this.matched;
    const current = this.candidate;
    if (current === undefined) return undefined;
    if (current.count === n) return this.kept.hit(current);
    // The list is a prefix of the candidate: another kept block may be exactly it.
    for (const b of this.kept.list) {
      if (b.version === this.version && b.count === n && b.sharesPrefix(current, n)) return this.kept.hit(b);
    }
    return undefined;
  }

  /** After an `end` that found no block: the fields matched but not yet encoded (`replayName` …). */
  unmatched(): number {
    if (!this.matching) return 0;
    this.matching = false;
    return this.candidate === undefined ? 0 : this.matched;
  }

  /**
   * Keeps the block just encoded (`octets[0, length)`) when it left the table at the version it began
   * with and is small enough, in place of the oldest kept block.
   */
  keep(versionAfter: number, octets: Buffer, length: number): void {
    const count = this.recorded;
    if (!this.keepable || versionAfter !== this.version) return;
    if (count === 0 || count > MEMO_MAX_FIELDS || length > MEMO_MAX_OCTETS) return;
    const b = this.kept.slot();
    if (b === undefined) return;
    for (let i = 0; i < count; i++) {
      b.names[i] = this.names[i] as string;
      b.values[i] = this.values[i] as string;
      b.never[i] = this.never[i] as boolean;
    }
    b.count = count;
    b.octets = roomFor(b.octets, length);
    b.length = octets.copy(b.octets, 0, 0, length);
    b.version = versionAfter;
  }
}

/** `octets` when it holds `length` octets, else a buffer that does (at least 64: most blocks are small). */
export function roomFor(octets: Buffer, length: number): Buffer {
  return octets.length >= length ? octets : Buffer.allocUnsafe(Math.max(64, length));
}
