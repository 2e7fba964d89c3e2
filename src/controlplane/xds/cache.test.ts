// Tests of the snapshot cache: content versions, changes per type and per resource, the consistency check,
// change listeners, and the debounce that turns bursts of changes into one push.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { XDS_TYPE_URLS } from '../../xds/protos.js';
import { diffSnapshots, Snapshot, SnapshotCache } from './cache.js';
import { Debouncer } from './debounce.js';
import { XdsResource } from './resource.js';

const { cluster: CDS, endpoint: EDS, listener: LDS, route: RDS } = XDS_TYPE_URLS;
const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

function res(typeUrl: string, json: Record<string, unknown>): XdsResource {
  const r = XdsResource.fromJson(typeUrl, json);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r.value;
}

const edsCluster = (name: string, service?: string) =>
  res(CDS, {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {} }, ...(service && { service_name: service }) },
  });
const cla = (name: string, port = 80) =>
  res(EDS, {
    cluster_name: name,
    endpoints: [
      {
        lb_endpoints: [
          { endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: port } } } },
        ],
      },
    ],
  });
const hcm = (routeName: string) => ({
  '@type': HCM,
  stat_prefix: 'x',
  rds: { config_source: { ads: {} }, route_config_name: routeName },
});

test('a type version is a hash of its content: equal content, equal version, in any order', () => {
  const a = Snapshot.from([edsCluster('a'), cla('a'), edsCluster('b'), cla('b')]);
  const b = Snapshot.from([cla('b'), edsCluster('b'), cla('a'), edsCluster('a')]);
  for (const t of [CDS, EDS, LDS]) assert.equal(a.version(t), b.version(t));
  assert.equal(a.version(LDS), Snapshot.from([]).version(LDS), 'an absent type is the empty set');
  const c = Snapshot.from([edsCluster('a'), cla('a', 81), edsCluster('b'), cla('b')]);
  assert.equal(c.version(CDS), a.version(CDS));
  assert.notEqual(c.version(EDS), a.version(EDS));
  assert.equal(cla('a').version, cla('a').version);
  assert.notEqual(cla('a').version, cla('a', 81).version);
});

test('a resource needs a name, and a snapshot holds one resource per name and type', () => {
  const nameless = XdsResource.fromJson(EDS, { endpoints: [] });
  assert.deepEqual(!nameless.ok && nameless.errors, [
    { path: 'cluster_name', message: 'a resource needs a non-empty name' },
  ]);
  const dup = Snapshot.of([cla('a'), cla('a', 81)]);
  assert.deepEqual(!dup.ok && dup.errors, [{ path: 'EDS["a"]', message: 'duplicate name' }]);
});

test('changes are listed per type and resource; unchanged types are left out', () => {
  const before = Snapshot.from([edsCluster('a'), cla('a'), edsCluster('b'), cla('b')]);
  const after = Snapshot.from([edsCluster('a'), cla('a', 81), cla('c')]);
  assert.deepEqual(
    diffSnapshots(before, after),
    new Map([
      [CDS, { changed: [], removed: ['b'] }],
      [EDS, { changed: ['a', 'c'], removed: ['b'] }],
    ]),
  );
  assert.deepEqual([...diffSnapshots(undefined, before).keys()].sort(), [CDS, EDS].sort());
  assert.equal(diffSnapshots(before, before).size, 0);
});

test('the cache refuses an inconsistent snapshot, names what is missing, and keeps the last good one', () => {
  const cache = new SnapshotCache({ now: () => 42 });
  const heard: string[] = [];
  const cancel = cache.onChange((key, _s, changes) => heard.push(`${key}:${[...changes.keys()].length}`));
  const good = Snapshot.from([edsCluster('a'), cla('a')]);
  assert.ok(cache.set('n', good).ok);
  const listener = res(LDS, {
    name: 'l',
    filter_chains: [{ filters: [{ name: 'hcm', typed_config: hcm('r1') }] }],
    default_filter_chain: { filters: [{ name: 'hcm', typed_config: hcm('r2') }] },
  });
  const api = res(LDS, { name: 'api', api_listener: { api_listener: hcm('r3') } });
  const bad = Snapshot.from([
    edsCluster('a'),
    cla('a'),
    edsCluster('b', 'svc-b'),
    listener,
    api,
    res(RDS, { name: 'r2' }),
  ]);
  const result = cache.set('n', bad);
  assert.deepEqual(!result.ok && result.errors, [
    {
      path: 'clusters["b"].eds_cluster_config.service_name',
      message: 'names ClusterLoadAssignment "svc-b", which the snapshot does not have',
    },
    {
      path: 'listeners["l"].filter_chains[0].filters[0].typed_config.rds.route_config_name',
      message: 'names RouteConfiguration "r1", which the snapshot does not have',
    },
    {
      path: 'listeners["api"].api_listener.api_listener.rds.route_config_name',
      message: 'names RouteConfiguration "r3", which the snapshot does not have',
    },
  ]);
  assert.equal(cache.get('n'), good);
  assert.deepEqual(cache.rejection('n')?.at, 42);
  assert.equal(cache.rejectedTotal, 1);
  assert.deepEqual(heard, ['n:2'], 'only the accepted snapshot was announced');

  // Static clusters need no endpoints; a consistent snapshot clears the rejection.
  const fixed = Snapshot.from([
    edsCluster('a'),
    cla('a'),
    res(CDS, { name: 'static', type: 'STATIC' }),
    api,
    res(RDS, { name: 'r3' }),
  ]);
  const ok = cache.set('n', fixed);
  assert.ok(ok.ok);
  assert.deepEqual([...ok.changes.keys()].sort(), [CDS, LDS, RDS].sort());
  assert.equal(cache.rejection('n'), undefined);
  assert.ok(cache.set('n', fixed).ok);
  assert.deepEqual(heard, ['n:2', 'n:3'], 'an identical snapshot announces nothing');
  cancel();
  cache.set('n', good);
  assert.equal(heard.length, 2);
});

test('proxies are grouped by a node key of choice', () => {
  const cache = new SnapshotCache({ nodeKey: (node) => `${node.cluster}` });
  assert.equal(cache.nodeKey({ id: 'sidecar~1', cluster: 'web' }), 'web');
  assert.equal(new SnapshotCache().nodeKey({ id: 'sidecar~1', cluster: 'web' }), 'sidecar~1');
});

test('the debounce fires once per burst', async () => {
  const fired: number[] = [];
  let done: () => void = () => {};
  const firedOnce = new Promise<void>((r) => {
    done = r;
  });
  const d = new Debouncer<string>({ delayMs: 1, maxDelayMs: 1000 }, (_k, at) => {
    fired.push(at);
    done();
  });
  d.trigger('x');
  d.trigger('x');
  d.trigger('x');
  assert.ok(d.isPending('x'));
  await firedOnce;
  assert.equal(fired.length, 1);
  assert.equal(d.isPending('x'), false, 'nothing else is scheduled');
  d.close();
});

test('a burst longer than the ceiling fires at the ceiling, whatever the quiet time', {
  timeout: 10_000,
}, async () => {
  let now = 0;
  let firstChangeAt = -1;
  let done: () => void = () => {};
  const fired = new Promise<void>((r) => {
    done = r;
  });
  const d = new Debouncer<string>({ delayMs: 60_000, maxDelayMs: 1000, now: () => now }, (_k, at) => {
    firstChangeAt = at;
    done();
  });
  d.trigger('k');
  now = 600;
  d.trigger('k');
  now = 1000;
  d.trigger('k');
  await fired;
  assert.equal(firstChangeAt, 0);
  d.close();
});

test('close() drops the pushes that wait', () => {
  const d = new Debouncer<string>({ delayMs: 60_000, maxDelayMs: 60_000 }, () =>
    assert.fail('fired after close'),
  );
  d.trigger('k');
  d.close();
  assert.equal(d.isPending('k'), false);
  d.trigger('k');
  assert.equal(d.isPending('k'), false);
});
