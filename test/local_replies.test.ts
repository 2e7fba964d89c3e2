// Integration: every local reply (NR, UH, UF, UT, UO) through a real proxy and curl, each saying what happened.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { curl } from './support/clients.js';
import {
  bootstrap,
  deadCluster,
  httpListener,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
} from './support/proxy.js';
import { closedPort, startUpstream, type Upstream } from './support/upstream.js';

let proxy: RunningProxy;
let ok: Upstream;
let slow: Upstream;
const held: (() => void)[] = [];

before(async () => {
  ok = await startUpstream('ok');
  slow = await startUpstream('slow', (_req, res) => {
    held.push(() => res.end('late'));
  });
  const dead = await closedPort();
  proxy = await startProxy(
    bootstrap(
      [
        httpListener(
          'main',
          routes([
            { match: { prefix: '/ok' }, route: { cluster: 'ok' } },
            { match: { prefix: '/empty' }, route: { cluster: 'empty' } },
            { match: { prefix: '/dead' }, route: { cluster: 'dead' } },
            { match: { prefix: '/slow' }, route: { cluster: 'slow', timeout: '0.2s' } },
            { match: { prefix: '/tiny' }, route: { cluster: 'tiny', timeout: '2s' } },
          ]),
        ),
      ],
      [
        staticCluster('ok', [ok.port]),
        { name: 'empty', type: 'STATIC', connect_timeout: '1s' },
        deadCluster('dead', dead),
        staticCluster('slow', [slow.port]),
        staticCluster('tiny', [slow.port], {
          circuit_breakers: { thresholds: [{ max_requests: 1, max_pending_requests: 1 }] },
        }),
      ],
    ),
  );
});

after(async () => {
  for (const h of held) h();
  await proxy.close();
  await ok.close();
  await slow.close();
});

test('a routed request reaches its upstream and comes back with the proxy headers', async () => {
  const r = await curl([`${proxy.url()}/ok/path?q=1`]);
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).url, '/ok/path?q=1');
  assert.equal(r.headers.server, 'remora');
  assert.match(r.headers['x-envoy-upstream-service-time'] ?? '', /^\d+$/);
  assert.equal(proxy.stat('cluster.ok.upstream_rq_2xx'), 1);
  assert.equal(proxy.stat('http.ingress.downstream_rq_2xx'), 1);
});

test('no route: 404 NR naming host and path', async () => {
  const r = await curl([`${proxy.url()}/nowhere`]);
  assert.equal(r.status, 404);
  assert.match(r.body, /no route matched host "127\.0\.0\.1:\d+" path "\/nowhere"/);
  assert.equal(r.headers['x-remora-error'], 'REMORA_ERR_NO_ROUTE');
  assert.equal(proxy.stat('http.ingress.no_route'), 1);
});

test('no healthy upstream: 503 UH naming the cluster', async () => {
  const r = await curl([`${proxy.url()}/empty`]);
  assert.equal(r.status, 503);
  assert.match(r.body, /no healthy upstream: cluster "empty"/);
  assert.equal(proxy.stat('cluster.empty.upstream_cx_none_healthy'), 1);
});

test('connect failure: 503 UF naming cluster and host', async () => {
  const r = await curl([`${proxy.url()}/dead`]);
  assert.equal(r.status, 503);
  assert.match(r.body, /connection failure \(cluster "dead" host 127\.0\.0\.254:\d+/);
  assert.equal(r.headers['x-remora-error'], 'REMORA_ERR_UPSTREAM_CONNECT');
  assert.equal(proxy.stat('cluster.dead.upstream_cx_connect_fail'), 1);
});

test('route timeout: 504 UT', async () => {
  const r = await curl([`${proxy.url()}/slow`]);
  assert.equal(r.status, 504);
  assert.match(
    r.body,
    /upstream request timeout: cluster "slow" did not answer within the route timeout of 200 ms/,
  );
  assert.equal(proxy.stat('cluster.slow.upstream_rq_timeout'), 1);
});

test('circuit breaker overflow: 503 UO while max_requests is in use', async () => {
  const first = curl([`${proxy.url()}/tiny`]);
  // Wait until the first request is held by the upstream, then a second one overflows.
  while (proxy.stat('cluster.tiny.upstream_rq_active') < 1) await new Promise((r) => setTimeout(r, 10));
  const second = await curl([`${proxy.url()}/tiny`]);
  assert.equal(second.status, 503);
  assert.match(second.body, /upstream overflow: cluster "tiny"/);
  assert.equal(proxy.stat('cluster.tiny.upstream_rq_pending_overflow'), 1);
  for (const h of held.splice(0)) h();
  assert.equal((await first).status, 200);
});
