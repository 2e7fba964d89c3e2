// Tests the shared read buffer: a view of it is copied before anyone keeps it; other bytes pass as they are.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { copyIfShared, readBuffer } from './read_buffer.js';

test('a view of the read buffer is copied: the next read cannot change it', () => {
  const view = readBuffer().subarray(0, 5);
  view.write('hello');
  const kept = copyIfShared(view);
  readBuffer().fill(0);
  assert.equal(kept.toString(), 'hello');
});

test('bytes that are not the read buffer pass through uncopied', () => {
  const own = Buffer.from('mine');
  assert.equal(copyIfShared(own), own);
});
