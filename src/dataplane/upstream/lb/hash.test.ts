import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mod64, toWords, xxhash64, xxhash64Words } from './hash.js';

// A direct BigInt transcription of the XXH64 specification, to check the 32-bit-halves implementation on long inputs.
const M64 = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const P5 = 0x27d4eb2f165667c5n;
const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M64;
const round = (acc: bigint, input: bigint) => (rotl((acc + input * P2) & M64, 31n) * P1) & M64;
const merge = (acc: bigint, v: bigint) => ((acc ^ round(0n, v)) * P1 + P4) & M64;

function reference(b: Uint8Array, seed: bigint): bigint {
  const le = (p: number, n: number) => {
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[p + i]!);
    return v;
  };
  const len = b.length;
  let p = 0;
  let h: bigint;
  if (len >= 32) {
    let v1 = (seed + P1 + P2) & M64;
    let v2 = (seed + P2) & M64;
    let v3 = seed;
    let v4 = (seed - P1) & M64;
    for (; p <= len - 32; p += 32) {
      v1 = round(v1, le(p, 8));
      v2 = round(v2, le(p + 8, 8));
      v3 = round(v3, le(p + 16, 8));
      v4 = round(v4, le(p + 24, 8));
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & M64;
    h = merge(merge(merge(merge(h, v1), v2), v3), v4);
  } else {
    h = (seed + P5) & M64;
  }
  h = (h + BigInt(len)) & M64;
  for (; p + 8 <= len; p += 8) h = (rotl(h ^ round(0n, le(p, 8)), 27n) * P1 + P4) & M64;
  if (p + 4 <= len) {
    h = (rotl(h ^ ((le(p, 4) * P1) & M64), 23n) * P2 + P3) & M64;
    p += 4;
  }
  for (; p < len; p++) h = (rotl(h ^ ((BigInt(b[p]!) * P5) & M64), 11n) * P1) & M64;
  h ^= h >> 33n;
  h = (h * P2) & M64;
  h ^= h >> 29n;
  h = (h * P3) & M64;
  return h ^ (h >> 32n);
}

describe('xxhash64', () => {
  it('matches the published test vectors', () => {
    assert.equal(xxhash64(''), 0xef46db3751d8e999n);
    assert.equal(xxhash64('a'), 0xd24ec4f1a98c6e5bn);
    assert.equal(xxhash64('abc'), 0x44bc2cf5ad770999n);
    assert.equal(xxhash64('', 0n), 0xef46db3751d8e999n);
  });

  it("matches Envoy's HashUtil::xxHash64", () => {
    assert.equal(xxhash64('foo'), 3728699739546630719n);
    assert.equal(xxhash64('bar'), 5234164152756840025n);
    assert.equal(xxhash64('foo\nbar'), 8917841378505826757n);
    assert.equal(xxhash64('lyft'), 4400747396090729504n);
  });

  it('matches the specification for every input length up to 100 and any seed', () => {
    for (let len = 0; len <= 100; len++) {
      const bytes = Uint8Array.from({ length: len }, (_, i) => (i * 131 + len * 7) & 0xff);
      for (const seed of [0n, 1n, 0xdeadbeefcafebaben, M64]) {
        assert.equal(xxhash64(bytes, seed), reference(bytes, seed), `length ${len}, seed ${seed}`);
      }
    }
  });

  it('hashes strings as UTF-8, lone surrogates as U+FFFD', () => {
    const encoder = new TextEncoder();
    for (const s of [
      '10.0.0.1:8080_0',
      'héllo',
      '☃ snow',
      'emoji 😀!',
      'lone \ud800 surrogate',
      'x'.repeat(300),
    ]) {
      assert.equal(xxhash64(s), xxhash64(encoder.encode(s)), JSON.stringify(s));
      assert.equal(xxhash64(s, 1n), reference(encoder.encode(s), 1n), JSON.stringify(s));
    }
  });

  it('reduces a seed modulo 2^64', () => {
    assert.equal(xxhash64('abc', 1n << 64n), xxhash64('abc', 0n));
  });
});

describe('64-bit word helpers', () => {
  it('xxhash64Words writes the same hash as [hi, lo]', () => {
    const out = new Uint32Array(2);
    for (const s of ['', 'a', '10.0.0.1:80', 'x'.repeat(70)]) {
      for (const seed of [0, 1, 2 ** 40 + 3]) {
        xxhash64Words(s, seed, out);
        assert.equal((BigInt(out[0]!) << 32n) | BigInt(out[1]!), xxhash64(s, BigInt(seed)));
      }
    }
  });

  it('toWords and mod64 agree with BigInt arithmetic', () => {
    const out = new Uint32Array(2);
    for (let i = 0; i < 200; i++) {
      const value = xxhash64(`v${i}`);
      toWords(value, out);
      assert.equal((BigInt(out[0]!) << 32n) | BigInt(out[1]!), value);
      for (const m of [1, 100, 65536, 65537, 5000011, 2 ** 26, 2 ** 26 + 1, 2 ** 31 - 1]) {
        assert.equal(mod64(out[0]!, out[1]!, m), Number(value % BigInt(m)), `${value} mod ${m}`);
      }
    }
    toWords(-1n, out);
    assert.deepEqual([...out], [0xffffffff, 0xffffffff]);
  });
});
