/**
 * HPACK header block decoder (RFC 7541 §3, §6) with the header list size limit of RFC 9113 §6.5.2.
 *
 * One decoder per connection direction: it owns the dynamic table the peer's encoder fills. It reports
 * instead of throwing (the data plane does not throw): "compression_error" for a malformed block — an
 * HTTP/2 connection error of type COMPRESSION_ERROR (RFC 9113 §4.3), the reason in `lastError` — and
 * "header_list_too_large" when the fields exceed the list limit. In that case the block is still decoded
 * to its end so the dynamic table stays in step with the peer and only the stream has to be refused.
 *
 * Bounded work against HPACK bombs: integers are capped (hpack-integer.ts); a string length beyond the
 * block is an error before anything is read; once the list is over its limit no further field becomes a
 * JavaScript string or a list entry unless the dynamic table must hold it (then it is at most the table
 * size); a Huffman string that cannot fit the remaining budget is validated without being decoded; and
 * the scratch space for Huffman output is bounded by the budget it must fit.
 */
import { Buffer } from "node:buffer";
import { isValidFieldNameOctets, isValidFieldValueOctets } from "./h2-field-validation.js";
import { HpackDecodeMemo } from "./hpack-decode-memo.js";
import { HpackDynamicTable, HPACK_ENTRY_OVERHEAD } from "./hpack-dynamic-table.js";
import { FIELD_NEVER_INDEXED, type HeaderList } from "./hpack-header-list.js";
import { huffmanDecode, huffmanDecodedMaxLength, huffmanDecodedMinLength } from "./hpack-huffman.js";
import { decodeInteger, type HpackCursor } from "./hpack-integer.js";
import { STATIC_NAMES, STATIC_TABLE_LENGTH, STATIC_VALUES } from "./hpack-static-table.js";

export type HpackDecodeStatus = "ok" | "header_list_too_large" | "compression_error";

/** Why a block was a COMPRESSION_ERROR. */
export type HpackDecodeError =
  /** A representation or string runs past the end of the block. */
  | "truncated"
  /** An integer cut by the block's end, above 2^31 - 1, or with more than five continuation octets. */
  | "bad_integer"
  /** Index 0, or an index beyond the static and dynamic tables (§2.3.3). */
  | "bad_index"
  /** EOS in a Huffman string, or padding longer than 7 bits or not all ones (§5.2). */
  | "bad_huffman"
  /** A dynamic table size update above our SETTINGS_HEADER_TABLE_SIZE (§6.3). */
  | "size_update_too_large"
  /** A dynamic table size update after the first field of a block (§4.2). */
  | "size_update_misplaced"
  /** We lowered SETTINGS_HEADER_TABLE_SIZE and the block did not start with an update (§4.2). */
  | "size_update_missing";

export interface HpackDecoderOptions {
  /**
   * Our SETTINGS_HEADER_TABLE_SIZE: the largest size the peer's encoder may give the table, and its
   * initial size. Default 4,096 (RFC 9113 §6.5.2). A connection starts at 4,096 whatever we announce:
   * an engine keeps the default and calls `setMaxTableSize` when the peer acknowledges our SETTINGS.
   */
  readonly maxTableSize?: number;
  /** Largest header list, in RFC 9113 §6.5.2 octets, that a block may decode to. Default 16 KiB. */
  readonly maxHeaderListSize?: number;
  /** Give a block that repeats a recent one its fields without decoding it (hpack-decode-memo.ts). Default true. */
  readonly reuseBlocks?: boolean;
}

/** Dynamic table entry flags. */
const NAME_INVALID = 1;
const VALUE_INVALID = 2;

type Indexing = "incremental" | "none" | "never";

/** Where one string literal of the block lies; reused for every literal. */
class StringRef {
  huffman = false;
  /** Start and length of the encoded octets in the block. */
  start = 0;
  encoded = 0;
  /** Decoded length in octets. */
  length = 0;
  /** Offset of the decoded octets in the scratch buffer; -1 while not decoded there. */
  at = -1;
}

/** A literal field value sent without indexing, as it was encoded and as it decoded. */
interface RepeatedLiteral {
  readonly name: string;
  raw: Buffer;
  value: string;
  /** VALUE_INVALID when the value is not a valid field value, else 0. */
  flag: number;
}

/** Names whose last unindexed literal is remembered, per decoder; and the longest remembered. */
const REPEATED_LITERALS = 4;
const MAX_REPEATED_OCTETS = 256;

export class HpackDecoder {
  private readonly table: HpackDynamicTable;
  private settingsMaxTableSize: number;
  private maxListSize: number;
  private sizeUpdateRequired = false;
  private readonly cursor: HpackCursor = { offset: 0 };
  private readonly nameRef = new StringRef();
  private readonly valueRef = new StringRef();
  private scratch: Buffer = Buffer.allocUnsafe(256);
  private scratchHigh = 0;
  private over = false;
  private foundName = "";
  private foundValue = "";
  private foundFlag = 0;
  private readonly repeated: RepeatedLiteral[] = [];
  private repeatedNext = 0;
  private readonly memo: HpackDecodeMemo | undefined;
  /** Why the last `decode` returned "compression_error"; null after a successful one. */
  lastError: HpackDecodeError | null = null;

  constructor(options: HpackDecoderOptions = {}) {
    this.settingsMaxTableSize = options.maxTableSize ?? 4096;
    this.maxListSize = options.maxHeaderListSize ?? 16 * 1024;
    this.table = new HpackDynamicTable(this.settingsMaxTableSize);
    this.memo = options.reuseBlocks === false ? undefined : new HpackDecodeMemo();
  }

  /** Blocks given the fields of a recent identical one instead of decoded (hpack-decode-memo.ts). */
  get blocksReused(): number {
    return this.memo?.reused ?? 0;
  }

  /**
   * Applies a new SETTINGS_HEADER_TABLE_SIZE of ours once the peer acknowledged it (RFC 9113 §6.5.3).
   * Below the table's current size, the peer's next block must start with a size update (§4.2).
   */
  setMaxTableSize(size: number): void {
    this.settingsMaxTableSize = size;
    if (this.table.capacity > size) this.sizeUpdateRequired = true;
  }

  /** Applies a new header list limit (our SETTINGS_MAX_HEADER_LIST_SIZE). */
  setMaxHeaderListSize(size: number): void {
    this.maxListSize = size;
  }

  /** Size in octets of the dynamic table (§4.1). */
  get dynamicTableSize(): number {
    return this.table.size;
  }

  /** Maximum size of the dynamic table, as last set by the peer's size update. */
  get dynamicTableCapacity(): number {
    return this.table.capacity;
  }

  /** Copies the dynamic table, newest entry first; for tests and diagnostics. */
  dynamicTableEntries(): Array<[string, string]> {
    return this.table.entries();
  }

  /**
   * Decodes the complete header block `block[offset, offset + length)` (HEADERS and CONTINUATION
   * fragments already joined) into `out`, which is cleared first. After "compression_error" the decoder's
   * state is undefined and the connection must end.
   */
  decode(block: Buffer, offset: number, length: number, out: HeaderList): HpackDecodeStatus {
    const memo = this.memo;
    // A block due to start with a size update is never a kept one: it must be checked for the update.
    if (memo === undefined || this.sizeUpdateRequired) return this.decodeFields(block, offset, length, out);
    const version = this.table.version;
    const limit = this.maxListSize;
    if (memo.recall(block, offset, length, version, limit, out)) {
      this.lastError = null;
      return "ok";
    }
    const status = this.decodeFields(block, offset, length, out);
    if (status === "ok" && this.table.version === version)
      memo.keep(block, offset, length, version, limit, out);
    return status;
  }

  private decodeFields(block: Buffer, offset: number, length: number, out: HeaderList): HpackDecodeStatus {
    out.clear();
    this.lastError = null;
    this.over = false;
    const end = offset + length;
    const cursor = this.cursor;
    cursor.offset = offset;
    let fieldSeen = false;
    while (cursor.offset < end) {
      const b = block[cursor.offset] as number;
      if ((b & 0xe0) === 0x20) {
        if (fieldSeen) return this.fail("size_update_misplaced");
        const size = decodeInteger(block, cursor, end, 5);
        if (size < 0) return this.fail("bad_integer");
        if (size > this.settingsMaxTableSize) return this.fail("size_update_too_large");
        this.table.setCapacity(size);
        this.sizeUpdateRequired = false;
        continue;
      }
      if (this.sizeUpdateRequired) return this.fail("size_update_missing");
      fieldSeen = true;
      let ok: boolean;
      if ((b & 0x80) !== 0) ok = this.indexed(block, end, out);
      else if ((b & 0x40) !== 0) ok = this.literal(block, end, out, 6, "incremental");
      else ok = this.literal(block, end, out, 4, (b & 0x10) !== 0 ? "never" : "none");
      if (!ok) return "compression_error";
    }
    if (this.sizeUpdateRequired) return this.fail("size_update_missing");
    return this.over ? "header_list_too_large" : "ok";
  }

  private fail(reason: HpackDecodeError): "compression_error" {
    this.lastError = reason;
    return "compression_error";
  }

  private reject(reason: HpackDecodeError): false {
    this.lastError = reason;
    return false;
  }

  /**
   * Whether a field of `size` (RFC 9113 §6.5.2) still fits the header list limit; once one does not,
   * the block is over the limit and no later field is kept (it is still decoded for HPACK's state).
   */
  private fitsList(out: HeaderList, size: number): boolean {
    if (!this.over && out.size + size <= this.maxListSize) return true;
    this.over = true;
    return false;
  }

  /** Indexed field (§6.1). */
  private indexed(src: Buffer, end: number, out: HeaderList): boolean {
    const cursor = this.cursor;
    let index = (src[cursor.offset] as number) & 0x7f;
    if (index !== 0x7f) cursor.offset++;
    else if ((index = decodeInteger(src, cursor, end, 7)) < 0) return this.reject("bad_integer");
    if (!this.lookup(index)) return false;
    const name = this.foundName;
    const value = this.foundValue;
    if (!this.fitsList(out, name.length + value.length + HPACK_ENTRY_OVERHEAD)) return true;
    out.add(name, value, 0);
    if (this.foundFlag !== 0) out.malformed = true;
    return true;
  }

  /** Literal field with incremental, without or never indexing (§6.2.1–§6.2.3). */
  private literal(
    src: Buffer,
    end: number,
    out: HeaderList,
    prefixBits: number,
    indexing: Indexing,
  ): boolean {
    const nameIndex = decodeInteger(src, this.cursor, end, prefixBits);
    if (nameIndex < 0) return this.reject("bad_integer");
    this.scratchHigh = 0;
    const listBudget = this.over ? -1 : this.maxListSize - out.size - HPACK_ENTRY_OVERHEAD;
    const tableBudget = indexing === "incremental" ? this.table.capacity - HPACK_ENTRY_OVERHEAD : -1;
    let budget = Math.max(listBudget, tableBudget);
    let name: string | null = null;
    let nameLength: number;
    let flag = 0;
    if (nameIndex > 0) {
      if (!this.lookup(nameIndex)) return false;
      name = this.foundName;
      nameLength = name.length;
      flag = this.foundFlag & NAME_INVALID;
    } else {
      if (!this.readString(src, end, this.nameRef, budget)) return false;
      nameLength = this.nameRef.length;
    }
    budget -= nameLength;
    if (name !== null && indexing !== "incremental") {
      const hit = this.repeatedLiteral(name, src, end);
      if (hit !== undefined) return this.addRepeated(hit, name, out, flag, indexing);
    }
    const valueStart = this.cursor.offset;
    const v = this.valueRef;
    if (!this.readString(src, end, v, budget)) return false;

    const size = nameLength + v.length + HPACK_ENTRY_OVERHEAD;
    const keepForList = this.fitsList(out, size);
    const keepForTable = indexing === "incremental" && size <= this.table.capacity;
    // An entry larger than the table still has its effect: it empties the table (§4.4).
    if (indexing === "incremental" && !keepForTable) this.table.clear();
    if (!keepForList && !keepForTable) return true;
    const value = this.materialise(src, v);
    if (!this.materialisedValid(src, v, false)) flag |= VALUE_INVALID;
    if (name === null) {
      name = this.materialise(src, this.nameRef);
      if (!this.materialisedValid(src, this.nameRef, true)) flag |= NAME_INVALID;
    }
    if (keepForTable) this.table.add(name, value, flag);
    else if (indexing !== "incremental" && nameIndex > 0)
      this.rememberLiteral(name, src, valueStart, value, flag & VALUE_INVALID);
    if (keepForList) {
      out.add(name, value, indexing === "never" ? FIELD_NEVER_INDEXED : 0);
      if (flag !== 0) out.malformed = true;
    }
    return true;
  }

  /**
   * The remembered literal of `name` whose encoded value (length prefix included) is the next octets
   * of the block, if any. Clients send some fields without indexing on every request (nghttp2's
   * :path, a request's content-length); their octets repeat, and a hit skips the Huffman decoding,
   * the validation and the string.
   */
  private repeatedLiteral(name: string, src: Buffer, end: number): RepeatedLiteral | undefined {
    const at = this.cursor.offset;
    for (const r of this.repeated) {
      if (r.name !== name) continue;
      const raw = r.raw;
      if (at + raw.length > end) return undefined;
      for (let i = 0; i < raw.length; i++) if (src[at + i] !== raw[i]) return undefined;
      return r;
    }
    return undefined;
  }

  /** Adds a repeated literal's field (never or without indexing: the table is untouched). */
  private addRepeated(
    r: RepeatedLiteral,
    name: string,
    out: HeaderList,
    nameFlag: number,
    indexing: Indexing,
  ): boolean {
    this.cursor.offset += r.raw.length;
    if (!this.fitsList(out, name.length + r.value.length + HPACK_ENTRY_OVERHEAD)) return true;
    out.add(name, r.value, indexing === "never" ? FIELD_NEVER_INDEXED : 0);
    if ((nameFlag | r.flag) !== 0) out.malformed = true;
    return true;
  }

  /** Remembers a literal that did not enter the table, replacing the oldest remembered one. */
  private rememberLiteral(name: string, src: Buffer, start: number, value: string, flag: number): void {
    const raw = Buffer.from(src.subarray(start, this.cursor.offset));
    if (raw.length > MAX_REPEATED_OCTETS) return;
    for (const r of this.repeated) {
      if (r.name !== name) continue;
      r.raw = raw;
      r.value = value;
      r.flag = flag;
      return;
    }
    const r = { name, raw, value, flag };
    if (this.repeated.length < REPEATED_LITERALS) this.repeated.push(r);
    else this.repeated[this.repeatedNext++ % REPEATED_LITERALS] = r;
  }

  /** Sets foundName/foundValue/foundFlag from a static or dynamic index. */
  private lookup(index: number): boolean {
    if (index === 0) return this.reject("bad_index");
    if (index <= STATIC_TABLE_LENGTH) {
      this.foundName = STATIC_NAMES[index] as string;
      this.foundValue = STATIC_VALUES[index] as string;
      this.foundFlag = 0;
      return true;
    }
    const i = index - STATIC_TABLE_LENGTH - 1;
    if (i >= this.table.length) return this.reject("bad_index");
    this.foundName = this.table.name(i);
    this.foundValue = this.table.value(i);
    this.foundFlag = this.table.flag(i);
    return true;
  }

  /**
   * Reads a string literal's header and skips its octets; a Huffman string is decoded into scratch when
   * it may fit `budget` octets, else only validated and measured.
   */
  private readString(src: Buffer, end: number, ref: StringRef, budget: number): boolean {
    const cursor = this.cursor;
    if (cursor.offset >= end) return this.reject("truncated");
    const huffman = ((src[cursor.offset] as number) & 0x80) !== 0;
    const encoded = decodeInteger(src, cursor, end, 7);
    if (encoded < 0) return this.reject("bad_integer");
    const start = cursor.offset;
    if (encoded > end - start) return this.reject("truncated");
    cursor.offset = start + encoded;
    ref.huffman = huffman;
    ref.start = start;
    ref.encoded = encoded;
    ref.at = -1;
    if (!huffman) {
      ref.length = encoded;
      return true;
    }
    if (huffmanDecodedMinLength(encoded) > budget) {
      const n = huffmanDecode(src, start, encoded, null);
      if (n < 0) return this.reject("bad_huffman");
      ref.length = n;
      return true;
    }
    return this.decodeIntoScratch(src, ref);
  }

  private decodeIntoScratch(src: Buffer, ref: StringRef): boolean {
    const at = this.scratchHigh;
    this.ensureScratch(at + huffmanDecodedMaxLength(ref.encoded));
    const n = huffmanDecode(src, ref.start, ref.encoded, this.scratch, at);
    if (n < 0) return this.reject("bad_huffman");
    ref.at = at;
    ref.length = n;
    this.scratchHigh = at + n;
    return true;
  }

  private ensureScratch(size: number): void {
    if (size <= this.scratch.length) return;
    const grown = Buffer.allocUnsafe(Math.max(size, this.scratch.length * 2));
    this.scratch.copy(grown, 0, 0, this.scratchHigh);
    this.scratch = grown;
  }

  /** The string's characters; a Huffman string only measured so far is decoded now. */
  private materialise(src: Buffer, ref: StringRef): string {
    if (!ref.huffman) return src.toString("latin1", ref.start, ref.start + ref.length);
    // Already validated while measuring, so decoding cannot fail here.
    if (ref.at < 0) this.decodeIntoScratch(src, ref);
    return this.scratch.toString("latin1", ref.at, ref.at + ref.length);
  }

  private materialisedValid(src: Buffer, ref: StringRef, isName: boolean): boolean {
    const bytes = ref.huffman ? this.scratch : src;
    const start = ref.huffman ? ref.at : ref.start;
    return isName
      ? isValidFieldNameOctets(bytes, start, start + ref.length)
      : isValidFieldValueOctets(bytes, start, start + ref.length);
  }
}
