// ClusterLoadAssignment.policy through real proxies: drop_overloads for HTTP and TCP (503 / closed, flag DO, the
// stat, the access log), and over ADS: DEGRADED endpoints as their healthy peers come and go, and
// endpoint_stale_after removing endpoints a control plane stops confirming.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ProxyServer } from '../src/dataplane/server.js';
import { until } from './support/child.js';
import { curl } from './support/clients.js';
import {
  bootstrap,
  httpListener,
  type Json,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
  tcpListener,
} from './support/proxy.js';
import { startTcpServer, startUpstream, type Upstream } from './support/upstream.js';
import {
  adsBootstrap,
  type ControlPlane,
  edsCluster,
  get,
  type Resources,
  rdsListener,
  startControlPlane,
  startXdsProxy,
} from './support/xds.js';

const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const LOG_FORMAT = '%RESPONSE_FLAGS% %RESPONSE_CODE% %UPSTREAM_CLUSTER% %RESPONSE_CODE_DETAILS%\n';

const dropPolicy = (category: string, numerator: number): Json => ({
  drop_overloads: [{ category, drop_percentage: { numerator, denominator: 'HUNDRED' } }],
});

/** A STATIC cluster over `ports` whose load_assignment carries `policy`. */
function withPolicy(name: string, ports: number[], policy: Json): Json {
  const c = staticCluster(name, ports);
  return { ...c, load_assignment: { ...(c.load_assignment as Json), policy } };
}

describe('policy.drop_overloads', () => {
  let dir: string;
  let up: Upstream;
  let echo: { port: number; accepted: () => number; close(): Promise<void> };
  let proxy: RunningProxy;

  const log = (name: string): string[] => {
    const path = join(dir, name);
    return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
  };
  const accessLog = (name: string): Json[] => [
    {
      name: 'envoy.access_loggers.file',
      typed_config: { '@type': FILE_LOG, path: join(dir, name), format: LOG_FORMAT },
    },
  ];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'remora-drop-'));
    up = await startUpstream('up');
    let accepted = 0;
    const server = await startTcpServer((s) => {
      accepted++;
      s.pipe(s);
    });
    echo = { port: server.port, accepted: () => accepted, close: () => server.close() };
    proxy = await startProxy(
      bootstrap(
        [
          httpListener(
            'web',
            routes([
              { match: { prefix: '/all' }, route: { cluster: 'drop_all' } },
              { match: { prefix: '/none' }, route: { cluster: 'drop_none' } },
            ]),
            { access_log: accessLog('http.log') },
          ),
          tcpListener('tcp_all', 'tcp_all', { access_log: accessLog('tcp_all.log') }),
          tcpListener('tcp_none', 'tcp_none', { access_log: accessLog('tcp_none.log') }),
        ],
        [
          withPolicy('drop_all', [up.port], dropPolicy('throttle', 100)),
          withPolicy('drop_none', [up.port], dropPolicy('lb', 0)),
          withPolicy('tcp_all', [echo.port], dropPolicy('throttle', 100)),
          withPolicy('tcp_none', [echo.port], dropPolicy('lb', 0)),
        ],
      ),
    );
  });

  after(async () => {
    await proxy?.close();
    await up?.close();
    await echo?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('100%: every HTTP request gets 503 drop overload (flag DO) before any upstream is chosen', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await curl([`${proxy.url('web')}/all/${i}`]);
      assert.equal(r.status, 503);
      assert.equal(r.headers['x-envoy-drop-overload'], 'true');
      assert.equal(r.headers['x-remora-error'], 'REMORA_ERR_DROP_OVERLOAD');
      assert.match(
        r.body,
        /^drop overload: cluster "drop_all" drops 100% of requests \(drop_overloads category "throttle"\)/,
      );
    }
    assert.equal(up.requests.length, 0);
    assert.equal(proxy.stat('cluster.drop_all.upstream_rq_drop_overload'), 10);
    assert.equal(proxy.stat('cluster.drop_all.upstream_rq_total'), 0);
    await until('ten access log lines', () => log('http.log').length >= 10);
    assert.deepEqual(new Set(log('http.log')), new Set(['DO 503 drop_all drop_overload']));
  });

  it('0%: no request is dropped', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await curl([`${proxy.url('web')}/none/${i}`]);
      assert.equal(r.status, 200);
    }
    assert.equal(up.requests.length, 10);
    assert.equal(proxy.stat('cluster.drop_none.upstream_rq_drop_overload'), 0);
    await until('twenty access log lines', () => log('http.log').length >= 20);
    assert.equal(log('http.log').filter((l) => l === '- 200 drop_none via_upstream').length, 10);
  });

  it('TCP: a dropped connection is closed before any upstream connection, with flag DO', async () => {
    for (let i = 0; i < 3; i++) {
      const got = await exchange(proxy.port('tcp_all'), 'hello');
      assert.equal(got, '', 'closed without a byte');
    }
    assert.equal(echo.accepted(), 0);
    assert.equal(proxy.stat('cluster.tcp_all.upstream_rq_drop_overload'), 3);
    assert.equal(proxy.stat('cluster.tcp_all.upstream_cx_total'), 0);
    await until('three TCP access log lines', () => log('tcp_all.log').length >= 3);
    assert.deepEqual(new Set(log('tcp_all.log')), new Set(['DO 0 tcp_all -']));
    assert.equal(await exchange(proxy.port('tcp_none'), 'hello'), 'hello');
    assert.equal(echo.accepted(), 1);
    assert.equal(proxy.stat('cluster.tcp_none.upstream_rq_drop_overload'), 0);
  });
});

/** Writes `data`, half-closes, and collects what comes back until the proxy closes the connection. */
function exchange(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: false }, () => s.end(data));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('close', () => resolve(Buffer.concat(chunks).toString()));
    s.on('error', (err: NodeJS.ErrnoException) => {
      // A proxy that closes at once may reset a connection whose bytes it never read.
      if (err.code === 'ECONNRESET') return;
      reject(err);
    });
  });
}

describe('over ADS: DEGRADED endpoints and endpoint_stale_after', () => {
  let healthy: Upstream;
  let degraded: Upstream;
  let fleeting: Upstream;
  let cp: ControlPlane;
  let proxy: ProxyServer;

  const port = () => proxy.listenerAddress('web')!.port;
  const counter = (name: string): number => {
    for (const c of proxy.stats.allCounters()) if (c.name === name) return c.value;
    throw new Error(`no counter ${name}`);
  };

  /** The service's assignment: the healthy upstream with `status`, the degraded one DEGRADED; overprovisioned 2x. */
  const svc = (status: string): Json => ({
    cluster_name: 'svc',
    endpoints: [
      {
        locality: { region: 'local' },
        load_balancing_weight: 1,
        lb_endpoints: [
          { endpoint: address(healthy.port), health_status: status },
          { endpoint: address(degraded.port), health_status: 'DEGRADED' },
        ],
      },
    ],
    policy: { overprovisioning_factor: 200 },
  });
  const fleetingAssignment = (staleAfter: string): Json => ({
    cluster_name: 'fleeting',
    endpoints: [
      {
        locality: { region: 'local' },
        load_balancing_weight: 1,
        lb_endpoints: [{ endpoint: address(fleeting.port) }],
      },
    ],
    policy: { endpoint_stale_after: staleAfter },
  });
  const resources = (svcStatus: string, staleAfter: string): Resources => ({
    clusters: [edsCluster('svc'), edsCluster('fleeting')],
    endpoints: [svc(svcStatus), fleetingAssignment(staleAfter)],
    listeners: [rdsListener('web', 'web-routes')],
    routes: [
      {
        name: 'web-routes',
        virtual_hosts: [
          {
            name: 'all',
            domains: ['*'],
            routes: [
              { match: { prefix: '/svc' }, route: { cluster: 'svc' } },
              { match: { prefix: '/fleeting' }, route: { cluster: 'fleeting' } },
            ],
          },
        ],
      },
    ],
  });

  /** Who answered `n` requests to `path`, as "status upstream" counts. */
  async function answers(path: string, n: number): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const r = await get(port(), path);
      const key = `${r.status} ${r.upstream ?? '-'}`;
      out[key] = (out[key] ?? 0) + 1;
    }
    return out;
  }

  before(async () => {
    healthy = await startUpstream('healthy');
    degraded = await startUpstream('degraded');
    fleeting = await startUpstream('fleeting');
    // Long enough for the DEGRADED tests; the stale test then shortens it.
    cp = await startControlPlane(resources('HEALTHY', '3600s'));
    proxy = await startXdsProxy(adsBootstrap([cp.port]));
    await proxy.live;
  });

  after(async () => {
    await proxy?.close();
    await cp?.close();
    await Promise.all([healthy, degraded, fleeting].map((u) => u?.close()));
  });

  it('a DEGRADED host gets no requests while the healthy one is up, and all of them once it is marked unhealthy', async () => {
    assert.deepEqual(await answers('/svc', 12), { '200 healthy': 12 });
    cp.set(resources('UNHEALTHY', '3600s'));
    await until(
      'the degraded host to answer',
      async () => (await get(port(), '/svc')).upstream === 'degraded',
    );
    assert.deepEqual(await answers('/svc', 12), { '200 degraded': 12 });
    cp.set(resources('HEALTHY', '3600s'));
    await until(
      'the healthy host to answer again',
      async () => (await get(port(), '/svc')).upstream === 'healthy',
    );
    assert.deepEqual(await answers('/svc', 12), { '200 healthy': 12 });
    assert.equal(counter('cluster.svc.lb_healthy_panic'), 0);
  });

  it('endpoint_stale_after: unconfirmed endpoints go (503 no healthy upstream), a fresh assignment restores them', async () => {
    assert.deepEqual(await answers('/fleeting', 3), { '200 fleeting': 3 });
    const received = counter('cluster.fleeting.assignment_timeout_received');
    assert.ok(received >= 1);
    // The control plane sends an assignment that expires soon, and nothing after it.
    cp.set(resources('HEALTHY', '0.3s'));
    await until('the endpoints to go stale', async () => (await get(port(), '/fleeting')).status === 503);
    const r = await get(port(), '/fleeting');
    assert.equal(r.status, 503);
    assert.match(
      r.body,
      /^no healthy upstream: cluster "fleeting" has no host to send to: its endpoints went stale/,
    );
    assert.equal(counter('cluster.fleeting.assignment_stale'), 1);
    assert.equal(counter('cluster.fleeting.assignment_timeout_received'), received + 1);
    assert.ok(counter('cluster.fleeting.upstream_cx_none_healthy') >= 2);
    // The other service is not affected.
    assert.deepEqual(await answers('/svc', 3), { '200 healthy': 3 });
    // A fresh assignment restores service and re-arms the timer.
    cp.set(resources('HEALTHY', '3600s'));
    await until('the endpoints to come back', async () => (await get(port(), '/fleeting')).status === 200);
    assert.deepEqual(await answers('/fleeting', 3), { '200 fleeting': 3 });
    assert.equal(counter('cluster.fleeting.assignment_timeout_received'), received + 2);
    assert.equal(counter('cluster.fleeting.assignment_stale'), 1);
  });
});

function address(port: number): Json {
  return { address: { socket_address: { address: '127.0.0.1', port_value: port } } };
}
