// lb_endpoints[].health_status: endpoints a control plane marks UNHEALTHY / DRAINING / TIMEOUT get no traffic
// while enough of their level is healthy (Envoy's 50 % panic threshold), and share it when not.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { curl } from './support/clients.js';
import { bootstrap, endpoint, httpListener, type RunningProxy, routes, startProxy } from './support/proxy.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let healthy: Upstream;
let healthy2: Upstream;
let draining: Upstream;
let unhealthy: Upstream;
let proxy: RunningProxy;

function cluster(name: string, eps: [Upstream, string][]) {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [
        { lb_endpoints: eps.map(([u, status]) => ({ ...endpoint(u.port), health_status: status })) },
      ],
    },
  };
}

before(async () => {
  healthy = await startUpstream('healthy');
  healthy2 = await startUpstream('healthy2');
  draining = await startUpstream('draining');
  unhealthy = await startUpstream('unhealthy');
  const paths = ['mixed', 'timeouts', 'unhealthy', 'none'];
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
      ],
    ),
  );
});

after(async () => {
  await proxy.close();
  await Promise.all([healthy.close(), healthy2.close(), draining.close(), unhealthy.close()]);
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
});
