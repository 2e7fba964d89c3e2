// Tests of the cluster manager's dynamic side: EDS clusters warm until their endpoints arrive (or a timeout),
// a replaced cluster serves until its successor is warm, static clusters cannot be changed by CDS.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { translateCluster } from '../../config/cluster.js';
import type { ClusterConfig, LocalityEndpointsConfig } from '../../config/model.js';
import { formatErrors } from '../../config/result.js';
import { StatsStore } from '../observe/stats.js';
import { ClusterManager } from './cluster_manager.js';

function config(raw: Record<string, unknown>): ClusterConfig {
  const r = translateCluster(raw, '');
  if (!r.ok) assert.fail(formatErrors(r.errors));
  return r.value;
}

function eds(name: string, extra: Record<string, unknown> = {}, timeout?: string): ClusterConfig {
  return config({
    name,
    type: 'EDS',
    eds_cluster_config: {
      service_name: `${name}-svc`,
      eds_config: { ads: {}, ...(timeout && { initial_fetch_timeout: timeout }) },
    },
    ...extra,
  });
}

const one = (port: number): LocalityEndpointsConfig[] => [
  {
    priority: 0,
    weight: undefined,
    endpoints: [{ address: { address: '127.0.0.1', port }, weight: 1, hostname: undefined, healthy: true }],
  },
];

const hostsOf = (m: ClusterManager, name: string) =>
  m
    .get(name)
    ?.allHosts()
    .map((h) => h.key);

test('an EDS cluster warms until its first assignment, then serves', async () => {
  const m = new ClusterManager([], new StatsStore());
  let changes = 0;
  m.onChange(() => changes++);
  assert.equal(m.upsert(eds('web')), undefined);
  assert.equal(m.get('web'), undefined);
  assert.ok(m.isWarming('web'));
  assert.deepEqual([...m.edsServiceNames()], ['web-svc']);
  const warm = m.whenWarm();
  m.setAssignment('web-svc', one(8080));
  await warm;
  assert.ok(!m.isWarming('web'));
  assert.deepEqual(hostsOf(m, 'web'), ['127.0.0.1:8080']);
  assert.ok(changes >= 2);
  await m.destroy();
});

test('a warming cluster whose endpoints never come serves empty after its initial fetch timeout', async () => {
  const m = new ClusterManager([], new StatsStore());
  m.upsert(eds('web', {}, '0.02s'));
  assert.equal(m.get('web'), undefined);
  await m.whenWarm();
  assert.deepEqual(hostsOf(m, 'web'), []);
  // Endpoints that come later are taken.
  m.setAssignment('web-svc', one(9090));
  assert.deepEqual(hostsOf(m, 'web'), ['127.0.0.1:9090']);
  await m.destroy();
});

test('a changed cluster replaces the old one once warm; the old one serves until then', async () => {
  const m = new ClusterManager([], new StatsStore());
  m.upsert(eds('web'));
  m.setAssignment('web-svc', one(8080));
  await m.whenWarm();
  const first = m.get('web')!;
  // Known endpoints: the new version is warm at once.
  m.upsert(eds('web', { lb_policy: 'RANDOM' }));
  const second = m.get('web')!;
  assert.notEqual(second, first);
  assert.equal(second.config.lbPolicy, 'RANDOM');
  assert.deepEqual(hostsOf(m, 'web'), ['127.0.0.1:8080']);
  // Another service name with no endpoints yet: the second version keeps serving while the third warms.
  m.upsert(
    config({
      name: 'web',
      type: 'EDS',
      eds_cluster_config: { service_name: 'other', eds_config: { ads: {} } },
    }),
  );
  assert.equal(m.get('web'), second);
  assert.ok(m.isWarming('web'));
  assert.deepEqual([...m.edsServiceNames()].sort(), ['other', 'web-svc']);
  m.setAssignment('other', one(7070));
  await m.whenWarm();
  assert.deepEqual(hostsOf(m, 'web'), ['127.0.0.1:7070']);
  assert.deepEqual([...m.edsServiceNames()], ['other']);
  await m.destroy();
});

test('static clusters cannot be changed or removed by CDS; removed dynamic ones are gone', async () => {
  const static1 = config({
    name: 'xds',
    type: 'STATIC',
    load_assignment: {
      cluster_name: 'xds',
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 1 } } } },
          ],
        },
      ],
    },
  });
  const m = new ClusterManager([static1], new StatsStore());
  assert.match(m.upsert(eds('xds')) ?? '', /static cluster of the bootstrap/);
  m.remove('xds');
  assert.ok(m.get('xds'));
  m.upsert(config({ name: 'dyn', type: 'STATIC' }));
  assert.ok(m.get('dyn'));
  m.remove('dyn');
  assert.equal(m.get('dyn'), undefined);
  await m.destroy();
});
