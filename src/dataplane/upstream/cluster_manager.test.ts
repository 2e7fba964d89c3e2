// Tests of the cluster manager's dynamic side: EDS clusters warm until their endpoints arrive (or a timeout),
// a replaced cluster serves until its successor is warm, static clusters cannot be changed by CDS.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { translateCluster } from '../../config/cluster.js';
import { DEFAULT_LOAD_ASSIGNMENT_POLICY } from '../../config/load_assignment_policy.js';
import type { ClusterConfig, ClusterLoadAssignmentConfig, LoadAssignmentPolicy } from '../../config/model.js';
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

const one = (port: number, policy: Partial<LoadAssignmentPolicy> = {}): ClusterLoadAssignmentConfig => ({
  clusterName: 'svc',
  localities: [
    {
      priority: 0,
      weight: undefined,
      endpoints: [
        { address: { address: '127.0.0.1', port }, weight: 1, hostname: undefined, health: 'HEALTHY' },
      ],
    },
  ],
  policy: { ...DEFAULT_LOAD_ASSIGNMENT_POLICY, ...policy },
});

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

test('endpoint_stale_after: without a new assignment in time the endpoints go; each assignment re-arms it', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const m = new ClusterManager([], new StatsStore());
  m.upsert(eds('web'));
  m.setAssignment('web-svc', one(8080, { endpointStaleAfterMs: 1000 }));
  await m.whenWarm();
  const web = m.get('web')!;
  t.mock.timers.tick(900);
  m.setAssignment('web-svc', one(8081, { endpointStaleAfterMs: 1000 }));
  t.mock.timers.tick(900);
  assert.deepEqual(hostsOf(m, 'web'), ['127.0.0.1:8081'], 'the second assignment restarted the count');
  assert.equal(web.stats.assignment_timeout_received.value, 2);
  assert.equal(web.stats.assignment_stale.value, 0);
  t.mock.timers.tick(100);
  assert.deepEqual(hostsOf(m, 'web'), []);
  assert.equal(web.stats.assignment_stale.value, 1);
  assert.ok(web.endpointsStale);
  assert.equal(web.chooseHost({ hashKey: undefined }), undefined);
  // A cluster CDS creates for the service now starts with no endpoints, and warms at once.
  m.upsert(eds('web', { lb_policy: 'RANDOM' }));
  assert.deepEqual(hostsOf(m, 'web'), []);
  // A fresh assignment restores service; without endpoint_stale_after nothing expires any more.
  m.setAssignment('web-svc', one(8082));
  assert.deepEqual(hostsOf(m, 'web'), ['127.0.0.1:8082']);
  assert.ok(!m.get('web')!.endpointsStale);
  t.mock.timers.tick(60_000);
  assert.deepEqual(hostsOf(m, 'web'), ['127.0.0.1:8082']);
  // Stats belong to the cluster's name: the new version counts on.
  assert.equal(m.get('web')!.stats.assignment_stale.value, 1);
  await m.destroy();
});

test('endpoint_stale_after: the timer goes with its service, and with the manager', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const m = new ClusterManager([], new StatsStore());
  m.upsert(eds('web'));
  m.setAssignment('web-svc', one(8080, { endpointStaleAfterMs: 1000 }));
  await m.whenWarm();
  m.deleteAssignment('web-svc');
  t.mock.timers.tick(5000);
  assert.deepEqual(
    hostsOf(m, 'web'),
    ['127.0.0.1:8080'],
    'a deleted assignment leaves the hosts and no timer',
  );
  m.setAssignment('web-svc', one(8080, { endpointStaleAfterMs: 1000 }));
  const web = m.get('web')!;
  await m.close();
  t.mock.timers.tick(5000);
  assert.equal(web.stats.assignment_stale.value, 0, 'closed: the timer was cleared');
  await m.destroy();
});

test('endpoint_stale_after: an assignment sent again unchanged keeps the endpoints, or brings them back', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const m = new ClusterManager([], new StatsStore());
  m.upsert(eds('web'));
  const cla = one(8080, { endpointStaleAfterMs: 1000 });
  m.setAssignment('web-svc', cla);
  await m.whenWarm();
  const web = m.get('web')!;
  t.mock.timers.tick(900);
  m.assignmentResent('web-svc', cla);
  t.mock.timers.tick(900);
  assert.deepEqual(hostsOf(m, 'web'), ['127.0.0.1:8080']);
  assert.equal(web.stats.assignment_timeout_received.value, 2);
  assert.equal(web.stats.update_attempt.value, 1, 'received again, not applied again');
  t.mock.timers.tick(100);
  assert.deepEqual(hostsOf(m, 'web'), []);
  m.assignmentResent('web-svc', cla);
  assert.deepEqual(hostsOf(m, 'web'), ['127.0.0.1:8080']);
  assert.ok(!web.endpointsStale);
  // Without endpoint_stale_after, a resend changes nothing at all.
  m.setAssignment('web-svc', one(8081));
  m.assignmentResent('web-svc', one(8081));
  assert.equal(web.stats.update_attempt.value, 3);
  await m.destroy();
});
