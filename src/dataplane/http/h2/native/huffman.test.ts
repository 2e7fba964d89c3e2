import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HUFFMAN_CODES, HUFFMAN_LENGTHS, huffmanDecode, huffmanEncode, huffmanLength } from './huffman.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decode(bytes: Uint8Array): string | undefined {
  const dst = new Uint8Array(Math.ceil((bytes.length * 8) / 5));
  const n = huffmanDecode(bytes, 0, bytes.length, dst);
  return n < 0 ? undefined : Buffer.from(dst.subarray(0, n)).toString('latin1');
}

function encode(s: string): Buffer {
  const dst = Buffer.alloc(huffmanLength(s));
  assert.equal(huffmanEncode(s, dst, 0), dst.length);
  return dst;
}

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('the canonical code built from the lengths is the table of RFC 7541 Appendix B', () => {
  // [symbol, code, length] rows picked across the table, from the RFC.
  const rows: [number, number, number][] = [
    [0, 0x1ff8, 13],
    [9, 0xffffea, 24],
    [10, 0x3ffffffc, 30],
    [32, 0x14, 6],
    [48, 0x0, 5],
    [97, 0x3, 5],
    [116, 0x9, 5],
    [60, 0x7ffc, 15],
    [92, 0x7fff0, 19],
    [127, 0xffffffc, 28],
    [128, 0xfffe6, 20],
    [200, 0x3ffffe2, 26],
    [254, 0x7fffff0, 27],
    [255, 0x3ffffee, 26],
    [256, 0x3fffffff, 30],
  ];
  for (const [sym, code, len] of rows) {
    assert.equal(HUFFMAN_CODES[sym], code, `code of ${sym}`);
    assert.equal(HUFFMAN_LENGTHS[sym], len, `length of ${sym}`);
  }
  // A complete prefix code: the Kraft sum is exactly 1.
  let kraft = 0;
  for (let s = 0; s <= 256; s++) kraft += 2 ** (30 - HUFFMAN_LENGTHS[s]!);
  assert.equal(kraft, 2 ** 30);
});

test('decodes the Huffman strings of RFC 7541 Appendix C and encodes them back byte for byte', () => {
  const cases: [string, string][] = [
    ['f1e3 c2e5 f23a 6ba0 ab90 f4ff', 'www.example.com'],
    ['a8eb 1064 9cbf', 'no-cache'],
    ['25a8 49e9 5ba9 7d7f', 'custom-key'],
    ['25a8 49e9 5bb8 e8b4 bf', 'custom-value'],
    ['6402', '302'],
    ['640e ff', '307'],
    ['aec3 771a 4b', 'private'],
    ['d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff', 'Mon, 21 Oct 2013 20:13:21 GMT'],
    ['9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3', 'https://www.example.com'],
    ['9bd9 ab', 'gzip'],
    [
      '94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
      'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1',
    ],
  ];
  for (const [bytes, text] of cases) {
    assert.equal(decode(hex(bytes)), text);
    assert.deepEqual(encode(text), hex(bytes), text);
  }
  assert.equal(decode(new Uint8Array(0)), '');
});

test('random latin1 strings round-trip, every symbol included', () => {
  const rand = mulberry32(7541);
  let all = '';
  for (let c = 0; c < 256; c++) all += String.fromCharCode(c);
  assert.equal(decode(encode(all)), all);
  for (let i = 0; i < 2000; i++) {
    let s = '';
    const n = Math.floor(rand() * 40);
    for (let j = 0; j < n; j++) s += String.fromCharCode(Math.floor(rand() * 256));
    assert.equal(decode(encode(s)), s);
  }
});

test('padding longer than 7 bits, padding with zeros and EOS are errors (§5.2)', () => {
  assert.equal(decode(hex('1f')), 'a'); // 00011 + 111
  assert.equal(decode(hex('18')), undefined); // 00011 + 000: padding not all ones
  assert.equal(decode(hex('1e')), undefined); // 00011 + 110
  assert.equal(decode(hex('1fff')), undefined); // 11 bits of padding
  assert.equal(decode(hex('ff')), undefined); // 8 bits of padding, no symbol
  assert.equal(decode(hex('fe')), undefined); // 7 ones then a 0: an incomplete code, not padding
  assert.equal(decode(hex('ffff ffff')), undefined); // EOS (30 ones) + 2 bits
  assert.equal(decode(hex('18ff ffff ff')), undefined); // 'a' then EOS
  // A 28-bit code cut short at the end of the string.
  assert.equal(decode(hex('ffff fe')), undefined);
  // Every one- and two-byte string either decodes or is rejected; none decodes to something that does
  // not re-encode to the same bytes.
  for (let v = 0; v < 0x10000; v++) {
    const bytes = v < 0x100 ? Buffer.from([v]) : Buffer.from([v >> 8, v & 0xff]);
    const s = decode(bytes);
    if (s !== undefined) assert.deepEqual(encode(s), bytes, bytes.toString('hex'));
  }
});
