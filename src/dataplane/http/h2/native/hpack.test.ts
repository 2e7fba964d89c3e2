import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeaderListTooLarge, HpackDecoder, HpackEncoder, HpackError } from './hpack.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decode(d: HpackDecoder, block: Uint8Array, maxListSize?: number): string[] {
  const out: string[] = [];
  d.decode(block, out, maxListSize);
  return out;
}

/** Asserts the dynamic table holds exactly `entries` (newest first), by reading them back as indexed fields. */
function assertTable(d: HpackDecoder, entries: string[]): void {
  const indexes = entries.length / 2;
  const block = Buffer.from(Array.from({ length: indexes }, (_, i) => 0x80 | (62 + i)));
  assert.deepEqual(decode(d, block), entries);
  assert.throws(() => decode(d, Buffer.from([0x80 | (62 + indexes)])), HpackError);
}

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Decodes or throws HpackError (or HeaderListTooLarge): anything else fails the test. */
function decodeHostile(d: HpackDecoder, block: Uint8Array, maxListSize?: number): void {
  try {
    d.decode(block, [], maxListSize);
  } catch (err) {
    if (!(err instanceof HpackError) && !(err instanceof HeaderListTooLarge)) throw err;
  }
}

test('RFC 7541 C.2: one representation of each kind', () => {
  let d = new HpackDecoder();
  const c21 = hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572');
  assert.deepEqual(decode(d, c21), ['custom-key', 'custom-header']);
  assertTable(d, ['custom-key', 'custom-header']);
  d = new HpackDecoder();
  assert.deepEqual(decode(d, hex('040c 2f73 616d 706c 652f 7061 7468')), [':path', '/sample/path']);
  assertTable(d, []);
  d = new HpackDecoder();
  assert.deepEqual(decode(d, hex('1008 7061 7373 776f 7264 0673 6563 7265 74')), ['password', 'secret']);
  assertTable(d, []);
  d = new HpackDecoder();
  assert.deepEqual(decode(d, hex('82')), [':method', 'GET']);
  assertTable(d, []);
});

const REQUESTS = [
  [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'],
  [
    ':method',
    'GET',
    ':scheme',
    'http',
    ':path',
    '/',
    ':authority',
    'www.example.com',
    'cache-control',
    'no-cache',
  ],
  [
    ':method',
    'GET',
    ':scheme',
    'https',
    ':path',
    '/index.html',
    ':authority',
    'www.example.com',
    'custom-key',
    'custom-value',
  ],
];
const REQUEST_TABLES = [
  [':authority', 'www.example.com'],
  ['cache-control', 'no-cache', ':authority', 'www.example.com'],
  ['custom-key', 'custom-value', 'cache-control', 'no-cache', ':authority', 'www.example.com'],
];

test('RFC 7541 C.3: requests without Huffman coding', () => {
  const d = new HpackDecoder();
  const blocks = [
    '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    '8286 84be 5808 6e6f 2d63 6163 6865',
    '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
  ];
  blocks.forEach((b, i) => {
    assert.deepEqual(decode(d, hex(b)), REQUESTS[i]);
    assertTable(d, REQUEST_TABLES[i]!);
  });
});

test('RFC 7541 C.4: requests with Huffman coding', () => {
  const d = new HpackDecoder();
  const blocks = [
    '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
    '8286 84be 5886 a8eb 1064 9cbf',
    '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
  ];
  blocks.forEach((b, i) => {
    assert.deepEqual(decode(d, hex(b)), REQUESTS[i]);
    assertTable(d, REQUEST_TABLES[i]!);
  });
});

const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOCATION = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RESPONSES = [
  [':status', '302', 'cache-control', 'private', 'date', DATE1, 'location', LOCATION],
  [':status', '307', 'cache-control', 'private', 'date', DATE1, 'location', LOCATION],
  [
    ':status',
    '200',
    'cache-control',
    'private',
    'date',
    DATE2,
    'location',
    LOCATION,
    'content-encoding',
    'gzip',
    'set-cookie',
    COOKIE,
  ],
];
const RESPONSE_TABLES = [
  ['location', LOCATION, 'date', DATE1, 'cache-control', 'private', ':status', '302'],
  [':status', '307', 'location', LOCATION, 'date', DATE1, 'cache-control', 'private'],
  ['set-cookie', COOKIE, 'content-encoding', 'gzip', 'date', DATE2],
];

test('RFC 7541 C.5: responses without Huffman coding, evicting from a 256-byte table', () => {
  const d = new HpackDecoder(256);
  // The examples assume a 256-byte table from the start: the peer's size update after our SETTINGS.
  decode(d, hex('3fe1 01'));
  const blocks = [
    `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
     2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
    '4803 3330 37c1 c0bf',
    `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
     54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
     5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
  ];
  blocks.forEach((b, i) => {
    assert.deepEqual(decode(d, hex(b)), RESPONSES[i]);
    assertTable(d, RESPONSE_TABLES[i]!);
  });
});

test('RFC 7541 C.6: responses with Huffman coding, evicting from a 256-byte table', () => {
  const d = new HpackDecoder(256);
  // The examples assume a 256-byte table from the start: the peer's size update after our SETTINGS.
  decode(d, hex('3fe1 01'));
  const blocks = [
    `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
     2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
    '4883 640e ffc1 c0bf',
    `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
     77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
     9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
  ];
  blocks.forEach((b, i) => {
    assert.deepEqual(decode(d, hex(b)), RESPONSES[i]);
    assertTable(d, RESPONSE_TABLES[i]!);
  });
});

test('integers: multi-byte values, overflow and over-long encodings', () => {
  const d = new HpackDecoder();
  // C.1.2: 1337 with a 5-bit prefix, as a size update.
  assert.deepEqual(decode(d, hex('3f9a 0a 82')), [':method', 'GET']);
  // A string length of 200 (7-bit prefix: 127 + 73).
  const value = 'v'.repeat(200);
  assert.deepEqual(decode(d, Buffer.concat([hex('0f 27 7f 49'), Buffer.from(value)])), ['server', value]);
  // Values past 2^31 - 1, as an index and as a string length.
  assert.throws(() => decode(d, hex('ff ff ff ff ff 0f')), /integer overflow/);
  assert.throws(() => decode(d, hex('00 7f ff ff ff ff 0f')), /integer overflow/);
  // 2^31 - 1 itself is a valid integer: as a length it overruns the block.
  assert.throws(() => decode(d, hex('00 7f 80 ff ff ff 07')), /truncated string/);
  // Zero-padded continuation bytes beyond five.
  assert.throws(() => decode(d, hex('ff 80 80 80 80 80 00')), /integer too long/);
  // Truncated continuation.
  assert.throws(() => decode(d, hex('ff 80')), /truncated integer/);
  assert.throws(() => decode(d, hex('80')), /index 0/);
  assert.throws(() => decode(d, hex('be')), /beyond the dynamic table/);
  assert.throws(() => decode(d, hex('7e 01 61')), /beyond the dynamic table/); // literal name index 62
});

test('dynamic table size updates: at block start only, never above the advertised maximum', () => {
  const d = new HpackDecoder();
  decode(d, hex('4003 6162 6301 78')); // abc: x
  assertTable(d, ['abc', 'x']);
  assert.throws(() => decode(d, hex('3fe2 1f')), /exceeds 4096/); // 4097
  assert.throws(() => decode(d, hex('82 20')), /after a header field/);
  // Two updates in a row (shrink, then grow) before the first field are fine; the shrink evicted.
  assert.deepEqual(decode(d, hex('20 3fe1 1f 82')), [':method', 'GET']);
  assertTable(d, []);
  // Table size 0: literals with indexing are decoded but not stored.
  assert.deepEqual(decode(d, hex('20 4003 6162 6301 78')), ['abc', 'x']);
  assertTable(d, []);
});

test('the table starts at 4096 bytes whatever we advertise, and grows only by size updates', () => {
  // Entries of 3 + 100 + 32 = 135 bytes: 30 fit in 4096 bytes, 60 in 8192.
  const value = (i: number): string => `${String(i).padStart(3, '0')}${'v'.repeat(97)}`;
  const entry = (i: number): Buffer => Buffer.concat([hex('4003 616263 64'), Buffer.from(value(i))]);
  const at = (d: HpackDecoder, dynamic: number): string[] => decode(d, Buffer.from([0x80 | (61 + dynamic)]));
  const big = new HpackDecoder(8192);
  for (let i = 0; i < 40; i++) decode(big, entry(i));
  assert.deepEqual(at(big, 30), ['abc', value(10)]);
  assert.throws(() => at(big, 31), /beyond the dynamic table/);
  assert.throws(() => decode(big, hex('3fe2 3f')), /exceeds 8192/); // 8193
  decode(big, hex('3fe1 3f')); // 8192
  for (let i = 40; i < 80; i++) decode(big, entry(i));
  assert.deepEqual(at(big, 60), ['abc', value(20)]);
  assert.throws(() => at(big, 61), /beyond the dynamic table/);

  // Advertising less than 4096: the peer may use 4096 until it has seen our SETTINGS; then it shrinks.
  const small = new HpackDecoder(0);
  assert.throws(() => decode(small, hex('3fe2 1f')), /exceeds 4096/);
  for (let i = 0; i < 40; i++) decode(small, entry(i));
  assert.deepEqual(at(small, 30), ['abc', value(10)]);
  assert.deepEqual(decode(small, hex('20 4003 6162 6301 78')), ['abc', 'x']);
  assertTable(small, []);
});

test('an entry larger than the table empties it and is not added (§4.4)', () => {
  const d = new HpackDecoder(100);
  decode(d, hex('3f45 4003 6162 6301 78')); // size update to 100, then abc: x
  assertTable(d, ['abc', 'x']);
  const big = 'y'.repeat(80);
  assert.deepEqual(decode(d, Buffer.concat([hex('4003 6465 6650'), Buffer.from(big)])), ['def', big]);
  assertTable(d, []);
});

test('a header list over the limit throws HeaderListTooLarge after updating the table', () => {
  const d = new HpackDecoder();
  const e = new HpackEncoder();
  const headers = ['x-a', 'a'.repeat(40), 'x-b', 'b'.repeat(40), 'x-c', 'c'.repeat(40)];
  const first = e.encode(headers);
  const out = ['kept', 'pair'];
  assert.throws(
    () => d.decode(first, out, 100),
    (err: unknown) =>
      err instanceof HeaderListTooLarge && err.size === 3 * (3 + 40 + 32) && err.limit === 100,
  );
  assert.deepEqual(out, ['kept', 'pair']);
  // The next block refers to the three entries inserted by the rejected one.
  const second = e.encode(headers);
  assert.equal(second.length, 3);
  assert.deepEqual(decode(d, second, 1000), headers);
  // Exactly at the limit is allowed.
  assert.deepEqual(decode(d, e.encode(headers), 3 * 75), headers);
});

test('hostile input: truncation at every byte and random bytes only ever throw HpackError', () => {
  const vectors = [
    hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'),
    hex('4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6'),
    hex('3fe1 1f 00 7f 49 ff'),
    new HpackEncoder().encodeResponse(503, ['content-type', 'text/html', 'authorization', 'x'.repeat(300)]),
  ];
  for (const v of vectors) {
    for (let n = 0; n <= v.length; n++) decodeHostile(new HpackDecoder(256), v.subarray(0, n));
  }
  const rand = mulberry32(9113);
  const d = new HpackDecoder();
  for (let i = 0; i < 20000; i++) {
    const block = Buffer.alloc(Math.floor(rand() * 48));
    for (let j = 0; j < block.length; j++) block[j] = Math.floor(rand() * 256);
    decodeHostile(i % 2 ? d : new HpackDecoder(), block, 4096);
  }
  // Mutations of valid blocks reach deeper than random bytes.
  for (let i = 0; i < 20000; i++) {
    const block = Buffer.from(vectors[i % vectors.length]!);
    block[Math.floor(rand() * block.length)] = Math.floor(rand() * 256);
    decodeHostile(new HpackDecoder(), block);
  }
});

test('accepts a plain Uint8Array as well as a Buffer', () => {
  const d = new HpackDecoder();
  assert.deepEqual(decode(d, new Uint8Array(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))), REQUESTS[0]);
  const bytes = hex('ff 82 0f 27 02 6869 ff');
  assert.deepEqual(decode(d, new Uint8Array(bytes.buffer, bytes.byteOffset + 2, 5)), ['server', 'hi']);
});

test('encoder: static statuses, literal statuses, repeated headers shrinking to one byte', () => {
  const e = new HpackEncoder();
  assert.deepEqual(e.encodeResponse(200, []), hex('88'));
  assert.deepEqual(e.encodeResponse(404, []), hex('8d'));
  assert.deepEqual(e.encodeResponse(302, []), hex('08 03 333032'));
  const headers = ['content-type', 'application/grpc', 'server', 'remora', 'x-custom', 'v'];
  const first = e.encodeResponse(200, headers);
  const second = e.encodeResponse(200, headers);
  assert.deepEqual(second, hex('88 c0 bf be'));
  const d = new HpackDecoder();
  assert.deepEqual(decode(d, first), [':status', '200', ...headers]);
  assert.deepEqual(decode(d, second), [':status', '200', ...headers]);
  // Request pseudo-headers use the static table's full entries.
  assert.deepEqual(e.encode([':method', 'GET', ':scheme', 'https', ':path', '/']), hex('82 87 84'));
});

test('encoder: secrets are never indexed, per-message values and long values are not indexed', () => {
  const e = new HpackEncoder();
  const d = new HpackDecoder();
  const long = 'l'.repeat(129);
  const headers = [
    'authorization',
    'Bearer x',
    'date',
    'Mon',
    'x-long',
    long,
    'set-cookie',
    'a=b',
    'cookie',
    'c',
  ];
  const first = e.encode(headers);
  // authorization: never indexed (0001) with static name index 23 = 15 + 8.
  assert.deepEqual(first.subarray(0, 2), hex('1f 08'));
  assert.deepEqual(e.encode(headers), first); // nothing entered the table
  assert.deepEqual(decode(d, first), headers);
  assertTable(d, []);
});

test('encoder: table size changes are signalled at the next block start and honoured', () => {
  const e = new HpackEncoder();
  const d = new HpackDecoder();
  const headers = ['x-a', 'one', 'x-b', 'two'];
  decode(d, e.encode(headers));
  e.setMaxTableSize(0);
  e.setMaxTableSize(4096);
  const block = e.encode(headers);
  // Shrink to 0 (evicting everything), back to 4096, then the headers re-inserted.
  assert.deepEqual(block.subarray(0, 5), hex('20 3fe1 1f 40'));
  assert.deepEqual(decode(d, block), headers);
  assertTable(d, ['x-b', 'two', 'x-a', 'one']);
  // A peer allowing more than 4096 gets no update: we stay at 4096.
  e.setMaxTableSize(65536);
  assert.deepEqual(e.encode(headers), hex('bf be'));
  // Table size 0: no update twice, and everything goes literally.
  e.setMaxTableSize(0);
  const zero = e.encode(headers);
  assert.equal(zero[0], 0x20);
  assert.deepEqual(decode(d, zero), headers);
  assertTable(d, []);
  assert.equal(e.encode(headers)[0], 0x00); // literal without indexing, no more size update
  // An encoder built for a peer advertising 100 announces it first.
  const small = new HpackEncoder(100);
  const sd = new HpackDecoder(100);
  const b = small.encode(['x-a', 'one']);
  assert.deepEqual(b.subarray(0, 3), hex('3f 45 40'));
  assert.deepEqual(decode(sd, b), ['x-a', 'one']);
  assert.deepEqual(new HpackEncoder(4096).encode([]), hex(''));
});

test('encoder → decoder round trips: random header lists and table sizes (seeded)', () => {
  const rand = mulberry32(7540);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const names = [
    'content-type',
    'server',
    'date',
    'cache-control',
    'authorization',
    'cookie',
    'set-cookie',
    'x-request-id',
    'x-custom',
    'x-other',
    'accept-encoding',
    ':path',
    ':method',
    'grpc-status',
    'a'.repeat(70),
  ];
  const values = [
    '',
    'text/plain',
    'gzip, deflate',
    'GET',
    'POST',
    '/',
    'remora',
    '0',
    'no-cache',
    'ÿé\u0080',
  ];
  const randomValue = (): string => {
    if (rand() < 0.7) return pick(values);
    let s = '';
    const n = Math.floor(rand() * (rand() < 0.1 ? 300 : 20));
    for (let i = 0; i < n; i++) s += String.fromCharCode(32 + Math.floor(rand() * 224));
    return s;
  };
  const sizes = [0, 1, 64, 100, 256, 4096, 65536];
  for (let conn = 0; conn < 50; conn++) {
    const e = new HpackEncoder(pick(sizes));
    const d = new HpackDecoder(65536);
    for (let block = 0; block < 60; block++) {
      if (rand() < 0.05) e.setMaxTableSize(pick(sizes));
      if (rand() < 0.03) e.setMaxTableSize(pick(sizes));
      const headers: string[] = [];
      const n = Math.floor(rand() * 12);
      for (let i = 0; i < n; i++) headers.push(pick(names), randomValue());
      if (rand() < 0.5) {
        const status = pick([200, 204, 206, 304, 400, 404, 500, 100, 302, 503, 999]);
        assert.deepEqual(decode(d, e.encodeResponse(status, headers)), [
          ':status',
          String(status),
          ...headers,
        ]);
      } else {
        assert.deepEqual(decode(d, e.encode(headers)), headers);
      }
    }
  }
});

test('fields with CR, LF or NUL in a value, or a bad byte in a name, mark the block malformed; the table stays in step', () => {
  const enc = new HpackEncoder();
  const dec = new HpackDecoder();
  const out: string[] = [];
  // Literal with incremental indexing: the bad field also enters the table, as the encoder's does.
  dec.decode(enc.encode(['x-a', 'one\r\ntwo']), out);
  assert.equal(dec.malformed, true);
  for (const [name, value] of [
    ['x-b', 'a\nb'],
    ['x-c', 'a\u0000b'],
    ['x d', 'v'],
    ['x-e:', 'v'],
  ] as const) {
    dec.decode(enc.encode([name, value]), []);
    assert.equal(dec.malformed, true, JSON.stringify([name, value]));
  }
  const clean: string[] = [];
  dec.decode(enc.encode([':path', '/ok', 'x-f', 'tab\tand é are fine']), clean);
  assert.equal(dec.malformed, false);
  assert.deepEqual(clean, [':path', '/ok', 'x-f', 'tab\tand é are fine']);
});
