// lb_endpoints[].health_status: endpoints a control plane marks UNHEALTHY / DRAINING / TIMEOUT get no traffic
// while enough of their level is healthy (Envoy's 50 % panic threshold), and share it when not; DEGRADED ones get
// only what the healthy ones cannot carry.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { curl } from './support/clients.js';
import { bootstrap, endpoint, httpListener, type RunningProxy, routes, startProxy } from './support/proxy.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let healthy: Upstream;
let healthy2: Upstream;
let draining: Upstream;
let unhealthy: Upstream;
let healthy3: Upstream;
let degraded: Upstream;
let proxy: RunningProxy;

function cluster(name: string, eps: [Upstream, string][], policy?: Record<string, unknown>) {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [
        { lb_endpoints: eps.map(([u, status]) => ({ ...endpoint(u.port), health_status: status })) },
      ],
      ...(policy && { policy }),
    },
  };
}

before(async () => {
  healthy = await startUpstream('healthy');
  healthy2 = await startUpstream('healthy2');
  draining = await startUpstream('draining');
  unhealthy = await startUpstream('unhealthy');
  healthy3 = await startUpstream('healthy3');
  degraded = await startUpstream('degraded');
  const paths = ['mixed', 'timeouts', 'unhealthy', 'none', 'spare', 'fallback', 'overprovisioned'];
  proxy = await startProxy(
    bootstrap(
      [httpListener('l', routes(paths.map((p) => ({ match: { prefix: `/${p}` }, route: { cluster: p } }))))],
      [
        cluster('mixed', [
          [healthy, 'HEALTHY'],
          [healthy2, 'UNKNOWN'],
          [draining, 'DRAINING'],
        ]),
        cluster('timeouts', [
          [healthy, 'HEALTHY'],
          [healthy2, 'HEALTHY'],
          [unhealthy, 'TIMEOUT'],
        ]),
        cluster('unhealthy', [
          [healthy, 'HEALTHY'],
          [healthy2, 'HEALTHY'],
          [unhealthy, 'UNHEALTHY'],
        ]),
        cluster('none', [[draining, 'DRAINING']]),
        // 75 % healthy: times 1.4 the healthy hosts carry it all.
        cluster('spare', [
          [healthy, 'HEALTHY'],
          [healthy2, 'HEALTHY'],
          [healthy3, 'HEALTHY'],
          [degraded, 'DEGRADED'],
        ]),
        // No healthy host: the degraded one carries it all (50 % available: no panic), the unhealthy one nothing.
        cluster('fallback', [
          [unhealthy, 'UNHEALTHY'],
          [degraded, 'DEGRADED'],
        ]),
        // 50 % healthy, but overprovisioned twice: still all on the healthy host.
        cluster(
          'overprovisioned',
          [
            [healthy, 'HEALTHY'],
            [degraded, 'DEGRADED'],
          ],
          { overprovisioning_factor: 200 },
        ),
      ],
    ),
  );
});

after(async () => {
  await proxy.close();
  await Promise.all([healthy, healthy2, draining, unhealthy, healthy3, degraded].map((u) => u.close()));
});

test('DRAINING, TIMEOUT and UNHEALTHY endpoints get no requests while most of their level is healthy', async () => {
  for (const path of ['mixed', 'timeouts', 'unhealthy']) {
    for (let i = 0; i < 8; i++) {
      const r = await curl(['-sS', `${proxy.url()}/${path}`]);
      assert.equal(r.status, 200);
    }
  }
  assert.equal(healthy.requests.length + healthy2.requests.length, 24);
  assert.ok(healthy.requests.length > 0 && healthy2.requests.length > 0);
  assert.equal(draining.requests.length, 0);
  assert.equal(unhealthy.requests.length, 0);
  assert.equal(proxy.stat('cluster.mixed.membership_healthy'), 2);
  assert.equal(proxy.stat('cluster.mixed.membership_total'), 3);
  const clusters = await curl(['-sS', `${proxy.adminUrl}/clusters`]);
  assert.match(clusters.body, /mixed::127\.0\.0\.1:\d+::health_flags::\/failed_eds_health/);
});

test('with no healthy endpoint left (panic), the others still serve rather than fail every request', async () => {
  const r = await curl(['-sS', `${proxy.url()}/none`]);
  assert.equal(r.status, 200);
  assert.equal(draining.requests.length, 1);
  assert.equal(proxy.stat('cluster.none.lb_healthy_panic'), 1);
});

test('a DEGRADED endpoint gets no requests while the healthy ones can carry the load', async () => {
  const before = healthy.requests.length + healthy2.requests.length + healthy3.requests.length;
  for (const path of ['spare', 'overprovisioned']) {
    for (let i = 0; i < 12; i++) {
      const r = await curl(['-sS', `${proxy.url()}/${path}`]);
      assert.equal(r.status, 200);
    }
  }
  assert.equal(healthy.requests.length + healthy2.requests.length + healthy3.requests.length - before, 24);
  assert.equal(degraded.requests.length, 0);
  assert.equal(proxy.stat('cluster.spare.membership_healthy'), 3);
  assert.equal(proxy.stat('cluster.spare.membership_degraded'), 1);
  assert.equal(proxy.stat('cluster.spare.lb_healthy_panic'), 0);
  const clusters = await curl(['-sS', `${proxy.adminUrl}/clusters`]);
  assert.match(clusters.body, /spare::127\.0\.0\.1:\d+::health_flags::\/degraded_eds_health/);
  const json = JSON.parse((await curl(['-sS', `${proxy.adminUrl}/clusters?format=json`])).body);
  const spare = json.cluster_statuses.find((c: { name: string }) => c.name === 'spare');
  assert.deepEqual(
    spare.host_statuses.map(
      (h: { health_status: { eds_health_status: string } }) => h.health_status.eds_health_status,
    ),
    ['HEALTHY', 'HEALTHY', 'HEALTHY', 'DEGRADED'],
  );
});

test('with no healthy endpoint a DEGRADED one takes the load, and an UNHEALTHY one still none', async () => {
  const seenUnhealthy = unhealthy.requests.length;
  for (let i = 0; i < 8; i++) {
    const r = await curl(['-sS', `${proxy.url()}/fallback`]);
    assert.equal(r.status, 200);
  }
  assert.equal(degraded.requests.length, 8);
  assert.equal(unhealthy.requests.length, seenUnhealthy);
  assert.equal(proxy.stat('cluster.fallback.lb_healthy_panic'), 0);
});
