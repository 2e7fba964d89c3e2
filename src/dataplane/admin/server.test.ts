// Tests the admin server over real sockets: every endpoint, Envoy's POST-only rule, and bad requests.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Bootstrap } from '../../config/model.js';
import { StatsStore, scopes } from '../observe/stats.js';
import { AdminServer, splitUrl } from './server.js';
import type { AdminTarget, ClusterStatus, ServerState } from './target.js';

const RAW_BOOTSTRAP = {
  node: { id: 'sidecar~10.0.0.9~web-1.default~default.svc.cluster.local', cluster: 'web' },
  admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  static_resources: {
    listeners: [
      {
        name: 'ingress',
        address: { socket_address: { address: '0.0.0.0', port_value: 10000 } },
        filter_chains: [
          {
            filters: [
              {
                name: 'envoy.filters.network.http_connection_manager',
                typed_config: {
                  '@type':
                    'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                  stat_prefix: 'ingress',
                  route_config: { name: 'local_route', virtual_hosts: [{ name: 'all', domains: ['*'] }] },
                },
              },
            ],
          },
        ],
      },
    ],
    clusters: [
      {
        name: 'web',
        type: 'STATIC',
        load_assignment: { cluster_name: 'web', endpoints: [] },
        transport_socket: {
          typed_config: { common_tls_context: { tls_certificates: [{ private_key: 'KEY' }] } },
        },
      },
      { name: 'api', type: 'STRICT_DNS' },
    ],
  },
};

const CLUSTERS: ClusterStatus[] = [
  {
    name: 'web',
    type: 'STATIC',
    lbPolicy: 'ROUND_ROBIN',
    circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
    hosts: [
      {
        address: '10.0.0.1:8080',
        weight: 1,
        priority: 0,
        healthFlags: 'healthy',
        healthy: true,
        activeRequests: 2,
        activeConnections: 1,
        totalRequests: 10,
        errorRequests: 1,
        successRequests: 9,
        connectFailures: 0,
      },
      {
        address: '[fd00::2]:8080',
        weight: 3,
        priority: 1,
        healthFlags: '/failed_outlier_check',
        healthy: false,
        activeRequests: 0,
        activeConnections: 0,
        totalRequests: 0,
        errorRequests: 0,
        successRequests: 0,
        connectFailures: 4,
      },
    ],
  },
];

/** An AdminTarget over a real StatsStore that records what the server asked of it. */
function makeTarget() {
  const calls: string[] = [];
  let state: ServerState = 'LIVE';
  let failed = false;
  let level = 'info';
  const stats = new StatsStore();
  stats.counter('cluster.web.upstream_rq_total', scopes.cluster('web'), 'upstream_rq_total').inc(3);
  stats.gauge('server.live').set(1);
  stats.histogram('cluster.web.upstream_rq_time', scopes.cluster('web'), 'upstream_rq_time').record(4);
  const target: AdminTarget = {
    stats,
    startTime: Date.now() - 5000,
    state: () => state,
    bootstrap: () =>
      ({
        node: { id: 'sidecar-1', cluster: 'web', metadata: { ISTIO_VERSION: '1.0' } },
      }) as unknown as Bootstrap,
    rawBootstrap: () => RAW_BOOTSTRAP,
    clusters: () => CLUSTERS,
    listeners: () => [{ name: 'ingress', address: '0.0.0.0:10000' }],
    drainListeners: (o) => calls.push(`drain graceful=${o.graceful} inbound=${o.inboundOnly}`),
    setHealthcheckFailed: (f) => {
      failed = f;
      calls.push(`healthcheck failed=${f}`);
    },
    healthcheckFailed: () => failed,
    setLogLevel: (l) => {
      if (!['trace', 'debug', 'info', 'warning', 'warn', 'error', 'critical', 'off'].includes(l))
        return false;
      level = l;
      return true;
    },
    logLevel: () => level,
    quit: () => calls.push('quit'),
  };
  return { target, calls, setState: (s: ServerState) => (state = s) };
}

describe('AdminServer', () => {
  let server: AdminServer;
  let base: string;
  let fake: ReturnType<typeof makeTarget>;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'remora-admin-'));
    fake = makeTarget();
    server = await AdminServer.start({ address: '127.0.0.1', port: 0 }, fake.target, {
      accessLogPath: join(dir, 'admin.log'),
    });
    base = `http://127.0.0.1:${server.address.port}`;
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    fake.calls.length = 0;
    fake.setState('LIVE');
  });

  const get = (path: string, init?: RequestInit) => fetch(base + path, init);
  const post = (path: string) => fetch(base + path, { method: 'POST' });

  it('binds an ephemeral port', () => {
    assert.equal(server.address.address, '127.0.0.1');
    assert.ok(server.address.port > 0);
  });

  it('GET / lists the endpoints as HTML', async () => {
    const res = await get('/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /text\/html/);
    const body = await res.text();
    assert.match(body, /href="\/stats"/);
    assert.match(body, /action="\/quitquitquit" method="post"/);
  });

  it('GET /help lists the endpoints as text', async () => {
    const body = await (await get('/help')).text();
    assert.match(body, /^admin commands are:\n/);
    assert.match(body, /\/healthcheck\/fail \(POST\): /);
  });

  it('/ready answers by server state and health check', async () => {
    let res = await get('/ready');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'LIVE\n');
    fake.setState('DRAINING');
    res = await get('/ready');
    assert.equal(res.status, 503);
    assert.equal(await res.text(), 'DRAINING\n');
    fake.setState('PRE_INITIALIZING');
    assert.equal(await (await get('/ready')).text(), 'PRE_INITIALIZING\n');
    fake.setState('LIVE');
    assert.equal((await post('/healthcheck/fail')).status, 200);
    assert.equal((await get('/ready')).status, 503);
    assert.equal(await (await post('/healthcheck/ok')).text(), 'OK\n');
    assert.equal((await get('/ready')).status, 200);
    assert.deepEqual(fake.calls, ['healthcheck failed=true', 'healthcheck failed=false']);
  });

  it('/server_info reports version, state, uptime and node', async () => {
    const info = (await (await get('/server_info')).json()) as Record<string, unknown>;
    assert.match(info.version as string, /^remora\/\d+\.\d+\.\d+/);
    assert.equal(info.state, 'LIVE');
    assert.match(info.uptime_current_epoch as string, /^\d+s$/);
    assert.ok(Number.parseInt(info.uptime_all_epochs as string, 10) >= 5);
    assert.deepEqual(info.command_line_options, {});
    assert.equal((info.node as { id: string }).id, 'sidecar-1');
  });

  it('/stats in text, filtered, used-only and JSON', async () => {
    const res = await get('/stats');
    assert.match(res.headers.get('content-type')!, /text\/plain/);
    const body = await res.text();
    assert.match(body, /^cluster\.web\.upstream_rq_total: 3$/m);
    assert.match(body, /^cluster\.web\.upstream_rq_time: P0\(/m);
    assert.equal(await (await get('/stats?filter=^server%5C.')).text(), 'server.live: 1\n');
    assert.ok(!(await (await get('/stats?usedonly&filter=live')).text()).includes('upstream'));
    const json = (await (await get('/stats?format=json')).json()) as {
      stats: { name: string; value: number }[];
    };
    assert.ok(json.stats.some((s) => s.name === 'server.live' && s.value === 1));
    assert.equal((await get('/stats?filter=(')).status, 400);
    assert.equal((await get('/stats?format=xml')).status, 400);
    assert.match(await (await get('/stats?format=prometheus')).text(), /# TYPE envoy_server_live gauge/);
  });

  it('/stats/prometheus', async () => {
    const res = await get('/stats/prometheus');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /version=0\.0\.4/);
    const body = await res.text();
    assert.match(body, /^envoy_cluster_upstream_rq_total\{envoy_cluster_name="web"\} 3$/m);
    for (const line of body.trimEnd().split('\n'))
      assert.match(line, /^(#.*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+)$/);
  });

  it('/config_dump in Envoy shape, with resource, mask and name_regex', async () => {
    const dump = (await (await get('/config_dump')).json()) as { configs: Record<string, unknown>[] };
    assert.deepEqual(
      dump.configs.map((c) => c['@type']),
      [
        'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump',
        'type.googleapis.com/envoy.admin.v3.ClustersConfigDump',
        'type.googleapis.com/envoy.admin.v3.ListenersConfigDump',
        'type.googleapis.com/envoy.admin.v3.RoutesConfigDump',
        'type.googleapis.com/envoy.admin.v3.SecretsConfigDump',
      ],
    );
    const bootstrap = dump.configs[0]!.bootstrap as typeof RAW_BOOTSTRAP;
    assert.equal(bootstrap.node.cluster, 'web');
    // Secrets never leave the process.
    assert.ok(!JSON.stringify(dump).includes('KEY'));
    assert.match(JSON.stringify(dump), /\[redacted\]/);
    const clusters = dump.configs[1]!.static_clusters as { cluster: { name: string; '@type': string } }[];
    assert.deepEqual(
      clusters.map((c) => c.cluster.name),
      ['web', 'api'],
    );
    assert.equal(clusters[0]!.cluster['@type'], 'type.googleapis.com/envoy.config.cluster.v3.Cluster');
    const listeners = dump.configs[2]!.static_listeners as { listener: { name: string } }[];
    assert.equal(listeners[0]!.listener.name, 'ingress');
    const routes = dump.configs[3]!.static_route_configs as { route_config: { name: string } }[];
    assert.equal(routes[0]!.route_config.name, 'local_route');

    const one = (await (
      await get('/config_dump?resource=static_clusters&mask=cluster.name&name_regex=^w')
    ).json()) as {
      configs: unknown[];
    };
    assert.deepEqual(one.configs, [
      {
        '@type': 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster',
        cluster: { '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster', name: 'web' },
      },
    ]);
    const masked = (await (await get('/config_dump?mask=static_listeners')).json()) as {
      configs: Record<string, unknown>[];
    };
    assert.deepEqual(Object.keys(masked.configs[0]!), ['@type']);
    assert.deepEqual(Object.keys(masked.configs[2]!), ['@type', 'static_listeners']);
    const eds = (await (await get('/config_dump?include_eds')).json()) as {
      configs: Record<string, unknown>[];
    };
    assert.ok(
      eds.configs.some((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.EndpointsConfigDump'),
    );
    assert.equal((await get('/config_dump?resource=nope')).status, 404);
    assert.equal((await get('/config_dump?resource=bootstrap')).status, 400);
    assert.equal((await get('/config_dump?name_regex=[')).status, 400);
  });

  it('/clusters in Envoy text and JSON', async () => {
    const body = await (await get('/clusters')).text();
    const lines = body.trimEnd().split('\n');
    for (const want of [
      'web::default_priority::max_connections::1024',
      'web::default_priority::max_retries::3',
      'web::10.0.0.1:8080::cx_active::1',
      'web::10.0.0.1:8080::rq_active::2',
      'web::10.0.0.1:8080::rq_total::10',
      'web::10.0.0.1:8080::rq_error::1',
      'web::10.0.0.1:8080::rq_success::9',
      'web::10.0.0.1:8080::cx_connect_fail::0',
      'web::10.0.0.1:8080::health_flags::healthy',
      'web::10.0.0.1:8080::weight::1',
      'web::10.0.0.1:8080::priority::0',
      'web::[fd00::2]:8080::health_flags::/failed_outlier_check',
      'web::[fd00::2]:8080::cx_connect_fail::4',
    ]) {
      assert.ok(lines.includes(want), want);
    }
    const json = (await (await get('/clusters?format=json')).json()) as {
      cluster_statuses: {
        name: string;
        host_statuses: { address: unknown; health_status: Record<string, unknown> }[];
      }[];
    };
    assert.equal(json.cluster_statuses[0]!.name, 'web');
    const hosts = json.cluster_statuses[0]!.host_statuses;
    assert.deepEqual(hosts[1]!.address, { socket_address: { address: 'fd00::2', port_value: 8080 } });
    assert.equal(hosts[1]!.health_status.failed_outlier_check, true);
  });

  it('/listeners in text and JSON', async () => {
    assert.equal(await (await get('/listeners')).text(), 'ingress::0.0.0.0:10000\n');
    assert.deepEqual(await (await get('/listeners?format=json')).json(), {
      listener_statuses: [
        { name: 'ingress', local_address: { socket_address: { address: '0.0.0.0', port_value: 10000 } } },
      ],
    });
  });

  it('/logging lists and changes the level', async () => {
    assert.equal(await (await get('/logging')).text(), 'active loggers:\n  remora: info\n');
    let res = await post('/logging?level=debug');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'active loggers:\n  remora: debug\n');
    res = await post('/logging?level=loud');
    assert.equal(res.status, 400);
    assert.match(await res.text(), /unknown logger level 'loud'/);
    assert.equal((await post('/logging?paths=upstream:trace,router:trace')).status, 200);
    assert.equal(fake.target.logLevel(), 'trace');
    assert.equal((await post('/logging?paths=upstream:trace,router:info')).status, 400);
    assert.equal((await post('/logging?paths=garbage')).status, 400);
    assert.equal((await get('/logging?level=info')).status, 405);
    assert.equal(fake.target.logLevel(), 'trace');
  });

  it('/drain_listeners passes its flags', async () => {
    assert.equal(await (await post('/drain_listeners?graceful&inboundonly')).text(), 'OK\n');
    await post('/drain_listeners');
    assert.deepEqual(fake.calls, ['drain graceful=true inbound=true', 'drain graceful=false inbound=false']);
  });

  it('/reset_counters zeroes counters only', async () => {
    assert.equal((await post('/reset_counters')).status, 200);
    assert.equal(fake.target.stats.counter('cluster.web.upstream_rq_total').value, 0);
    assert.equal(fake.target.stats.gauge('server.live').value, 1);
    fake.target.stats.counter('cluster.web.upstream_rq_total').inc(3);
  });

  it('/quitquitquit answers, then quits', async () => {
    const res = await post('/quitquitquit');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'OK\n');
    for (let i = 0; i < 50 && fake.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(fake.calls, ['quit']);
  });

  it('/certs and /memory', async () => {
    assert.deepEqual(await (await get('/certs')).json(), { certificates: [] });
    const mem = (await (await get('/memory')).json()) as Record<string, string>;
    assert.ok(Number(mem.allocated) > 0);
    assert.ok(Number(mem.heap_size) > 0);
  });

  it('refuses GET on every state-changing path with 405', async () => {
    for (const path of [
      '/drain_listeners',
      '/healthcheck/fail',
      '/healthcheck/ok',
      '/reset_counters',
      '/quitquitquit',
      '/logging?level=debug',
    ]) {
      const res = await get(path);
      assert.equal(res.status, 405, path);
      assert.equal(res.headers.get('allow'), 'POST');
      assert.match(await res.text(), /use POST/);
    }
    assert.deepEqual(fake.calls, []);
    assert.equal((await get('/stats', { method: 'DELETE' })).status, 405);
  });

  it('answers HEAD without a body', async () => {
    const res = await get('/ready', { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
  });

  it('answers unknown paths with 404 and the endpoint list', async () => {
    const res = await get('/nope');
    assert.equal(res.status, 404);
    assert.match(await res.text(), /^invalid path\. admin commands are:\n[\s\S]*\/stats\/prometheus/);
  });

  it('survives malformed requests', async () => {
    assert.equal((await get('/stats?filter=%E0%A4%A&%%%=&&=')).status, 200);
    assert.equal((await rawRequest('/stats?usedonly=%ZZ&format')).status, 200);
    assert.equal((await rawRequest('//evil/ready')).status, 404);
    const garbage = await rawSocket('NOT HTTP AT ALL\r\n\r\n');
    assert.match(garbage, /^HTTP\/1\.1 400/);
    // Still serving.
    assert.equal((await get('/ready')).status, 200);
  });

  it('writes an access log line per request', async () => {
    await get('/ready?probe=1');
    // The log flushes on its timer or on close; reading through a fresh server keeps this one open.
    await new Promise((r) => setTimeout(r, 1200));
    const log = await readFile(join(dir, 'admin.log'), 'utf8');
    assert.match(log, /"GET \/ready\?probe=1 HTTP\/1\.1" 200 /);
  });

  function rawRequest(path: string): Promise<{ status: number }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.address.port, path, method: 'GET' }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  function rawSocket(payload: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const sock = connect(server.address.port, '127.0.0.1', () => sock.write(payload));
      let data = '';
      sock.on('data', (d) => {
        data += d.toString();
      });
      sock.on('close', () => resolve(data));
      sock.on('error', reject);
    });
  }
});

describe('AdminServer lifecycle', () => {
  it('rejects a port already in use, and close() is idempotent', async () => {
    const { target } = makeTarget();
    const first = await AdminServer.start({ address: '127.0.0.1', port: 0 }, target, {
      version: 'remora/test',
    });
    await assert.rejects(
      AdminServer.start({ address: '127.0.0.1', port: first.address.port }, target),
      /admin: cannot listen on 127\.0\.0\.1:\d+/,
    );
    const info = (await (await fetch(`http://127.0.0.1:${first.address.port}/server_info`)).json()) as {
      version: string;
    };
    assert.equal(info.version, 'remora/test');
    await Promise.all([first.close(), first.close()]);
  });
});

describe('splitUrl', () => {
  it('keeps the path as sent', () => {
    assert.equal(splitUrl('//evil/ready').path, '//evil/ready');
    assert.equal(splitUrl('http://host:1/stats?filter=a').path, '/stats');
    assert.equal(splitUrl('/stats?filter=a#frag').query.get('filter'), 'a');
    assert.equal(splitUrl('/x?%zz=1').query.get('%zz'), '1');
  });
});
