// Tests the HTTP/1.1 head parser, start lines and body framing, and fuzzes parseHead against the old parser.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
// The same seeded mulberry32 the load-balancer tests use, so a failing case replays from its seed.
import { seededRandom } from '../../upstream/lb/test_support.js';
import {
  H1ParseError,
  type ParsedHead,
  parseHead,
  parseRequestLine,
  parseStatusLine,
  requestFraming,
  responseFraming,
} from './parse.js';

/** Parses `text` (latin1, so '\x80'-'\xff' stand for single bytes) followed by the blank line. */
function head(text: string, maxHeaders = 100): ParsedHead {
  const buf = Buffer.from(`${text}\r\n\r\n`, 'latin1');
  return parseHead(buf, 0, buf.indexOf('\r\n\r\n'), maxHeaders);
}

/** Asserts that `fn` throws an H1ParseError carrying `status`. */
function rejects(fn: () => unknown, status = 400): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof H1ParseError, `expected H1ParseError, got ${String(err)}`);
    assert.equal(err.status, status, err.message);
    return true;
  });
}

const REQ = 'GET / HTTP/1.1\r\n';

describe('parseHead', () => {
  it('lower-cases names, trims values, keeps duplicates in order and allows obs-text and empty values', () => {
    const parsed = head(
      'GET /a?b=1 HTTP/1.1\r\n' +
        'Host: example.com\r\n' +
        'X-Forwarded-For: \t 10.0.0.1 \t\r\n' +
        'x-dup: a\r\n' +
        'X-DUP: b\r\n' +
        'Referer:http://x.example/p:1\r\n' +
        'Empty:\r\n' +
        'Blank:   \t \r\n' +
        'Tab: a\tb  c\r\n' +
        "Tok!#$%&'*+-.^_`|~09: v\r\n" +
        'Obs: caf\xe9 \x80\xff',
    );
    assert.equal(parsed.startLine, 'GET /a?b=1 HTTP/1.1');
    assert.deepEqual(parsed.headers, [
      'host',
      'example.com',
      'x-forwarded-for',
      '10.0.0.1',
      'x-dup',
      'a',
      'x-dup',
      'b',
      'referer',
      'http://x.example/p:1',
      'empty',
      '',
      'blank',
      '',
      'tab',
      'a\tb  c',
      "tok!#$%&'*+-.^_`|~09",
      'v',
      'obs',
      'caf\xe9 \x80\xff',
    ]);
  });

  it('parses a head with no header fields', () => {
    assert.deepEqual(head('GET / HTTP/1.1'), { startLine: 'GET / HTTP/1.1', headers: [] });
  });

  it('parses response heads with and without a reason phrase', () => {
    assert.deepEqual(head('HTTP/1.1 200 OK\r\nContent-Length: 2'), {
      startLine: 'HTTP/1.1 200 OK',
      headers: ['content-length', '2'],
    });
    assert.deepEqual(head('HTTP/1.1 204\r\nServer: x'), {
      startLine: 'HTTP/1.1 204',
      headers: ['server', 'x'],
    });
  });

  it('parses a head that starts part-way into the buffer and ignores what follows it', () => {
    const first = 'POST /one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc';
    const second = 'GET /two HTTP/1.1\r\nHost: b\r\nX-Y:  z ';
    const buf = Buffer.from(`${first}${second}\r\n\r\n\x00\r\nbody\x7f`, 'latin1');
    const start = first.length;
    const end = buf.indexOf('\r\n\r\n', start);
    assert.deepEqual(parseHead(buf, start, end, 100), {
      startLine: 'GET /two HTTP/1.1',
      headers: ['host', 'b', 'x-y', 'z'],
    });
    // The earlier message in the same buffer is untouched by the later one.
    assert.deepEqual(parseHead(buf, 0, buf.indexOf('\r\n\r\n'), 100), {
      startLine: 'POST /one HTTP/1.1',
      headers: ['content-length', '3'],
    });
  });

  it('reports errors found after a non-zero start', () => {
    const buf = Buffer.from(`xx\r\n\r\n${REQ}A\x01: b\r\n\r\n`, 'latin1');
    rejects(() => parseHead(buf, 6, buf.indexOf('\r\n\r\n', 6), 100));
  });

  it('rejects obs-fold, including whitespace before the first field', () => {
    rejects(() => head(`${REQ}A: b\r\n c`));
    rejects(() => head(`${REQ}A: b\r\n\tc`));
    rejects(() => head(`${REQ} Host: x`));
    rejects(() => head(`${REQ}\tHost: x`));
  });

  it('rejects malformed field lines', () => {
    rejects(() => head(`${REQ}Host : x`)); // whitespace before the colon
    rejects(() => head(`${REQ}Host\t: x`));
    rejects(() => head(`${REQ}: x`)); // empty name
    rejects(() => head(`${REQ}:`));
    rejects(() => head(`${REQ}Host x`)); // no colon
    rejects(() => head(`${REQ}Host`));
    rejects(() => head(`${REQ}A: b\r\nHost`));
  });

  it('rejects non-token characters in names', () => {
    for (const c of [
      '(',
      ')',
      '"',
      '/',
      '@',
      '[',
      ']',
      '{',
      '}',
      '=',
      ',',
      ';',
      '?',
      '\\',
      '\x80',
      '\xe9',
      '\xff',
    ]) {
      rejects(() => head(`${REQ}X${c}Y: v`));
    }
  });

  it('rejects control characters in names, values and the start line', () => {
    for (const c of ['\x00', '\x01', '\x08', '\x0b', '\x0c', '\x1f', '\x7f']) {
      rejects(() => head(`${REQ}A: b${c}c`));
      rejects(() => head(`${REQ}A: ${c}`));
      rejects(() => head(`${REQ}A${c}: b`));
      rejects(() => head(`${c}${REQ}A: b`));
      rejects(() => head(`GET /${c} HTTP/1.1\r\nA: b`));
    }
  });

  it('rejects bare CR and bare LF', () => {
    rejects(() => head(`${REQ}A: b\rc`));
    rejects(() => head(`${REQ}A: b\nc`));
    rejects(() => head(`${REQ}A: b\r`)); // the CR is followed by the blank line's CR, not by LF
    rejects(() => head(`${REQ}A: b\n`));
    rejects(() => head(`${REQ}A: \rB: c`));
    rejects(() => head(`${REQ}\nA: b`));
    rejects(() => head(`${REQ}A\r: b`));
    rejects(() => head('GET / HTTP/1.1\nHost: x')); // LF alone does not end the start line
    rejects(() => head('GET /\r HTTP/1.1\r\nHost: x'));
    rejects(() => head('GET / HTTP/1.1\r'));
  });

  it('limits the number of fields with 431', () => {
    const three = `${REQ}A: 1\r\nB: 2\r\nC: 3`;
    assert.equal(head(three, 3).headers.length, 6);
    rejects(() => head(three, 2), 431);
    rejects(() => head(`${REQ}A: 1`, 0), 431);
    assert.deepEqual(head('GET / HTTP/1.1', 0).headers, []);
  });
});

describe('parseRequestLine', () => {
  it('accepts valid request lines', () => {
    assert.deepEqual(parseRequestLine('GET / HTTP/1.1'), { method: 'GET', target: '/', minor: 1 });
    assert.deepEqual(parseRequestLine('POST /a/b?c=d&e HTTP/1.0'), {
      method: 'POST',
      target: '/a/b?c=d&e',
      minor: 0,
    });
    assert.deepEqual(parseRequestLine('CONNECT example.com:443 HTTP/1.1'), {
      method: 'CONNECT',
      target: 'example.com:443',
      minor: 1,
    });
    assert.deepEqual(parseRequestLine('OPTIONS * HTTP/1.1'), { method: 'OPTIONS', target: '*', minor: 1 });
    assert.deepEqual(parseRequestLine('GET http://x.example/p HTTP/1.1'), {
      method: 'GET',
      target: 'http://x.example/p',
      minor: 1,
    });
    assert.deepEqual(parseRequestLine("M-SEARCH!#$%&'*+.^_`|~9 / HTTP/1.1"), {
      method: "M-SEARCH!#$%&'*+.^_`|~9",
      target: '/',
      minor: 1,
    });
  });

  it('answers unsupported versions with 505', () => {
    rejects(() => parseRequestLine('GET / HTTP/2.0'), 505);
    rejects(() => parseRequestLine('GET / HTTP/1.2'), 505);
    rejects(() => parseRequestLine('GET / HTTP/0.9'), 505);
  });

  it('rejects malformed request lines with 400', () => {
    for (const line of [
      '',
      'GET',
      'GET /',
      'GET / ',
      'GET  / HTTP/1.1',
      'GET /  HTTP/1.1',
      'GET / http/1.1',
      'GET / HTTP/1.1 ',
      ' GET / HTTP/1.1',
      'GET\t/ HTTP/1.1',
      'GET /\tHTTP/1.1',
      ' / HTTP/1.1',
      'GET  HTTP/1.1',
      'G@T / HTTP/1.1',
      'GE(T / HTTP/1.1',
      'G\xe9T / HTTP/1.1',
      'GET /a b HTTP/1.1',
      'GET / HTTP/1.10',
      'GET / HTTP/1',
      'GET / HTTP/1.x',
      'GET / HTTP/x.1',
      'GET / HTTP/1,1',
      'GET / HTTP-1.1',
    ]) {
      rejects(() => parseRequestLine(line));
    }
  });
});

describe('parseStatusLine', () => {
  it('accepts valid status lines', () => {
    assert.deepEqual(parseStatusLine('HTTP/1.1 200 OK'), { minor: 1, status: 200, reason: 'OK' });
    assert.deepEqual(parseStatusLine('HTTP/1.0 404'), { minor: 0, status: 404, reason: '' });
    assert.deepEqual(parseStatusLine('HTTP/1.1 200 '), { minor: 1, status: 200, reason: '' });
    assert.deepEqual(parseStatusLine('HTTP/1.1 503 Service  Unavailable '), {
      minor: 1,
      status: 503,
      reason: 'Service  Unavailable ',
    });
    assert.deepEqual(parseStatusLine('HTTP/1.1 101 Switching Protocols'), {
      minor: 1,
      status: 101,
      reason: 'Switching Protocols',
    });
    assert.deepEqual(parseStatusLine('HTTP/1.1 999 x'), { minor: 1, status: 999, reason: 'x' });
  });

  it('rejects malformed status lines', () => {
    for (const line of [
      '',
      'HTTP/1.1',
      'HTTP/1.1 ',
      'HTTP/1.1 20',
      'HTTP/1.1 2000',
      'HTTP/1.1 20x',
      'HTTP/1.1 200OK',
      'HTTP/2 200',
      'HTTP/2.0 200',
      'HTTP/1.2 200',
      'HTTP/1.1  200',
      'http/1.1 200',
      'HTTP/1.1\t200',
      'HTTP/1.1 200\tOK',
      ' HTTP/1.1 200',
    ]) {
      rejects(() => parseStatusLine(line));
    }
  });
});

describe('requestFraming', () => {
  const cl = (v: string) => requestFraming(['host', 'x', 'content-length', v], 1);

  it('accepts decimal Content-Length values that agree', () => {
    assert.deepEqual(cl('5'), { kind: 'length', length: 5 });
    assert.deepEqual(cl('005'), { kind: 'length', length: 5 });
    assert.deepEqual(cl('5, 5'), { kind: 'length', length: 5 });
    assert.deepEqual(cl('5,5'), { kind: 'length', length: 5 });
    assert.deepEqual(cl('0'), { kind: 'none' });
    assert.deepEqual(cl('999999999999999'), { kind: 'length', length: 999999999999999 });
    assert.deepEqual(requestFraming(['content-length', '7', 'content-length', '7'], 1), {
      kind: 'length',
      length: 7,
    });
  });

  it('rejects invalid or conflicting Content-Length values', () => {
    for (const v of [
      '5, 6',
      '5,',
      '',
      ' ',
      '-1',
      '+1',
      '1e3',
      '0x10',
      '1.0',
      '1 2',
      '1000000000000000',
      'five',
    ]) {
      rejects(() => cl(v));
    }
    rejects(() => requestFraming(['content-length', '5', 'content-length', '6'], 1));
    // Repeated values must agree as written: RFC 9110 §8.6 allows rejecting rather than comparing numbers.
    rejects(() => cl('005, 5'));
    rejects(() => requestFraming(['content-length', '5', 'content-length', '05'], 1));
  });

  it('uses chunked framing only for Transfer-Encoding: chunked alone', () => {
    assert.deepEqual(requestFraming(['transfer-encoding', 'chunked'], 1), { kind: 'chunked' });
    assert.deepEqual(requestFraming(['transfer-encoding', 'Chunked'], 1), { kind: 'chunked' });
    rejects(() => requestFraming(['transfer-encoding', 'chunked', 'content-length', '5'], 1));
    rejects(() => requestFraming(['content-length', '5', 'transfer-encoding', 'chunked'], 1));
    rejects(() => requestFraming(['transfer-encoding', 'chunked'], 0));
    rejects(() => requestFraming(['transfer-encoding', 'gzip'], 1), 501);
    rejects(() => requestFraming(['transfer-encoding', 'gzip, chunked'], 1), 501);
    rejects(() => requestFraming(['transfer-encoding', 'gzip', 'transfer-encoding', 'chunked'], 1), 501);
    rejects(() => requestFraming(['transfer-encoding', 'chunked, chunked'], 1), 501);
  });

  it('has no body without framing headers', () => {
    assert.deepEqual(requestFraming([], 1), { kind: 'none' });
    assert.deepEqual(requestFraming(['host', 'x'], 0), { kind: 'none' });
  });
});

describe('responseFraming', () => {
  it('has no body for HEAD, 1xx, 204 and 304 whatever the headers say', () => {
    const headers = ['content-length', '10', 'transfer-encoding', 'chunked'];
    assert.deepEqual(responseFraming(headers, 200, 'HEAD'), { kind: 'none' });
    assert.deepEqual(responseFraming(headers, 204, 'GET'), { kind: 'none' });
    assert.deepEqual(responseFraming(headers, 304, 'GET'), { kind: 'none' });
    assert.deepEqual(responseFraming(headers, 100, 'POST'), { kind: 'none' });
  });

  it('reads until close without a length', () => {
    assert.deepEqual(responseFraming([], 200, 'GET'), { kind: 'close' });
    assert.deepEqual(responseFraming(['transfer-encoding', 'gzip'], 200, 'GET'), { kind: 'close' });
    assert.deepEqual(responseFraming(['transfer-encoding', 'chunked, gzip'], 200, 'GET'), { kind: 'close' });
  });

  it('uses Content-Length and a final chunked coding', () => {
    assert.deepEqual(responseFraming(['content-length', '5'], 200, 'GET'), { kind: 'length', length: 5 });
    assert.deepEqual(responseFraming(['content-length', '5, 5'], 200, 'GET'), { kind: 'length', length: 5 });
    assert.deepEqual(responseFraming(['content-length', '0'], 200, 'GET'), { kind: 'length', length: 0 });
    assert.deepEqual(responseFraming(['transfer-encoding', 'chunked'], 200, 'GET'), { kind: 'chunked' });
    assert.deepEqual(responseFraming(['transfer-encoding', 'gzip, Chunked'], 200, 'GET'), {
      kind: 'chunked',
    });
  });

  it('rejects bad framing with 502', () => {
    for (const v of ['5, 6', '-1', '1e3', '0x10', '1000000000000000', '']) {
      rejects(() => responseFraming(['content-length', v], 200, 'GET'), 502);
    }
    rejects(() => responseFraming(['transfer-encoding', 'chunked', 'content-length', '5'], 200, 'GET'), 502);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Differential test: the previous string-based parser is the oracle for the byte-scanning one.

const HEAD_CTL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
const TOKEN = (() => {
  const t = new Uint8Array(128);
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    t[c.charCodeAt(0)] = 1;
  return t;
})();

/**
 * The previous parser, kept verbatim but for one change: it checked the whole head for control characters
 * before anything else, so a head with too many fields and a control character further on was a 400, where
 * the byte scanner stops at the first offending line with 431. Both reject; first-error-in-order is the
 * behaviour of a streaming parser and is as correct, so the oracle checks control characters line by line.
 */
function referenceParseHead(text: string, maxHeaders: number): ParsedHead {
  const n = text.length;
  let eol = text.indexOf('\r\n');
  if (eol < 0) eol = n;
  const startLine = text.slice(0, eol);
  if (HEAD_CTL.test(startLine)) throw new H1ParseError('invalid control character in message head');
  if (startLine.includes('\r') || startLine.includes('\n'))
    throw new H1ParseError('invalid character in start line');
  const headers: string[] = [];
  let pos = eol + 2;
  while (pos < n) {
    let end = text.indexOf('\r\n', pos);
    if (end < 0) end = n;
    if (HEAD_CTL.test(text.slice(pos, end)))
      throw new H1ParseError('invalid control character in message head');
    const c0 = text.charCodeAt(pos);
    if (c0 === 32 || c0 === 9) throw new H1ParseError('obsolete line folding is not allowed');
    let i = pos;
    for (; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c === 58) break;
      if (c > 127 || TOKEN[c] === 0) throw new H1ParseError('invalid header name');
    }
    if (i === end || i === pos) throw new H1ParseError('malformed header line');
    const name = text.slice(pos, i).toLowerCase();
    let vs = i + 1;
    let ve = end;
    while (vs < ve && (text.charCodeAt(vs) === 32 || text.charCodeAt(vs) === 9)) vs++;
    while (ve > vs && (text.charCodeAt(ve - 1) === 32 || text.charCodeAt(ve - 1) === 9)) ve--;
    const cr = text.indexOf('\r', vs);
    const lf = text.indexOf('\n', vs);
    if ((cr >= 0 && cr < end) || (lf >= 0 && lf < end)) throw new H1ParseError('invalid character in header');
    headers.push(name, text.slice(vs, ve));
    if (headers.length > maxHeaders * 2) throw new H1ParseError('too many headers', 431);
    pos = end + 2;
  }
  return { startLine, headers };
}

// CRLF is one symbol so that random text is often split into several lines.
const ALPHABET = [
  'a',
  'Z',
  'x',
  'k',
  '0',
  '7',
  ':',
  ' ',
  '\t',
  '\r',
  '\n',
  '\r\n',
  '\x00',
  '\x7f',
  '\x80',
  '\xe9',
  '-',
];
const START_LINES = ['GET / HTTP/1.1', 'HTTP/1.1 200 OK', 'POST /x?y=\xe9 HTTP/1.0', 'HTTP/1.0 404', ''];
const NAMES = ['Host', 'content-length', 'X-A', 'a', 'Transfer-Encoding', 'x-\xe9', 'x y', ''];
const VALUES = ['', 'v', ' v ', '\tv\t', 'a b', '\x80\xff', 'caf\xe9', ':', ' ', 'a\rb', 'a\nb', 'a\x00b'];

function generate(rand: () => number): { prefix: string; text: string; maxHeaders: number } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const noise = (max: number): string => {
    let s = '';
    for (let n = Math.floor(rand() * max); n > 0; n--) s += pick(ALPHABET);
    return s;
  };
  let text: string;
  if (rand() < 0.3) {
    text = noise(60);
  } else {
    const lines = [rand() < 0.8 ? pick(START_LINES) : noise(20)];
    for (let n = Math.floor(rand() * 7); n > 0; n--) {
      const r = rand();
      if (r < 0.6) lines.push(`${pick(NAMES)}:${pick(VALUES)}`);
      else if (r < 0.75) lines.push(`${pick([' ', '\t'])}${pick(VALUES)}`);
      else lines.push(noise(15));
    }
    text = lines.join('\r\n');
    // A few single-symbol mutations reach the boundaries of otherwise valid lines.
    for (let n = Math.floor(rand() * 3); n > 0; n--) {
      const at = Math.floor(rand() * (text.length + 1));
      text = text.slice(0, at) + pick(ALPHABET) + text.slice(at + (rand() < 0.5 ? 1 : 0));
    }
  }
  return {
    prefix: rand() < 0.3 ? noise(10) : '',
    text: `${text}\r\n\r\n${noise(8)}`,
    maxHeaders: pick([0, 1, 2, 3, 5, 100]),
  };
}

function show(s: string): string {
  return JSON.stringify(s).replace(/[\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
}

type Outcome = { ok: ParsedHead } | { status: number };

function outcome(fn: () => ParsedHead): Outcome {
  try {
    return { ok: fn() };
  } catch (err) {
    if (!(err instanceof H1ParseError)) throw err;
    return { status: err.status };
  }
}

describe('parseHead against the previous parser', () => {
  it('agrees on thousands of generated heads', () => {
    const seed = Number(process.env.PARSE_FUZZ_SEED ?? 0x5eed);
    const cases = 6000;
    let accepted = 0;
    let tooMany = 0;
    for (let k = 0; k < cases; k++) {
      const { prefix, text, maxHeaders } = generate(seededRandom(seed + k));
      const buf = Buffer.from(prefix + text, 'latin1');
      const start = prefix.length;
      const end = buf.indexOf('\r\n\r\n', start);
      const context =
        `case seed ${seed + k} (PARSE_FUZZ_SEED=${seed + k} replays it first): ` +
        `prefix ${show(prefix)} input ${show(text)} maxHeaders ${maxHeaders}`;
      const actual = outcome(() => parseHead(buf, start, end, maxHeaders));
      const expected = outcome(() => referenceParseHead(buf.toString('latin1', start, end), maxHeaders));
      assert.deepEqual(actual, expected, context);
      if ('ok' in actual) accepted++;
      else if (actual.status === 431) tooMany++;
    }
    // The generator must reach every outcome often enough for the comparison to mean something.
    assert.ok(accepted > cases / 10 && accepted < cases - cases / 10, `accepted ${accepted} of ${cases}`);
    assert.ok(tooMany > cases / 50, `431 in ${tooMany} of ${cases}`);
  });
});
