// XXH64 (the hash Envoy uses for rings, Maglev tables and hash policies) in 32-bit halves, plus 64-bit word helpers.

// 64-bit values are carried as (hi, lo) pairs of uint32 numbers so that hashing allocates no BigInt until the
// public wrapper builds its result. Helpers return their result through these two module slots.
let rHi = 0;
let rLo = 0;

const P1_HI = 0x9e3779b1;
const P1_LO = 0x85ebca87;
const P2_HI = 0xc2b2ae3d;
const P2_LO = 0x27d4eb4f;
const P3_HI = 0x165667b1;
const P3_LO = 0x9e3779f9;
const P4_HI = 0x85ebca77;
const P4_LO = 0xc2b2ae63;
const P5_HI = 0x27d4eb2f;
const P5_LO = 0x165667c5;
const NEG_P1_HI = 0x61c8864e;
const NEG_P1_LO = 0x7a143579;

/** High 32 bits of the 64-bit product of two uint32 values. */
function mulHi32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const m1 = a1 * b0 + ((a0 * b0) >>> 16);
  const m2 = a0 * b1 + (m1 & 0xffff);
  return a1 * b1 + (m1 >>> 16) + (m2 >>> 16);
}

/** (rHi, rLo) = a * b mod 2^64. */
function mul(aHi: number, aLo: number, bHi: number, bLo: number): void {
  rLo = Math.imul(aLo, bLo) >>> 0;
  rHi = (mulHi32(aLo, bLo) + Math.imul(aLo, bHi) + Math.imul(aHi, bLo)) >>> 0;
}

/** (rHi, rLo) = a + b mod 2^64. */
function add(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const lo = aLo + bLo;
  rLo = lo >>> 0;
  rHi = (aHi + bHi + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

/** (rHi, rLo) = rotate-left(a, n) for 0 < n < 64, n != 32. */
function rotl(aHi: number, aLo: number, n: number): void {
  if (n < 32) {
    rHi = ((aHi << n) | (aLo >>> (32 - n))) >>> 0;
    rLo = ((aLo << n) | (aHi >>> (32 - n))) >>> 0;
  } else {
    const m = n - 32;
    rHi = ((aLo << m) | (aHi >>> (32 - m))) >>> 0;
    rLo = ((aHi << m) | (aLo >>> (32 - m))) >>> 0;
  }
}

/** One XXH64 accumulator round: rotl(acc + input * P2, 31) * P1. */
function round(accHi: number, accLo: number, inHi: number, inLo: number): void {
  mul(inHi, inLo, P2_HI, P2_LO);
  add(accHi, accLo, rHi, rLo);
  rotl(rHi, rLo, 31);
  mul(rHi, rLo, P1_HI, P1_LO);
}

/** (acc ^ round(0, val)) * P1 + P4. */
function mergeRound(accHi: number, accLo: number, vHi: number, vLo: number): void {
  round(0, 0, vHi, vLo);
  mul((accHi ^ rHi) >>> 0, (accLo ^ rLo) >>> 0, P1_HI, P1_LO);
  add(rHi, rLo, P4_HI, P4_LO);
}

function read32(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

/** XXH64 of b[0, len) with seed (seedHi, seedLo); the result is left in (rHi, rLo). */
function xxh64(b: Uint8Array, len: number, seedHi: number, seedLo: number): void {
  let p = 0;
  let hHi: number;
  let hLo: number;
  if (len >= 32) {
    add(seedHi, seedLo, P1_HI, P1_LO);
    add(rHi, rLo, P2_HI, P2_LO);
    let v1Hi = rHi;
    let v1Lo = rLo;
    add(seedHi, seedLo, P2_HI, P2_LO);
    let v2Hi = rHi;
    let v2Lo = rLo;
    let v3Hi = seedHi;
    let v3Lo = seedLo;
    // seed - P1 == seed + (2^64 - P1).
    add(seedHi, seedLo, NEG_P1_HI, NEG_P1_LO);
    let v4Hi = rHi;
    let v4Lo = rLo;
    const limit = len - 32;
    while (p <= limit) {
      round(v1Hi, v1Lo, read32(b, p + 4), read32(b, p));
      v1Hi = rHi;
      v1Lo = rLo;
      round(v2Hi, v2Lo, read32(b, p + 12), read32(b, p + 8));
      v2Hi = rHi;
      v2Lo = rLo;
      round(v3Hi, v3Lo, read32(b, p + 20), read32(b, p + 16));
      v3Hi = rHi;
      v3Lo = rLo;
      round(v4Hi, v4Lo, read32(b, p + 28), read32(b, p + 24));
      v4Hi = rHi;
      v4Lo = rLo;
      p += 32;
    }
    rotl(v1Hi, v1Lo, 1);
    hHi = rHi;
    hLo = rLo;
    rotl(v2Hi, v2Lo, 7);
    add(hHi, hLo, rHi, rLo);
    hHi = rHi;
    hLo = rLo;
    rotl(v3Hi, v3Lo, 12);
    add(hHi, hLo, rHi, rLo);
    hHi = rHi;
    hLo = rLo;
    rotl(v4Hi, v4Lo, 18);
    add(hHi, hLo, rHi, rLo);
    mergeRound(rHi, rLo, v1Hi, v1Lo);
    mergeRound(rHi, rLo, v2Hi, v2Lo);
    mergeRound(rHi, rLo, v3Hi, v3Lo);
    mergeRound(rHi, rLo, v4Hi, v4Lo);
    hHi = rHi;
    hLo = rLo;
  } else {
    add(seedHi, seedLo, P5_HI, P5_LO);
    hHi = rHi;
    hLo = rLo;
  }
  // len < 2^32 always holds for inputs we hash.
  add(hHi, hLo, 0, len);
  hHi = rHi;
  hLo = rLo;
  while (p + 8 <= len) {
    round(0, 0, read32(b, p + 4), read32(b, p));
    rotl((hHi ^ rHi) >>> 0, (hLo ^ rLo) >>> 0, 27);
    mul(rHi, rLo, P1_HI, P1_LO);
    add(rHi, rLo, P4_HI, P4_LO);
    hHi = rHi;
    hLo = rLo;
    p += 8;
  }
  if (p + 4 <= len) {
    mul(0, read32(b, p), P1_HI, P1_LO);
    rotl((hHi ^ rHi) >>> 0, (hLo ^ rLo) >>> 0, 23);
    mul(rHi, rLo, P2_HI, P2_LO);
    add(rHi, rLo, P3_HI, P3_LO);
    hHi = rHi;
    hLo = rLo;
    p += 4;
  }
  while (p < len) {
    mul(0, b[p]!, P5_HI, P5_LO);
    rotl((hHi ^ rHi) >>> 0, (hLo ^ rLo) >>> 0, 11);
    mul(rHi, rLo, P1_HI, P1_LO);
    hHi = rHi;
    hLo = rLo;
    p++;
  }
  // Avalanche: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32.
  hLo = (hLo ^ (hHi >>> 1)) >>> 0;
  mul(hHi, hLo, P2_HI, P2_LO);
  hLo = (rLo ^ (((rHi << 3) | (rLo >>> 29)) >>> 0)) >>> 0;
  hHi = (rHi ^ (rHi >>> 29)) >>> 0;
  mul(hHi, hLo, P3_HI, P3_LO);
  rLo = (rLo ^ rHi) >>> 0;
}

// Reused UTF-8 scratch space; hashing is synchronous so one buffer serves every call.
let scratch = new Uint8Array(256);

/** UTF-8 encodes `s` into the scratch buffer (lone surrogates become U+FFFD, as TextEncoder does); returns the length. */
function encodeUtf8(s: string): number {
  const n = s.length;
  if (scratch.length < n * 3) scratch = new Uint8Array(n * 3);
  const out = scratch;
  let j = 0;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[j++] = c;
    } else if (c < 0x800) {
      out[j++] = 0xc0 | (c >> 6);
      out[j++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          out[j++] = 0xf0 | (c >> 18);
          out[j++] = 0x80 | ((c >> 12) & 0x3f);
          out[j++] = 0x80 | ((c >> 6) & 0x3f);
          out[j++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd;
      }
      out[j++] = 0xe0 | (c >> 12);
      out[j++] = 0x80 | ((c >> 6) & 0x3f);
      out[j++] = 0x80 | (c & 0x3f);
    }
  }
  return j;
}

function hashInput(input: string | Uint8Array, seedHi: number, seedLo: number): void {
  if (typeof input === 'string') {
    const len = encodeUtf8(input);
    xxh64(scratch, len, seedHi, seedLo);
  } else {
    xxh64(input, input.length, seedHi, seedLo);
  }
}

const words = new DataView(new ArrayBuffer(8));

/** XXH64 of `input` (strings are hashed as UTF-8) with a 64-bit seed, as Envoy's HashUtil::xxHash64. */
export function xxhash64(input: string | Uint8Array, seed = 0n): bigint {
  let seedHi = 0;
  let seedLo = 0;
  if (seed !== 0n) {
    words.setBigUint64(0, seed);
    seedHi = words.getUint32(0);
    seedLo = words.getUint32(4);
  }
  hashInput(input, seedHi, seedLo);
  words.setUint32(0, rHi);
  words.setUint32(4, rLo);
  return words.getBigUint64(0);
}

/**
 * XXH64 of `input` with a small seed (a safe non-negative integer), written as [hi, lo] uint32 words into `out`.
 * Allocation-free; used to build rings and tables.
 */
export function xxhash64Words(input: string | Uint8Array, seed: number, out: Uint32Array): void {
  hashInput(input, Math.floor(seed / 0x100000000) >>> 0, seed >>> 0);
  out[0] = rHi;
  out[1] = rLo;
}

/** Writes a bigint, reduced modulo 2^64, as [hi, lo] uint32 words into `out` without allocating. */
export function toWords(value: bigint, out: Uint32Array): void {
  words.setBigUint64(0, value);
  out[0] = words.getUint32(0);
  out[1] = words.getUint32(4);
}

/** (hi * 2^32 + lo) mod m for an integer 1 <= m <= 2^26 (exact in doubles); larger moduli take a BigInt path. */
export function mod64(hi: number, lo: number, m: number): number {
  if (m <= 0x4000000) return ((hi % m) * (0x100000000 % m) + lo) % m;
  return Number(((BigInt(hi) << 32n) | BigInt(lo)) % BigInt(m));
}
