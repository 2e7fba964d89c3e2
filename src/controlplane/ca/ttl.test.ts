// Lifetimes on the command line: "24h", "1h30m", "90s" read; anything else not.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatLifetime, parseLifetime } from './ttl.js';

test('lifetimes are read and written back', () => {
  assert.equal(parseLifetime('24h'), 24 * 3600_000);
  assert.equal(parseLifetime('1h30m'), 90 * 60_000);
  assert.equal(parseLifetime('90s'), 90_000);
  assert.equal(parseLifetime('1.5m'), 90_000);
  for (const bad of ['', '24', 'h', '-1h', '1d', '1h 30m', '1e3s'])
    assert.equal(parseLifetime(bad), undefined, bad);
  assert.equal(formatLifetime(24 * 3600_000), '24h');
  assert.equal(formatLifetime(90 * 60_000), '1h30m');
  assert.equal(formatLifetime(90_000), '1m30s');
  assert.equal(formatLifetime(0), '0s');
});
