import assert from 'node:assert/strict';
import { test } from 'node:test';
import { knownName, NAME_LOWER, nameHash } from './header_names.js';

function lookup(spelled: string): string | undefined {
  const buf = Buffer.from(`xx${spelled}:`, 'latin1');
  let hash = 0;
  for (let i = 2; i < buf.length - 1; i++) hash = nameHash(hash, NAME_LOWER[buf[i]!]!);
  return knownName(buf, 2, buf.length - 1, hash);
}

test('a known name is found in any case, as the one lower-case string', () => {
  for (const spelled of ['content-length', 'Content-Length', 'CONTENT-LENGTH', 'cOnTeNt-LeNgTh']) {
    assert.equal(lookup(spelled), 'content-length');
  }
  assert.equal(lookup('Host'), 'host');
  assert.equal(lookup('X-Request-Id'), 'x-request-id');
});

test('names that are not known, or differ by a byte, prefix or suffix, are not found', () => {
  for (const spelled of ['x-custom', 'content-lengthx', 'content-lengt', 'hosT2', 'te-', 'content_length']) {
    assert.equal(lookup(spelled), undefined, spelled);
  }
});

test('NAME_LOWER is the lower-case byte of a tchar and 0 for every other byte', () => {
  assert.equal(NAME_LOWER[65], 97);
  assert.equal(NAME_LOWER[97], 97);
  assert.equal(NAME_LOWER['-'.charCodeAt(0)], 45);
  for (const c of [0, 9, 32, 34, 40, 44, 58, 59, 64, 91, 127, 200, 255])
    assert.equal(NAME_LOWER[c], 0, String(c));
});
