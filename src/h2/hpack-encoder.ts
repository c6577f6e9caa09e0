/**
 * HPACK header block encoder (RFC 7541 §6) for one connection direction, sized by the peer's
 * SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2).
 *
 * Choices, per field: an exact static or dynamic match becomes an indexed field (§6.1); otherwise a
 * literal, naming the static or dynamic entry with the same name when there is one, with incremental
 * indexing (§6.2.1) so a field that repeats on the next stream costs one octet — except for sensitive
 * names and fields received as never indexed, which go out never indexed (§6.2.3, §7.1.3), and for names
 * whose values change with nearly every message (indexing them would only evict the fields that do
 * repeat): those are indexed only the first time, for their name. Strings are Huffman-coded when that is shorter (§5.2). A lowered table size from the peer is
 * signalled at the start of the next block, the smallest size first (§4.2).
 *
 * In steady gRPC traffic every field of a request or response is already in a table, so a block is a
 * few indexed octets and encoding allocates nothing; the output buffer is reused block after block. A
 * block that repeats one of the last few exactly, while the table is as it was, is not encoded at all
 * but copied (hpack-block-memo.ts).
 */
import { Buffer } from "node:buffer";
import { HpackBlockMemo } from "./hpack-block-memo.js";
import { HpackDynamicTable, hpackEntrySize } from "./hpack-dynamic-table.js";
import type { HeaderList } from "./hpack-header-list.js";
import { huffmanEncode, huffmanEncodedLength } from "./hpack-huffman.js";
import { encodeInteger } from "./hpack-integer.js";
import { STATIC_TABLE_LENGTH, staticTableName } from "./hpack-static-table.js";

export interface HpackEncoderOptions {
  /** Largest dynamic table this encoder uses, whatever the peer allows. Default 4,096; 0 disables it. */
  readonly maxTableSize?: number;
  /** Names always sent never indexed. Default: authorization, proxy-authorization. */
  readonly sensitiveNames?: Iterable<string>;
  /**
   * Names whose values rarely repeat: indexed only while the name is in neither table (so later values
   * can refer to it) or with an empty value. Default: `DEFAULT_VOLATILE_NAMES`.
   */
  readonly volatileNames?: Iterable<string>;
  /** "shorter": Huffman-code a string when that makes it shorter (default); "always"; "never". */
  readonly huffman?: "shorter" | "always" | "never";
  /** Copy a block that repeats a recent one instead of encoding it again (hpack-block-memo.ts). Default true. */
  readonly reuseBlocks?: boolean;
}

/** Names not worth a table entry: their values differ from message to message. */
export const DEFAULT_VOLATILE_NAMES: readonly string[] = [
  "content-length",
  "date",
  "etag",
  "last-modified",
  "location",
  "grpc-timeout",
  "grpc-message",
  "grpc-status-details-bin",
  "traceparent",
  "grpc-trace-bin",
];

const DEFAULT_SENSITIVE: ReadonlySet<string> = new Set(["authorization", "proxy-authorization"]);
const DEFAULT_VOLATILE: ReadonlySet<string> = new Set(DEFAULT_VOLATILE_NAMES);

/** What the encoder knows of one name: its static entries, its policy, its dynamic entries. */
interface NameInfo {
  /** Lowest static index with this name, or 0. */
  readonly staticNameIndex: number;
  readonly staticValues: ReadonlyMap<string, number> | null;
  readonly sensitive: boolean;
  readonly volatile: boolean;
  /** Insertion number of the newest dynamic entry with this name, or -1. */
  latest: number;
  /** Insertion number of the newest dynamic entry per value. */
  readonly values: Map<string, number>;
  /**
   * The last field of this name sent as a literal that left the table alone (volatile, sensitive or
   * too large), as encoded: the same value with the same name index is copied, not encoded again
   * (a request's content-length, a response's date).
   */
  literalValue: string | undefined;
  literalNameIndex: number;
  literalNever: boolean;
  literalBytes: Buffer | undefined;
}

/**
 * The dynamic table plus one map from name to NameInfo, kept in step with insertions and evictions, so
 * that a field costs two or three hash lookups. Only static names and names with dynamic entries have
 * an entry, which bounds the map by the two tables whatever names a peer makes up.
 */
class EncoderTable extends HpackDynamicTable {
  private readonly byName = new Map<string, NameInfo>();

  constructor(
    maxSize: number,
    private readonly sensitive: ReadonlySet<string>,
    private readonly volatile: ReadonlySet<string>,
  ) {
    super(maxSize);
  }

  /** The name's info; undefined for a name in neither table. */
  info(name: string): NameInfo | undefined {
    const known = this.byName.get(name);
    if (known !== undefined) return known;
    const fromStatic = staticTableName(name);
    return fromStatic === undefined ? undefined : this.create(name, fromStatic.nameIndex, fromStatic.values);
  }

  /** Whether a name in neither table is sensitive. */
  isSensitive(name: string): boolean {
    return this.sensitive.has(name);
  }

  /** HPACK index of the entry with this insertion number. */
  indexOf(insertion: number): number {
    return STATIC_TABLE_LENGTH + this.insertCount - insertion;
  }

  insert(name: string, value: string): void {
    this.add(name, value, 0);
    if (this.length === 0) return; // larger than the table: it emptied it instead
    // Looked up after adding: the eviction may have dropped the name's info.
    const info = this.byName.get(name) ?? this.create(name, 0, null);
    const k = this.insertCount - 1;
    info.latest = k;
    info.values.set(value, k);
  }

  protected override evicted(name: string, value: string, insertion: number): void {
    const info = this.byName.get(name);
    if (info === undefined) return;
    if (info.values.get(value) === insertion) info.values.delete(value);
    // Entries leave oldest first, so when the newest of a name goes, all of that name are gone.
    if (info.latest === insertion) {
      info.latest = -1;
      if (info.staticNameIndex === 0) this.byName.delete(name);
    }
  }

  private create(
    name: string,
    staticNameIndex: number,
    staticValues: ReadonlyMap<string, number> | null,
  ): NameInfo {
    const info: NameInfo = {
      staticNameIndex,
      staticValues,
      sensitive: this.sensitive.has(name),
      volatile: this.volatile.has(name),
      latest: -1,
      values: new Map(),
      literalValue: undefined,
      literalNameIndex: 0,
      literalNever: false,
      literalBytes: undefined,
    };
    this.byName.set(name, info);
    return info;
  }
}

export class HpackEncoder {
  private readonly table: EncoderTable;
  private readonly ownMaxTableSize: number;
  private readonly huffman: "shorter" | "always" | "never";
  private pendingUpdate = false;
  private pendingMin = 0;
  private pendingFinal = 0;
  private buffer: Buffer = Buffer.allocUnsafe(256);
  private pos = 0;
  private readonly memo: HpackBlockMemo | undefined;
  /** Where the last block is: `buffer`, or a kept block's octets. */
  private out: Buffer = this.buffer;

  constructor(options: HpackEncoderOptions = {}) {
    this.ownMaxTableSize = options.maxTableSize ?? 4096;
    this.huffman = options.huffman ?? "shorter";
    this.memo = options.reuseBlocks === false ? undefined : new HpackBlockMemo();
    // Every connection starts with a 4,096-octet table (RFC 9113 §6.5.2); a smaller own limit is
    // signalled in the first block.
    this.table = new EncoderTable(
      4096,
      options.sensitiveNames === undefined ? DEFAULT_SENSITIVE : new Set(options.sensitiveNames),
      options.volatileNames === undefined ? DEFAULT_VOLATILE : new Set(options.volatileNames),
    );
    this.setPeerMaxTableSize(4096);
  }

  /** The block written by the last `encode` or `end`: `output[0, length)`; overwritten by the next. */
  get output(): Buffer {
    return this.out;
  }

  /** Blocks copied from a recent identical one instead of encoded (hpack-block-memo.ts). */
  get blocksReused(): number {
    return this.memo?.reused ?? 0;
  }

  /** Size in octets of the dynamic table (§4.1). */
  get dynamicTableSize(): number {
    return this.table.size;
  }

  get dynamicTableCapacity(): number {
    return this.table.capacity;
  }

  /** Copies the dynamic table, newest entry first; for tests and diagnostics. */
  dynamicTableEntries(): Array<[string, string]> {
    return this.table.entries();
  }

  /** Applies the peer's SETTINGS_HEADER_TABLE_SIZE; a change is signalled in the next block. */
  setPeerMaxTableSize(size: number): void {
    const target = Math.min(size, this.ownMaxTableSize);
    if (!this.pendingUpdate) {
      if (target === this.table.capacity) return;
      this.pendingUpdate = true;
      this.pendingMin = target;
    }
    this.pendingMin = Math.min(this.pendingMin, target);
    this.pendingFinal = target;
  }

  /** Encodes every field of `list`, keeping each field's never-indexed flag; returns the block length. */
  encode(list: HeaderList): number {
    this.begin();
    for (let i = 0; i < list.length; i++) this.field(list.name(i), list.value(i), list.neverIndexed(i));
    return this.end();
  }

  /** Starts a block (then `field` per field, then `end`), emitting any pending table size updates. */
  begin(): void {
    this.pos = 0;
    this.memo?.begin(this.table.version);
    if (!this.pendingUpdate) return;
    this.memo?.skip();
    this.pendingUpdate = false;
    this.ensure(12);
    if (this.pendingMin < this.pendingFinal) {
      this.pos = encodeInteger(this.pendingMin, 5, 0x20, this.buffer, this.pos);
      this.table.setCapacity(this.pendingMin);
    }
    this.pos = encodeInteger(this.pendingFinal, 5, 0x20, this.buffer, this.pos);
    this.table.setCapacity(this.pendingFinal);
  }

  /** Appends one field; names must be lower case (RFC 9113 §8.2.1), characters are octets (latin1). */
  field(name: string, value: string, neverIndexed = false): void {
    const memo = this.memo;
    if (memo !== undefined) {
      const replay = memo.match(name, value, neverIndexed);
      if (replay < 0) return;
      if (replay > 0) this.replay(memo, replay);
      memo.record(name, value, neverIndexed);
    }
    this.encodeField(name, value, neverIndexed);
  }

  /** Ends the block and returns its length; the block is `output[0, length)`. */
  end(): number {
    const memo = this.memo;
    if (memo !== undefined) {
      const kept = memo.end();
      if (kept !== undefined) {
        this.out = kept.octets;
        return kept.length;
      }
      const replay = memo.unmatched();
      if (replay > 0) this.replay(memo, replay);
      memo.keep(this.table.version, this.buffer, this.pos);
    }
    this.out = this.buffer;
    return this.pos;
  }

  /** Encodes the first `n` fields of the block, which matched a kept block until the next did not. */
  private replay(memo: HpackBlockMemo, n: number): void {
    for (let i = 0; i < n; i++) {
      const name = memo.replayName(i);
      const value = memo.replayValue(i);
      const never = memo.replayNever(i);
      memo.record(name, value, never);
      this.encodeField(name, value, never);
    }
  }

  private encodeField(name: string, value: string, neverIndexed: boolean): void {
    // Worst case: 5 octets per integer plus each string raw.
    this.ensure(16 + name.length + value.length);
    const table = this.table;
    const info = table.info(name);
    if (info === undefined) {
      // Indexed even when volatile: its name has to enter the table once.
      const never = neverIndexed || table.isSensitive(name);
      this.literal(name, value, 0, never, this.inserts(name, value, never, false));
      return;
    }
    const never = neverIndexed || info.sensitive;
    if (!never) {
      const fromStatic = info.staticValues?.get(value);
      if (fromStatic !== undefined) {
        this.pos = encodeInteger(fromStatic, 7, 0x80, this.buffer, this.pos);
        return;
      }
      const k = info.values.get(value);
      if (k !== undefined) {
        this.pos = encodeInteger(table.indexOf(k), 7, 0x80, this.buffer, this.pos);
        return;
      }
    }
    // A static name index is preferred: smaller, and it never moves.
    let nameIndex = info.staticNameIndex;
    if (nameIndex === 0 && info.latest >= 0) nameIndex = table.indexOf(info.latest);
    // A volatile name enters the table once, so that later values can at least refer to its name.
    const volatile = nameIndex !== 0 && value.length > 0 && info.volatile;
    const inserts = this.inserts(name, value, never, volatile);
    if (nameIndex === 0 || inserts) {
      this.literal(name, value, nameIndex, never, inserts);
      return;
    }
    const cached = info.literalBytes;
    if (
      cached !== undefined &&
      info.literalValue === value &&
      info.literalNameIndex === nameIndex &&
      info.literalNever === never
    ) {
      this.ensure(cached.length);
      this.pos += cached.copy(this.buffer, this.pos);
      return;
    }
    const start = this.pos;
    this.literal(name, value, nameIndex, never, false);
    info.literalValue = value;
    info.literalNameIndex = nameIndex;
    info.literalNever = never;
    info.literalBytes = Buffer.from(this.buffer.subarray(start, this.pos));
  }

  /** Whether a literal of this field enters the dynamic table (incremental indexing). */
  private inserts(name: string, value: string, never: boolean, volatile: boolean): boolean {
    // Not above 3/4 of the table: one field would otherwise evict all the others.
    return !never && !volatile && hpackEntrySize(name, value) * 4 <= this.table.capacity * 3;
  }

  /** A literal field; `inserts` (from `inserts()`) says whether it enters the dynamic table. */
  private literal(name: string, value: string, nameIndex: number, never: boolean, inserts: boolean): void {
    if (never) {
      this.pos = encodeInteger(nameIndex, 4, 0x10, this.buffer, this.pos);
    } else if (inserts) {
      this.pos = encodeInteger(nameIndex, 6, 0x40, this.buffer, this.pos);
      this.table.insert(name, value);
    } else {
      this.pos = encodeInteger(nameIndex, 4, 0x00, this.buffer, this.pos);
    }
    if (nameIndex === 0) this.string(name);
    this.string(value);
  }

  private string(s: string): void {
    const huffmanLength = this.huffman === "never" ? s.length : huffmanEncodedLength(s);
    if (huffmanLength < s.length || (this.huffman === "always" && s.length > 0)) {
      // "always" can make a string longer than the room `field` reserved for it raw.
      this.ensure(5 + huffmanLength);
      this.pos = encodeInteger(huffmanLength, 7, 0x80, this.buffer, this.pos);
      this.pos = huffmanEncode(s, this.buffer, this.pos);
      return;
    }
    this.pos = encodeInteger(s.length, 7, 0x00, this.buffer, this.pos);
    this.pos += this.buffer.write(s, this.pos, "latin1");
  }

  private ensure(extra: number): void {
    const needed = this.pos + extra;
    if (needed <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(needed, this.buffer.length * 2));
    this.buffer.copy(grown, 0, 0, this.pos);
    this.buffer = grown;
  }
}
