// Integration: the upstream connection pool under max_connections — queueing on a busy connection, and a host
// with no connection still getting one (Envoy's rule), so no request waits forever.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bootstrap, endpoint, httpListener, type RunningProxy, routes, startProxy } from './support/proxy.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let proxy: RunningProxy;
let a: Upstream;
let b: Upstream;

before(async () => {
  const slowly = (name: string) =>
    startUpstream(name, (_req, res) => {
      setTimeout(() => res.end(name), 150);
    });
  a = await slowly('a');
  b = await slowly('b');
  const cluster = (name: string, ports: number[]) => ({
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    lb_policy: 'ROUND_ROBIN',
    circuit_breakers: { thresholds: [{ max_connections: 1 }] },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: ports.map((p) => endpoint(p)) }] },
  });
  proxy = await startProxy(
    bootstrap(
      [
        httpListener(
          'main',
          routes([
            { match: { prefix: '/one' }, route: { cluster: 'one' } },
            { match: { prefix: '/two' }, route: { cluster: 'two' } },
          ]),
        ),
      ],
      [cluster('one', [a.port]), cluster('two', [a.port, b.port])],
    ),
  );
});

after(async () => {
  await proxy.close();
  await a.close();
  await b.close();
});

test('at max_connections a second request waits for the busy connection, then reuses it', async () => {
  const [r1, r2] = await Promise.all([fetch(`${proxy.url()}/one`), fetch(`${proxy.url()}/one`)]);
  assert.deepEqual([r1.status, r2.status], [200, 200]);
  await Promise.all([r1.text(), r2.text()]);
  assert.equal(proxy.stat('cluster.one.upstream_cx_total'), 1);
  assert.ok(proxy.stat('cluster.one.upstream_cx_overflow') >= 1);
});

test('a host with no connection gets one even when the cluster is at max_connections', async () => {
  const answers = await Promise.all(
    [0, 1].map(async () => (await fetch(`${proxy.url()}/two`, { signal: AbortSignal.timeout(5000) })).text()),
  );
  assert.deepEqual(answers.sort(), ['a', 'b']);
});
