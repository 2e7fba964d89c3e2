// Unit tests: fields Remora does not implement are accepted only at the value that means "off".

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { translateCluster } from './bootstrap.js';

const cluster = (extra: Record<string, unknown>) => ({ name: 'c', type: 'STRICT_DNS', ...extra });

test('respect_dns_ttl: false is accepted, true is an error naming the field', () => {
  assert.equal(translateCluster(cluster({ respect_dns_ttl: false }), 'c').ok, true);
  const r = translateCluster(cluster({ respect_dns_ttl: true }), 'c');
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.errors[0]!.path, 'c.respect_dns_ttl');
});
