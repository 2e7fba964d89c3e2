// Integration: HCM request_timeout bounds how long the whole request may take to arrive, not the response.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { rawExchange } from './support/clients.js';
import {
  bootstrap,
  httpListener,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
} from './support/proxy.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let proxy: RunningProxy;
let slow: Upstream;

before(async () => {
  slow = await startUpstream('slow', (_req, res, body) => {
    setTimeout(() => res.end(`got ${body.length} bytes`), 600);
  });
  proxy = await startProxy(
    bootstrap(
      [
        httpListener('main', routes([{ match: { prefix: '/' }, route: { cluster: 'slow' } }]), {
          request_timeout: '0.3s',
        }),
      ],
      [staticCluster('slow', [slow.port])],
    ),
  );
});

after(async () => {
  await proxy.close();
  await slow.close();
});

test('a body that stalls past request_timeout gets 408 naming the setting', async () => {
  const raw = await rawExchange(
    proxy.port(),
    'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc',
    3000,
  );
  assert.match(raw, /^HTTP\/1\.1 408 /);
  assert.match(raw, /request timeout: the whole request was not received within request_timeout \(300 ms\)/);
  assert.match(raw, /connection: close/i);
  assert.equal(proxy.stat('http.ingress.downstream_rq_timeout'), 1);
});

test('a complete request may wait longer than request_timeout for its response', async () => {
  const raw = await rawExchange(
    proxy.port(),
    'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc',
    3000,
  );
  assert.match(raw, /^HTTP\/1\.1 200 /);
  assert.match(raw, /got 3 bytes/);
});
