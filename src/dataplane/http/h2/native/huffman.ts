// HPACK's Huffman code (RFC 7541 Appendix B, §5.2): a nibble-driven decoding automaton and an encoder.

/**
 * Code lengths of symbols 0..255 and EOS (256). The code is canonical (codes of one length are consecutive
 * and ordered by symbol, shorter lengths first), so the lengths alone define it; the tests check the codes
 * against the RFC's table.
 */
// biome-ignore format: sixteen symbols a line
const LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;

/** HUFFMAN_CODES[s] is the code of symbol s (0..256), right-aligned in HUFFMAN_LENGTHS[s] bits. */
export const HUFFMAN_CODES = new Uint32Array(257);
export const HUFFMAN_LENGTHS = new Uint8Array(LENGTHS);

{
  const order = Array.from({ length: 257 }, (_, s) => s).sort((a, b) => LENGTHS[a]! - LENGTHS[b]! || a - b);
  let code = 0;
  let len = LENGTHS[order[0]!]!;
  for (const s of order) {
    code *= 2 ** (LENGTHS[s]! - len);
    len = LENGTHS[s]!;
    HUFFMAN_CODES[s] = code;
    code++;
  }
}

// The decoder is an automaton over the code tree's 256 internal nodes, fed four bits at a time: codes are
// at least five bits long, so one nibble completes at most one symbol. TRANSITIONS[state << 4 | nibble]
// packs the next state (bits 0-7), the emitted symbol (8-15) and the flags below.
const EMIT = 1 << 16;
const FAIL = 1 << 17; // the nibble completed EOS, which must never appear in a string
const ACCEPT = 1 << 18; // the string may end here: the pending bits are at most 7 ones (EOS's prefix)
const TRANSITIONS = new Uint32Array(256 * 16);

{
  // Build the tree: node n has children child[2n] (bit 0) and child[2n + 1] (bit 1); a positive child is an
  // internal node, ~symbol a leaf, and 0 (the root, never anyone's child) an empty slot.
  const child = new Int32Array(512);
  let nodes = 1;
  for (let s = 0; s <= EOS; s++) {
    let n = 0;
    for (let i = LENGTHS[s]! - 1; i > 0; i--) {
      const slot = 2 * n + ((HUFFMAN_CODES[s]! >>> i) & 1);
      if (child[slot] === 0) child[slot] = nodes++;
      n = child[slot]!;
    }
    child[2 * n + (HUFFMAN_CODES[s]! & 1)] = ~s;
  }
  // Nodes on the all-ones path at depth <= 7 are valid end states (padding); so is the root.
  const accepting = new Uint8Array(256);
  for (let n = 0, depth = 0; depth <= 7; depth++) {
    accepting[n] = 1;
    n = child[2 * n + 1]!;
  }
  for (let state = 0; state < nodes; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let n = state;
      let out = 0;
      for (let i = 3; i >= 0; i--) {
        const c = child[2 * n + ((nibble >>> i) & 1)]!;
        if (c > 0) {
          n = c;
          continue;
        }
        if (~c === EOS) out |= FAIL;
        else out |= EMIT | (~c << 8);
        n = 0;
      }
      TRANSITIONS[(state << 4) | nibble] = out | n | (accepting[n] ? ACCEPT : 0);
    }
  }
}

/**
 * Decodes the Huffman string src[start, end) into dst from offset 0 and returns the decoded length, or -1 when
 * the string is invalid (contains EOS, or its padding is longer than 7 bits or not all ones). dst must hold
 * at least (end - start) * 8 / 5 bytes.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, dst: Uint8Array): number {
  let state = 0;
  let last = ACCEPT;
  let n = 0;
  for (let i = start; i < end; i++) {
    const b = src[i]!;
    const hi = TRANSITIONS[(state << 4) | (b >>> 4)]!;
    if (hi & EMIT) dst[n++] = (hi >>> 8) & 0xff;
    last = TRANSITIONS[((hi & 0xff) << 4) | (b & 0xf)]!;
    if ((hi | last) & FAIL) return -1;
    if (last & EMIT) dst[n++] = (last >>> 8) & 0xff;
    state = last & 0xff;
  }
  return last & ACCEPT ? n : -1;
}

/** Length in bytes of the Huffman encoding of the latin1 string s. */
export function huffmanLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff]!;
  return (bits + 7) >>> 3;
}

/** Writes the Huffman encoding of the latin1 string s at dst[offset] and returns the offset after it. */
export function huffmanEncode(s: string, dst: Uint8Array, offset: number): number {
  // Bits accumulate in a float-safe window: at most 7 pending bits plus a 30-bit code stay below 2^53.
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    const len = HUFFMAN_LENGTHS[sym]!;
    acc = acc * 2 ** len + HUFFMAN_CODES[sym]!;
    bits += len;
    while (bits >= 8) {
      bits -= 8;
      const byte = Math.floor(acc / 2 ** bits);
      dst[offset++] = byte;
      acc -= byte * 2 ** bits;
    }
  }
  // Pad with the most significant bits of EOS (all ones).
  if (bits > 0) dst[offset++] = (acc << (8 - bits)) | (0xff >>> bits);
  return offset;
}
