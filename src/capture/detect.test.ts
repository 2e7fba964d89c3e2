// Tests of IPv6 detection from /proc/net/if_inet6: addresses present, none, or no IPv6 in the kernel at all.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ipv6InUse, ipv6Supported } from './detect.js';

const dir = mkdtempSync(join(tmpdir(), 'remora-detect-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('IPv6 is in use when the namespace has an address, supported when the kernel has IPv6', () => {
  const withLo = join(dir, 'lo');
  writeFileSync(withLo, '00000000000000000000000000000001 01 80 10 80       lo\n');
  const empty = join(dir, 'empty');
  writeFileSync(empty, '');
  const absent = join(dir, 'absent');
  assert.equal(ipv6InUse(withLo), true);
  assert.equal(ipv6InUse(empty), false);
  assert.equal(ipv6InUse(absent), false);
  assert.equal(ipv6Supported(empty), true);
  assert.equal(ipv6Supported(absent), false);
});
