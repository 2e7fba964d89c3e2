// Unit: the HTTP inspector on request lines, the HTTP/2 preface, byte-at-a-time input, and what is not HTTP.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { type HttpInspection, HttpInspectorParser, inspectHttp, MAX_INSPECT_SIZE } from './http_inspector.js';

const http = (protocol: 'http/1.0' | 'http/1.1' | 'h2c'): HttpInspection => ({ kind: 'http', protocol });
const of = (s: string) => inspectHttp(Buffer.from(s, 'latin1'));

test('request lines: HTTP/1.1 is http/1.1, every other version http/1.0 (as Envoy)', () => {
  assert.deepEqual(of('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), http('http/1.1'));
  assert.deepEqual(of('POST /a?b=c HTTP/1.0\r\n'), http('http/1.0'));
  assert.deepEqual(of('OPTIONS * HTTP/1.1\r\n'), http('http/1.1'));
  assert.deepEqual(of('CONNECT example.com:443 HTTP/1.1\r\n'), http('http/1.1'));
  assert.deepEqual(of('GET http://a/b HTTP/1.1\n'), http('http/1.1'), 'a bare LF ends the line');
  assert.deepEqual(of('GET / HTTP/2.0\r\n'), http('http/1.0'));
  assert.deepEqual(of('X-CUSTOM_method / HTTP/1.1\r\n'), http('http/1.1'), 'extension methods are tokens');
  assert.deepEqual(of('PRI * HTTP/1.1\r\n'), http('http/1.1'), 'starts like the preface, then is not');
  // A preface that goes wrong after its first line is that line: a request line of version 2.0.
  assert.deepEqual(of('PRI * HTTP/2.0\r\n\r\nXX'), http('http/1.0'));
});

test('the HTTP/2 preface is h2c; a prefix of it needs more', () => {
  const preface = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
  assert.deepEqual(of(`${preface}\x00\x00\x12\x04`), http('h2c'));
  for (let n = 0; n < preface.length; n++)
    assert.equal(of(preface.slice(0, n)).kind, 'need_more', `${n} bytes`);
});

test('byte at a time: need_more until the end of the request line', () => {
  const line = Buffer.from('DELETE /items/42 HTTP/1.1\r\n');
  const p = new HttpInspectorParser();
  for (let i = 0; i < line.length - 1; i++) assert.equal(p.push(line.subarray(i, i + 1)).kind, 'need_more');
  assert.deepEqual(p.push(line.subarray(-1)), http('http/1.1'));
  assert.deepEqual(p.push(Buffer.from('garbage')), http('http/1.1'), 'the first verdict is final');
});

test('what is not HTTP is known as early as possible', () => {
  for (const s of [
    '\x16\x03\x01\x02\x00', // a TLS record
    '\r\nGET / HTTP/1.1\r\n', // Envoy: the first line must not be empty
    '\nGET',
    ' GET / HTTP/1.1\r\n',
    'GET  / HTTP/1.1\r\n',
    'GET / HTTP/1.1 \r\n',
    'GET / HTTPS/1.1\r\n',
    'GET / HTTP/1.x\r\n',
    'GET / HTTP/11\r\n',
    'GET / HTTP/1.1\rX',
    'GET /a\x00b HTTP/1.1\r\n',
    'GE(T / HTTP/1.1\r\n',
    'SSH-2.0-OpenSSH_9.6\r\n',
  ]) {
    assert.equal(of(s).kind, 'not_http', JSON.stringify(s));
  }
  assert.equal(of('\x16').kind, 'not_http', 'one byte is enough');
});

test('an incomplete request line needs more; one past the limit is too large', () => {
  assert.equal(of('GET /very/long').kind, 'need_more');
  assert.equal(of('GET / HTTP/1.').kind, 'need_more');
  const long = Buffer.concat([Buffer.from('GET /'), Buffer.alloc(MAX_INSPECT_SIZE, 'a')]);
  assert.equal(inspectHttp(long).kind, 'too_large');
  const p = new HttpInspectorParser(100);
  assert.equal(p.push(Buffer.from('GET /')).kind, 'need_more');
  assert.equal(p.push(Buffer.alloc(200, 'b')).kind, 'too_large');
});

test('fuzz: random bytes never throw', () => {
  const kinds = new Set(['need_more', 'not_http', 'too_large', 'http']);
  for (let i = 0; i < 5000; i++) {
    const b = randomBytes(1 + (i % 64));
    if (i % 3 === 0) b.write('GET / HTTP/1.'.slice(0, i % 14));
    const p = new HttpInspectorParser(512);
    for (let k = 0; k < 20; k++) assert.ok(kinds.has(p.push(b).kind));
  }
});
