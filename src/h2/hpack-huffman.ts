/**
 * The HPACK Huffman code (RFC 7541 §5.2 and Appendix B): encoder and a table-driven decoder.
 *
 * Appendix B's code is canonical: within one length, codes rise with the symbol, and each length starts
 * where the previous one ended, shifted left. So the table is kept as its 257 code lengths (symbols 0–255
 * and EOS = 256) and the codes are rebuilt from them; a test pins rebuilt codes to values printed in the
 * RFC. Decoding walks a byte at a time through a 256-state automaton (one state per internal node of the
 * code tree): one lookup per input byte yields the next state and the zero, one or two symbols completed,
 * which is several times faster than walking bit by bit. The automaton (256 × 256 entries, 256 KiB) is
 * built on first use, so processes that never decode HPACK do not pay for it.
 */

/** Code length in bits of each symbol, RFC 7541 Appendix B, in symbol order (index 256 = EOS). */
// prettier-ignore
const CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0x00
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 0x10
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //          0x20 ' '..'/'
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //               0x30 '0'..'?'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //                 0x40 '@'..'O'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //              0x50 'P'..'_'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //                 0x60 '`'..'o'
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //             0x70 'p'..0x7f
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 0x80
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 0x90
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 0xa0
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 0xb0
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 0xc0
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 0xd0
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 0xe0
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 0xf0
  30, //                                                             EOS
];

const EOS = 256;

/** Canonical codes, right-aligned (the code's last bit is bit 0), indexed by symbol. */
export const HUFFMAN_CODES: Uint32Array = buildCanonicalCodes();
/** Code lengths in bits, indexed by symbol. */
export const HUFFMAN_LENGTHS: Uint8Array = Uint8Array.from(CODE_LENGTHS);

function buildCanonicalCodes(): Uint32Array {
  const order = CODE_LENGTHS.map((len, sym) => ({ len, sym })).sort((a, b) => a.len - b.len || a.sym - b.sym);
  const codes = new Uint32Array(CODE_LENGTHS.length);
  let code = 0;
  let prevLen = order[0]?.len ?? 0;
  for (const { len, sym } of order) {
    code *= 2 ** (len - prevLen);
    codes[sym] = code;
    code += 1;
    prevLen = len;
  }
  return codes;
}

/** Length in octets of `s` Huffman-coded; characters are octets (latin1), as everywhere in this codec. */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff] as number;
  return (bits + 7) >>> 3;
}

/**
 * Writes `s` Huffman-coded at `out[offset]`, padded with the most significant bits of EOS (all ones,
 * §5.2), and returns the offset after it. The caller sized `out` with `huffmanEncodedLength`.
 */
export function huffmanEncode(s: string, out: Uint8Array, offset: number): number {
  let acc = 0; // holds fewer than 8 pending bits between symbols
  let pending = 0;
  let o = offset;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let len = HUFFMAN_LENGTHS[sym] as number;
    const code = HUFFMAN_CODES[sym] as number;
    // Codes reach 30 bits; feeding at most 16 at a time keeps the accumulator within 31 bits.
    while (len > 0) {
      const take = len > 16 ? len - 16 : len;
      len -= take;
      acc = (acc << take) | ((code >>> len) & ((1 << take) - 1));
      pending += take;
      while (pending >= 8) {
        pending -= 8;
        out[o++] = (acc >>> pending) & 0xff;
      }
      acc &= (1 << pending) - 1;
    }
  }
  if (pending > 0) out[o++] = ((acc << (8 - pending)) | (0xff >>> pending)) & 0xff;
  return o;
}

// Decoder automaton entry layout (Uint32): bits 0–7 next state, 8–15 first symbol, 16–23 second
// symbol, 24–25 symbol count, bit 26 failure (EOS decoded: §5.2 says a decoder MUST treat it as an error).
const COUNT_SHIFT = 24;
const FAIL = 1 << 26;

interface HuffmanAutomaton {
  readonly transitions: Uint32Array;
  /** 1 where ending a string is valid: the root, or a prefix of EOS shorter than 8 bits (§5.2 padding). */
  readonly accepting: Uint8Array;
}

let automaton: HuffmanAutomaton | null = null;

function getAutomaton(): HuffmanAutomaton {
  automaton ??= buildAutomaton();
  return automaton;
}

function buildAutomaton(): HuffmanAutomaton {
  // Tree: children[2n] / children[2n + 1] for bit 0 / 1 of internal node n; a child ≥ 0 is an internal
  // node, a child < 0 is the leaf of symbol (-child - 1).
  const children = new Int32Array(512).fill(0);
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const len = CODE_LENGTHS[sym] as number;
    const code = HUFFMAN_CODES[sym] as number;
    let node = 0;
    for (let bit = len - 1; bit >= 0; bit--) {
      const slot = 2 * node + ((code >>> bit) & 1);
      if (bit === 0) {
        children[slot] = -(sym + 1);
      } else {
        if (children[slot] === 0) children[slot] = nodes++;
        node = children[slot] as number;
      }
    }
  }
  const transitions = new Uint32Array(256 * 256);
  for (let state = 0; state < 256; state++) {
    for (let byte = 0; byte < 256; byte++) {
      let node = state;
      let count = 0;
      let entry = 0;
      for (let bit = 7; bit >= 0; bit--) {
        const child = children[2 * node + ((byte >>> bit) & 1)] as number;
        if (child >= 0) {
          node = child;
          continue;
        }
        const sym = -child - 1;
        if (sym === EOS) {
          entry |= FAIL;
          break;
        }
        entry |= sym << (8 + 8 * count);
        count++;
        node = 0;
      }
      transitions[state * 256 + byte] = entry | (count << COUNT_SHIFT) | node;
    }
  }
  const accepting = new Uint8Array(256);
  let node = 0;
  for (let depth = 0; depth < 8; depth++) {
    accepting[node] = 1;
    node = children[2 * node + 1] as number;
  }
  return { transitions, accepting };
}

/**
 * Decodes `length` Huffman-coded octets of `src` from `offset` into `out` from `outOffset`, and returns
 * the number of octets decoded, or -1 when the input is not a valid code (EOS inside, padding longer than
 * 7 bits or not all ones: each a COMPRESSION_ERROR). With `out` null it only validates and counts. `out`
 * needs room for `huffmanDecodedMaxLength(length)` octets.
 */
export function huffmanDecode(
  src: Uint8Array,
  offset: number,
  length: number,
  out: Uint8Array | null,
  outOffset = 0,
): number {
  const { transitions, accepting } = getAutomaton();
  let state = 0;
  let o = outOffset;
  const end = offset + length;
  for (let i = offset; i < end; i++) {
    const entry = transitions[(state << 8) | (src[i] as number)] as number;
    if ((entry & FAIL) !== 0) return -1;
    const count = entry >>> COUNT_SHIFT;
    if (count !== 0 && out !== null) {
      out[o] = (entry >>> 8) & 0xff;
      if (count === 2) out[o + 1] = (entry >>> 16) & 0xff;
    }
    o += count;
    state = entry & 0xff;
  }
  return accepting[state] === 1 ? o - outOffset : -1;
}

/** The most octets `length` Huffman-coded octets can decode to (the shortest code has 5 bits). */
export function huffmanDecodedMaxLength(length: number): number {
  return Math.floor((length * 8) / 5);
}

/** The fewest octets `length` Huffman-coded octets can decode to (the longest symbol code has 30 bits). */
export function huffmanDecodedMinLength(length: number): number {
  return length === 0 ? 0 : Math.floor(((length - 1) * 8) / 30);
}
