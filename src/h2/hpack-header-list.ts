/**
 * A header list (RFC 9113 §4.3, RFC 7541 §1.3): the ordered (name, value) fields of one header block,
 * as the HPACK decoder produces and the encoder consumes them.
 *
 * Kept as parallel arrays that one connection reuses block after block, so decoding a block allocates
 * only the strings that were not already in a table. Strings are latin1, one character per octet, so any
 * octet survives a decode → encode round trip unchanged (a proxy must not rewrite what it forwards).
 */
import { HPACK_ENTRY_OVERHEAD } from "./hpack-dynamic-table.js";

/** Field flag: received, or to be sent, as "never indexed" (RFC 7541 §6.2.3); intermediaries keep it (§7.1.3). */
export const FIELD_NEVER_INDEXED = 1;

export class HeaderList {
  /** Field names; only the first `length` entries are meaningful. */
  readonly names: string[] = [];
  readonly values: string[] = [];
  /** `FIELD_NEVER_INDEXED` or 0 per field. */
  readonly flags: number[] = [];
  private count = 0;
  private listSize = 0;
  /**
   * True when the decoder met a field that RFC 9113 §8.2.1 forbids (upper case or control characters in a
   * name, NUL/CR/LF or surrounding whitespace in a value): the message is malformed, a stream error.
   */
  malformed = false;

  /** Number of fields. */
  get length(): number {
    return this.count;
  }

  /** Header list size as RFC 9113 §6.5.2 defines it: the sum of name + value + 32 octets per field. */
  get size(): number {
    return this.listSize;
  }

  /** Empties the list, keeping its arrays for the next block. */
  clear(): void {
    this.count = 0;
    this.listSize = 0;
    this.malformed = false;
  }

  /** Appends a field; `flags` is `FIELD_NEVER_INDEXED` or 0. */
  add(name: string, value: string, flags = 0): void {
    const i = this.count++;
    this.names[i] = name;
    this.values[i] = value;
    this.flags[i] = flags;
    this.listSize += name.length + value.length + HPACK_ENTRY_OVERHEAD;
  }

  name(i: number): string {
    return this.names[i] as string;
  }

  value(i: number): string {
    return this.values[i] as string;
  }

  neverIndexed(i: number): boolean {
    return ((this.flags[i] as number) & FIELD_NEVER_INDEXED) !== 0;
  }

  /** Value of the first field called `name`, or undefined; a linear scan (lists are short). */
  get(name: string): string | undefined {
    for (let i = 0; i < this.count; i++) if (this.names[i] === name) return this.values[i];
    return undefined;
  }

  /** Copies the fields as [name, value] pairs; for tests and logs, not the data path. */
  toArray(): Array<[string, string]> {
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i < this.count; i++) pairs.push([this.names[i] as string, this.values[i] as string]);
    return pairs;
  }
}
