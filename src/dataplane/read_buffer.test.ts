// Tests the shared upstream read buffer: replaced exactly when a write keeps a view of it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readBuffer, releaseIfRetained } from './read_buffer.js';

test('a write that completed leaves the buffer in place', () => {
  const before = readBuffer();
  releaseIfRetained({ writableLength: 0 });
  assert.equal(readBuffer(), before);
});

test('a write still pending keeps the bytes it was given: later reads go to a new buffer', () => {
  const before = readBuffer();
  const view = before.subarray(0, 5);
  view.write('hello');
  releaseIfRetained({ writableLength: 5 });
  const after = readBuffer();
  assert.notEqual(after, before);
  assert.equal(after.length, before.length);
  after.fill(0);
  assert.equal(view.toString(), 'hello', 'the pending bytes were overwritten');
});
