// Tests the shared read buffer: a view of it is copied before anyone keeps it; other bytes pass as they are.

import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { copyIfShared, readBuffer, readIntoSharedBuffer, relayWrite } from './read_buffer.js';

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

/** A Writable that keeps each write's bytes and completes a write only when told to. */
function heldWrites(): { sink: Writable; written: Buffer[]; complete: () => void } {
  const written: Buffer[] = [];
  const pending: (() => void)[] = [];
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk);
      pending.push(() => cb());
    },
  });
  return { sink, written, complete: () => pending.shift()?.() };
}

test('relayWrite: a streaming read buffer is reused only after its write completed; shared bytes go as a copy', async () => {
  const { sink, written, complete } = heldWrites();
  const opts = readIntoSharedBuffer((chunk) => relayWrite(sink, chunk));
  const buffer = opts.buffer as () => Buffer;
  const callback = opts.callback as (n: number, buf: Buffer) => boolean;
  const same = (a: Buffer, b: Buffer): boolean => a.buffer === b.buffer;
  callback(40 * 1024, buffer()); // streaming from now on: the next read gets a buffer of its own
  assert.ok(!same(written[0]!, readBuffer()), 'a view of the shared buffer was written as it is');
  complete();
  const first = buffer();
  callback(50 * 1024, first);
  assert.ok(same(written[1]!, first), 'a streaming read was copied');
  const second = buffer();
  assert.ok(!same(second, first), 'a buffer still being written was handed out again');
  complete(); // the write of `first` completes: it goes back for reuse
  await new Promise((r) => setImmediate(r));
  callback(50 * 1024, second);
  assert.ok(same(buffer(), first), 'a written buffer was not reused');
  complete();
  sink.destroy();
});
