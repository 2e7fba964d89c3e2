// Tests the shared read buffer: a view of it is copied before anyone keeps it; other bytes pass as they are.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { copyIfShared, readBuffer, readIntoSharedBuffer } from './read_buffer.js';

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

test('a socket whose reads fill half the buffer reads into buffers of its own, and back once reads are small', () => {
  const seen: Buffer[] = [];
  const opts = readIntoSharedBuffer((chunk) => seen.push(chunk) > 0);
  const buffer = opts.buffer as () => Buffer;
  const callback = opts.callback as (n: number, buf: Buffer) => boolean;
  assert.equal(buffer(), readBuffer());
  callback(100, buffer());
  assert.equal(buffer(), readBuffer(), 'a small read moved the socket off the shared buffer');
  callback(48 * 1024, buffer());
  const own = buffer();
  assert.notEqual(own.buffer, readBuffer().buffer);
  callback(60 * 1024, own);
  assert.notEqual(buffer(), own, 'a buffer handed to the consumer was read into again');
  assert.equal(copyIfShared(seen[2]!), seen[2], 'bytes of a buffer of its own were copied');
  callback(10, buffer());
  assert.equal(buffer(), readBuffer());
  assert.deepEqual(
    seen.map((c) => c.length),
    [100, 48 * 1024, 60 * 1024, 10],
  );
});
