// Unit tests of ORIGINAL_DST host selection: header override, port override, sweeping unused hosts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIpPort } from '../../config/address.js';
import type { Host } from './host.js';
import { OriginalDstHosts } from './original_dst_hosts.js';

const CONFIG = {
  cleanupIntervalMs: 60_000,
  useHttpHeader: false,
  httpHeaderName: 'x-envoy-original-dst-host',
  upstreamPortOverride: undefined,
};

test('parseIpPort: IP literals with a port only, unless a default port is given', () => {
  assert.deepEqual(parseIpPort('10.0.0.1:8080'), { address: '10.0.0.1', port: 8080 });
  assert.deepEqual(parseIpPort('[fd00::1]:443'), { address: 'fd00::1', port: 443 });
  assert.deepEqual(parseIpPort('10.0.0.1', 53), { address: '10.0.0.1', port: 53 });
  assert.deepEqual(parseIpPort('fd00::1', 53), { address: 'fd00::1', port: 53 });
  assert.deepEqual(parseIpPort('[fd00::1]', 53), { address: 'fd00::1', port: 53 });
  assert.deepEqual(parseIpPort('[fd00::1]:5353', 53), { address: 'fd00::1', port: 5353 });
  for (const bad of [
    'example.com:80',
    '10.0.0.1',
    '10.0.0.1:0',
    '10.0.0.1:70000',
    'fd00::1:80',
    '[10.0.0.1]:80',
    '',
  ])
    assert.equal(parseIpPort(bad), undefined, bad);
});

test('hosts come from the original destination, once per address, and the same host is reused', () => {
  const changes: (readonly Host[])[] = [];
  const hosts = new OriginalDstHosts(CONFIG, (removed) => changes.push(removed));
  try {
    assert.equal(hosts.choose({}), undefined);
    const a = hosts.choose({ originalDestination: { address: '10.0.0.1', port: 80 } });
    const b = hosts.choose({ originalDestination: { address: '10.0.0.1', port: 80 } });
    assert.equal(a, b);
    assert.equal(a?.key, '10.0.0.1:80');
    assert.equal(hosts.all().length, 1);
    assert.equal(changes.length, 1);
  } finally {
    hosts.close();
  }
});

test('use_http_header overrides the connection, and upstream_port_override the port', () => {
  const hosts = new OriginalDstHosts(
    { ...CONFIG, useHttpHeader: true, httpHeaderName: 'x-dst', upstreamPortOverride: 9443 },
    () => undefined,
  );
  try {
    const header = (v: string | undefined) => (name: string) => (name === 'x-dst' ? v : undefined);
    const dst = { address: '10.0.0.1', port: 80 };
    assert.equal(
      hosts.choose({ originalDestination: dst, header: header('[fd00::2]:81') })?.key,
      '[fd00::2]:9443',
    );
    // An invalid header falls back to the connection's destination.
    assert.equal(hosts.choose({ originalDestination: dst, header: header('nope') })?.key, '10.0.0.1:9443');
  } finally {
    hosts.close();
  }
});

test('a sweep keeps hosts used since the last sweep or busy, and drops the rest', () => {
  const removed: string[] = [];
  const hosts = new OriginalDstHosts(CONFIG, (gone) => removed.push(...gone.map((h) => h.key)));
  try {
    const idle = hosts.choose({ originalDestination: { address: '10.0.0.1', port: 80 } })!;
    const busy = hosts.choose({ originalDestination: { address: '10.0.0.2', port: 80 } })!;
    hosts.sweep(); // both were used in this interval
    assert.deepEqual(removed, []);
    busy.counters.cxActive = 1;
    hosts.sweep();
    assert.deepEqual(removed, [idle.key]);
    assert.deepEqual(hosts.all(), [busy]);
  } finally {
    hosts.close();
  }
});
