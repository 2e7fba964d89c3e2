import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closeRandomSource, randomFill } from './random_bytes.js';

test('randomFill fills every byte of a buffer larger than one read of the device may return', () => {
  // 64 KiB of zeros left untouched anywhere would show as a run of zeros; random bytes have none this long.
  const buf = randomFill(new Uint8Array(64 * 1024));
  let run = 0;
  let longest = 0;
  for (const b of buf) {
    run = b === 0 ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  assert.ok(longest < 8, `a run of ${longest} zero bytes`);
  const zeros = buf.filter((b) => b === 0).length;
  assert.ok(zeros > 100 && zeros < 400, `${zeros} zero bytes in 65536 (about 256 expected)`);
});

test('two fills differ, and a fill after closeRandomSource opens the device again', () => {
  const a = Buffer.from(randomFill(new Uint8Array(32)));
  closeRandomSource();
  const b = randomFill(Buffer.alloc(32));
  assert.ok(Buffer.isBuffer(b), 'the buffer given is the one returned');
  assert.notDeepEqual(a, b);
  closeRandomSource();
});
