/**
 * The last few header blocks one HPACK decoder decoded, kept so that a block whose octets repeat one
 * of them gives its fields without being decoded again: a client's requests of one method, a worker's
 * response headers and trailers arrive as the same few octets stream after stream once their fields
 * are in the dynamic table.
 *
 * Exact for the same reason as the encoder's memo (hpack-block-memo.ts): what a block decodes to
 * depends only on its octets, the dynamic table and the header list limit. A block is kept only when
 * decoding it left the table as it was, and reused only while the table's version and the limit are
 * still the ones it was decoded with; the fields, their never-indexed flags and the malformed mark
 * are then what decoding would give, and the table stays as decoding would leave it.
 */
import type { Buffer } from "node:buffer";
import { EMPTY_OCTETS, KeptBlocks, MEMO_MAX_FIELDS, MEMO_MAX_OCTETS, roomFor } from "./hpack-block-memo.js";
import type { HeaderList } from "./hpack-header-list.js";

/** One kept block: its octets, and the fields they decoded to against `version` and `listLimit`. */
class DecodedBlock {
  version = -1;
  listLimit = -1;
  length = 0;
  octets: Buffer = EMPTY_OCTETS;
  count = 0;
  readonly names: string[] = [];
  readonly values: string[] = [];
  readonly flags: number[] = [];
  malformed = false;

  /** Whether `src[offset, offset + length)` are this block's octets. */
  sameOctets(src: Buffer, offset: number, length: number): boolean {
    if (length !== this.length) return false;
    const o = this.octets;
    for (let i = 0; i < length; i++) if (o[i] !== src[offset + i]) return false;
    return true;
  }
}

export class HpackDecodeMemo {
  private readonly kept = new KeptBlocks(() => new DecodedBlock());

  /** Blocks given from a kept one rather than decoded; for tests and diagnostics. */
  get reused(): number {
    return this.kept.reused;
  }

  /**
   * Fills `out` with the fields of the kept block whose octets are `src[offset, offset + length)`,
   * decoded at table version `version` with header list limit `listLimit`; false when there is none.
   */
  recall(
    src: Buffer,
    offset: number,
    length: number,
    version: number,
    listLimit: number,
    out: HeaderList,
  ): boolean {
    if (length > MEMO_MAX_OCTETS) return false;
    for (const b of this.kept.list) {
      if (b.version !== version || b.listLimit !== listLimit || !b.sameOctets(src, offset, length)) continue;
      this.kept.hit(b);
      out.clear();
      for (let i = 0; i < b.count; i++) out.add(b.names[i] as string, b.values[i] as string, b.flags[i]);
      out.malformed = b.malformed;
      return true;
    }
    return false;
  }

  /** Keeps a block that decoded whole ("ok") to `list` and left the table at `version`. */
  keep(
    src: Buffer,
    offset: number,
    length: number,
    version: number,
    listLimit: number,
    list: HeaderList,
  ): void {
    const count = list.length;
    if (count === 0 || count > MEMO_MAX_FIELDS || length > MEMO_MAX_OCTETS) return;
    const b = this.kept.slot();
    if (b === undefined) return;
    for (let i = 0; i < count; i++) {
      b.names[i] = list.name(i);
      b.values[i] = list.value(i);
      b.flags[i] = list.flags[i] as number;
    }
    b.count = count;
    b.malformed = list.malformed;
    b.octets = roomFor(b.octets, length);
    b.length = src.copy(b.octets, 0, offset, offset + length);
    b.version = version;
    b.listLimit = listLimit;
  }
}
