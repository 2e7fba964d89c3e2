// Integration: every admin endpoint of a running proxy that has carried real traffic — values, formats, methods.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { until } from './support/child.js';
import { curl } from './support/clients.js';
import {
  bootstrap,
  httpListener,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
} from './support/proxy.js';
import { RawConnection, rawRoundTrip } from './support/raw_http.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const N = 5;
let proxy: RunningProxy;
let web: Upstream;

async function get(path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  const r = await fetch(`${proxy.adminUrl}${path}`, { method });
  return { status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() };
}

before(async () => {
  web = await startUpstream('web');
  proxy = await startProxy(
    bootstrap(
      [httpListener('main', routes([{ match: { prefix: '/' }, route: { cluster: 'web' } }]))],
      [staticCluster('web', [web.port]), staticCluster('idle', [web.port], { lb_policy: 'RANDOM' })],
    ),
  );
  for (let i = 0; i < N; i++) assert.equal((await curl([`${proxy.url()}/item/${i}`])).status, 200);
});

after(async () => {
  await proxy.close();
  await web.close();
});

test('GET /ready is 200 LIVE', async () => {
  const r = await get('/ready');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'LIVE\n');
});

test('GET /server_info is JSON with state LIVE and the node', async () => {
  const r = await get('/server_info');
  assert.equal(r.status, 200);
  assert.equal(r.type, 'application/json');
  const info = JSON.parse(r.body) as {
    state: string;
    version: string;
    node: { id: string; cluster: string };
  };
  assert.equal(info.state, 'LIVE');
  assert.match(info.version, /^remora\//);
  assert.equal(info.node.id, 'test');
  assert.equal(info.node.cluster, 'test');
});

test('GET /stats has request, cluster and listener counters with the right values', async () => {
  const r = await get('/stats');
  assert.equal(r.status, 200);
  const stats = new Map<string, string>();
  for (const line of r.body.split('\n')) {
    const i = line.indexOf(': ');
    if (i > 0) stats.set(line.slice(0, i), line.slice(i + 2));
  }
  assert.equal(stats.get('http.ingress.downstream_rq_total'), String(N));
  assert.equal(stats.get('http.ingress.downstream_rq_2xx'), String(N));
  assert.equal(stats.get('cluster.web.upstream_rq_total'), String(N));
  assert.equal(stats.get('cluster.idle.upstream_rq_total'), '0');
  assert.equal(stats.get(`listener.127.0.0.1_${proxy.port()}.downstream_cx_total`), String(N));
  // Histograms follow the counters and gauges, with quantiles once they hold samples.
  assert.match(stats.get('cluster.web.upstream_rq_time') ?? '', /^P0\(/);
  assert.equal(stats.get('cluster.idle.upstream_rq_time'), 'No recorded values');
});

test('GET /stats?filter= keeps only matching stats', async () => {
  const r = await get(`/stats?filter=${encodeURIComponent('^cluster\\.web\\.upstream_rq_total$')}`);
  assert.equal(r.status, 200);
  assert.equal(r.body, `cluster.web.upstream_rq_total: ${N}\n`);
  const some = await get('/stats?filter=downstream_rq_total');
  const names = some.body
    .trim()
    .split('\n')
    .map((l) => l.split(':')[0]);
  assert.ok(names.length > 0);
  for (const name of names) assert.match(name!, /downstream_rq_total/);
  assert.equal((await get('/stats?filter=(')).status, 400);
});

test('GET /stats?format=json has the same values as numbers', async () => {
  const r = await get('/stats?format=json');
  assert.equal(r.status, 200);
  assert.equal(r.type, 'application/json');
  const doc = JSON.parse(r.body) as { stats: ({ name: string; value: number } | { histograms: unknown })[] };
  const value = (name: string) => doc.stats.find((s) => 'name' in s && s.name === name) as { value: number };
  assert.equal(value('cluster.web.upstream_rq_total').value, N);
  assert.equal(value('http.ingress.downstream_rq_total').value, N);
  const hist = doc.stats.find((s) => 'histograms' in s) as {
    histograms: { computed_quantiles: { name: string }[] };
  };
  assert.ok(hist.histograms.computed_quantiles.some((q) => q.name === 'cluster.web.upstream_rq_time'));
});

test('GET /stats/prometheus is valid exposition text with cluster, code class and histogram series', async () => {
  const r = await get('/stats/prometheus');
  assert.equal(r.status, 200);
  assert.match(r.type, /^text\/plain; version=0\.0\.4/);
  const labelPair = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\.)*"';
  const sample = new RegExp(
    `^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{${labelPair}(?:,${labelPair})*\\})? (-?[0-9.]+(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)$`,
  );
  const typed = new Map<string, string>();
  const series = new Set<string>();
  for (const line of r.body.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/.exec(line);
      assert.ok(m, `bad comment line: ${line}`);
      assert.ok(!typed.has(m[1]!), `family ${m[1]} typed twice`);
      typed.set(m[1]!, m[2]!);
      continue;
    }
    const m = sample.exec(line);
    assert.ok(m, `bad sample line: ${line}`);
    const family = m[1]!.replace(/_(bucket|sum|count)$/, '');
    assert.ok(typed.has(m[1]!) || typed.get(family) === 'histogram', `sample before its # TYPE: ${line}`);
    const key = `${m[1]}${m[2] ?? ''}`;
    assert.ok(!series.has(key), `duplicate series ${key}`);
    series.add(key);
  }
  const body = r.body;
  assert.match(body, new RegExp(`^envoy_cluster_upstream_rq_total\\{envoy_cluster_name="web"\\} ${N}$`, 'm'));
  assert.match(
    body,
    new RegExp(
      `^envoy_cluster_upstream_rq_xx\\{envoy_response_code_class="2",envoy_cluster_name="web"\\} ${N}$`,
      'm',
    ),
  );
  assert.equal(typed.get('envoy_cluster_upstream_rq_time'), 'histogram');
  assert.equal(typed.get('envoy_http_downstream_rq_time'), 'histogram');
  assert.match(body, /^envoy_cluster_upstream_rq_time_bucket\{envoy_cluster_name="web",le="0\.5"\} \d+$/m);
  assert.match(
    body,
    new RegExp(`^envoy_cluster_upstream_rq_time_bucket\\{envoy_cluster_name="web",le="\\+Inf"\\} ${N}$`, 'm'),
  );
  assert.match(
    body,
    new RegExp(`^envoy_cluster_upstream_rq_time_count\\{envoy_cluster_name="web"\\} ${N}$`, 'm'),
  );
  assert.match(
    body,
    new RegExp(
      `^envoy_http_downstream_rq_time_bucket\\{envoy_http_conn_manager_prefix="ingress",le="\\+Inf"\\} ${N}$`,
      'm',
    ),
  );
  // Bucket counts are cumulative.
  const buckets = [
    ...body.matchAll(
      /^envoy_cluster_upstream_rq_time_bucket\{envoy_cluster_name="web",le="[^"]+"\} (\d+)$/gm,
    ),
  ].map((m) => Number(m[1]));
  assert.ok(buckets.length > 2);
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]! >= buckets[i - 1]!);
});

test('GET /config_dump holds the bootstrap clusters and listeners', async () => {
  const r = await get('/config_dump');
  assert.equal(r.status, 200);
  const dump = JSON.parse(r.body) as { configs: Record<string, unknown>[] };
  const byType = (t: string) =>
    dump.configs.find((c) => c['@type'] === `type.googleapis.com/envoy.admin.v3.${t}`);
  const clusters = byType('ClustersConfigDump') as { static_clusters: { cluster: { name: string } }[] };
  assert.deepEqual(
    clusters.static_clusters.map((c) => c.cluster.name),
    ['web', 'idle'],
  );
  const listeners = byType('ListenersConfigDump') as {
    static_listeners: { listener: { name: string; filter_chains: unknown[] } }[];
  };
  assert.deepEqual(
    listeners.static_listeners.map((l) => l.listener.name),
    ['main'],
  );
  const boot = byType('BootstrapConfigDump') as { bootstrap: { node: { id: string } } };
  assert.equal(boot.bootstrap.node.id, 'test');
  const only = JSON.parse((await get('/config_dump?resource=static_clusters')).body) as {
    configs: { cluster: { name: string } }[];
  };
  assert.deepEqual(
    only.configs.map((c) => c.cluster.name),
    ['web', 'idle'],
  );
});

test('GET /clusters prints per-endpoint lines', async () => {
  const r = await get('/clusters');
  assert.equal(r.status, 200);
  const host = `web::127.0.0.1:${web.port}::`;
  const line = (name: string) =>
    new RegExp(`^${host.replace(/\./g, '\\.')}${name}::(\\S+)$`, 'm').exec(r.body)?.[1];
  assert.match(line('cx_active') ?? '', /^\d+$/);
  assert.equal(line('rq_active'), '0');
  assert.equal(line('rq_total'), String(N));
  assert.equal(line('health_flags'), 'healthy');
  assert.match(r.body, /^web::default_priority::max_connections::1024$/m);
  assert.match(r.body, new RegExp(`^idle::127\\.0\\.0\\.1:${web.port}::rq_total::0$`, 'm'));
  const json = JSON.parse((await get('/clusters?format=json')).body) as {
    cluster_statuses: { name: string }[];
  };
  assert.deepEqual(
    json.cluster_statuses.map((c) => c.name),
    ['web', 'idle'],
  );
});

test('GET /listeners names each listener with its bound address', async () => {
  const r = await get('/listeners');
  assert.equal(r.status, 200);
  assert.equal(r.body, `main::127.0.0.1:${proxy.port()}\n`);
  const json = JSON.parse((await get('/listeners?format=json')).body) as {
    listener_statuses: { name: string; local_address: { socket_address: { port_value: number } } }[];
  };
  assert.equal(json.listener_statuses[0]!.local_address.socket_address.port_value, proxy.port());
});

test('POST /logging?level=debug changes the level; GET /logging shows it', async () => {
  const r = await get('/logging?level=debug', 'POST');
  assert.equal(r.status, 200);
  assert.match(r.body, /remora: debug/);
  assert.match((await get('/logging')).body, /remora: debug/);
  assert.equal((await get('/logging?level=loud', 'POST')).status, 400);
  assert.match((await get('/logging?level=error', 'POST')).body, /remora: error/);
});

test('GET on every state-changing path is 405 and changes nothing', async () => {
  for (const path of [
    '/quitquitquit',
    '/drain_listeners',
    '/healthcheck/fail',
    '/healthcheck/ok',
    '/reset_counters',
    '/logging?level=debug',
  ]) {
    const r = await get(path);
    assert.equal(r.status, 405, path);
  }
  assert.equal((await get('/ready')).status, 200);
  assert.equal(proxy.stat('cluster.web.upstream_rq_total'), N);
  assert.equal((await curl([`${proxy.url()}/still-up`])).status, 200);
});

test('an unknown path is 404 with the list of commands', async () => {
  const r = await get('/no/such/endpoint');
  assert.equal(r.status, 404);
  assert.match(r.body, /admin commands are:/);
});

test('POST /reset_counters sets every counter to 0 and counting resumes', async () => {
  assert.ok(proxy.stat('cluster.web.upstream_rq_total') > 0);
  const r = await get('/reset_counters', 'POST');
  assert.equal(r.status, 200);
  const stats = (await get('/stats?filter=upstream_rq_total|downstream_rq_total|downstream_cx_total')).body;
  assert.match(stats, /^cluster\.web\.upstream_rq_total: 0$/m);
  assert.match(stats, /^http\.ingress\.downstream_rq_total: 0$/m);
  assert.match(
    stats,
    new RegExp(`^listener\\.127\\.0\\.0\\.1_${proxy.port()}\\.downstream_cx_total: 0$`, 'm'),
  );
  assert.equal((await curl([`${proxy.url()}/again`])).status, 200);
  assert.equal(proxy.stat('cluster.web.upstream_rq_total'), 1);
  // Gauges are not counters: server.live stays 1.
  assert.equal(proxy.stat('server.live'), 1);
});

// The admin listener is served by Remora's own HTTP/1.1 codec, as Envoy's admin is by its HTTP stack.
const adminPort = (): number => Number(new URL(proxy.adminUrl).port);

test('the admin answers HEAD with the GET headers and no body, over one kept-alive connection', async () => {
  const c = await RawConnection.open(adminPort());
  try {
    c.write('HEAD /ready HTTP/1.1\r\nhost: admin\r\n\r\nGET /ready HTTP/1.1\r\nhost: admin\r\n\r\n');
    await until('both responses', () => /LIVE\n$/.test(c.pending));
    const [head, get] = c.pending.split(/(?=HTTP\/1\.1 )/);
    assert.match(head!, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head!, /\r\ncontent-length: 5\r\n/);
    assert.match(head!, /\r\n\r\n$/, 'no body after the HEAD response head');
    assert.match(get!, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nLIVE\n$/);
  } finally {
    c.destroy();
  }
});

test('the admin refuses ambiguous framing (400) and oversized heads (431), and closes the connection', async () => {
  const smuggled = await rawRoundTrip(
    adminPort(),
    'POST /healthcheck/fail HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
  );
  assert.match(smuggled.received, /^HTTP\/1\.1 400 /);
  assert.ok(smuggled.closed);
  assert.equal((await get('/ready')).status, 200, 'the refused POST changed nothing');
  const big = await rawRoundTrip(
    adminPort(),
    `GET /ready HTTP/1.1\r\nhost: a\r\nx-big: ${'a'.repeat(70_000)}\r\n\r\n`,
  );
  assert.match(big.received, /^HTTP\/1\.1 431 /);
  assert.ok(big.closed);
});

test('admin.access_log_path gets one line per admin request in the default format', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-admin-log-'));
  const log = join(dir, 'admin.log');
  const config = bootstrap([], []) as { admin: Record<string, unknown> };
  config.admin.access_log_path = log;
  const p = await startProxy(config);
  try {
    assert.equal((await fetch(`${p.adminUrl}/ready`)).status, 200);
    assert.equal((await fetch(`${p.adminUrl}/nope`)).status, 404);
    await p.close();
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0]!, /"GET \/ready HTTP\/1\.1" 200 - 0 5 \d+ /);
    assert.match(lines[1]!, /"GET \/nope HTTP\/1\.1" 404 - 0 \d+ \d+ /);
  } finally {
    await p.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
