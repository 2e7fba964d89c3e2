// The ADS server against a raw grpc-js xDS client on loopback: state of the world and delta, ACK/NACK, nonces,
// pushes of only what changed in CDS, EDS, LDS, RDS order, debouncing, consistency, status and the debug port.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { AdsServer } from '../src/controlplane/xds/ads_server.js';
import { Snapshot, SnapshotCache } from '../src/controlplane/xds/cache.js';
import { DebugServer } from '../src/controlplane/xds/debug_server.js';
import { XdsResource } from '../src/controlplane/xds/resource.js';
import { type Any, decodeAny, XDS_TYPE_URLS } from '../src/xds/protos.js';
import { RawAdsClient } from './support/ads_client.js';
import { assignment } from './support/xds.js';

const { cluster: CDS, endpoint: EDS, listener: LDS, route: RDS } = XDS_TYPE_URLS;
const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
type Msg = Record<string, unknown>;

const node = (id: string) => ({
  id,
  cluster: 'web',
  metadata: { namespace: 'default', labels: { app: 'web' } },
});

function cluster(name: string, timeout = '1s') {
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {} } },
    connect_timeout: timeout,
    lb_policy: 'ROUND_ROBIN',
  };
}

const cla = (name: string, ...ports: number[]) => assignment(name, ports);

function listener(name: string, port: number, routeName: string) {
  return {
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: name,
              rds: { config_source: { ads: {} }, route_config_name: routeName },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
            },
          },
        ],
      },
    ],
  };
}

function route(name: string, clusterName: string) {
  return {
    name,
    virtual_hosts: [
      { name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: clusterName } }] },
    ],
  };
}

interface World {
  clusters?: Record<string, unknown>[];
  endpoints?: Record<string, unknown>[];
  listeners?: Record<string, unknown>[];
  routes?: Record<string, unknown>[];
}

function snapshot(w: World): Snapshot {
  const resources: XdsResource[] = [];
  for (const [typeUrl, list] of [
    [CDS, w.clusters],
    [EDS, w.endpoints],
    [LDS, w.listeners],
    [RDS, w.routes],
  ] as const) {
    for (const json of list ?? []) {
      const r = XdsResource.fromJson(typeUrl, json);
      assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
      resources.push(r.value);
    }
  }
  return Snapshot.from(resources);
}

const BASE: World = {
  clusters: [cluster('a'), cluster('b')],
  endpoints: [cla('a', 8001), cla('b', 8002), cla('c', 8003)],
  listeners: [listener('http', 8080, 'routes')],
  routes: [route('routes', 'a'), route('other', 'b')],
};

function names(res: Msg): string[] {
  return ((res.resources as Any[] | undefined) ?? [])
    .map((any) => {
      const d = decodeAny(any);
      assert.ok(d.ok);
      return (d.value.name ?? d.value.cluster_name) as string;
    })
    .sort();
}

function deltaNames(res: Msg): string[] {
  return ((res.resources as { name: string }[] | undefined) ?? []).map((r) => r.name).sort();
}

const open: { close(): unknown }[] = [];
after(async () => {
  for (const o of open.reverse()) await o.close();
});

async function start(debounceMs = 0): Promise<{ cache: SnapshotCache; server: AdsServer }> {
  const cache = new SnapshotCache();
  const server = await AdsServer.listen({ cache, host: '127.0.0.1', port: 0, debounceMs });
  open.push(server);
  return { cache, server };
}

function sotwClient(server: AdsServer) {
  const c = RawAdsClient.sotw(server.port);
  open.push(c);
  return c;
}

function typeStatus(server: AdsServer, id: string, typeUrl: string) {
  const proxy = server.status().find((p) => p.node.id === id);
  assert.ok(proxy, `proxy ${id} is connected`);
  return proxy.types.find((t) => t.typeUrl === typeUrl);
}

/** Subscribes a SotW stream to the four types and ACKs each first response; returns the responses by type. */
async function subscribeAll(
  c: RawAdsClient<Msg, Msg>,
  id: string,
  edsNames = ['a', 'b'],
  rdsNames = ['routes'],
) {
  const got: Record<string, Msg> = {};
  for (const [typeUrl, resource_names] of [
    [CDS, []],
    [EDS, edsNames],
    [LDS, []],
    [RDS, rdsNames],
  ] as const) {
    c.send({ node: node(id), type_url: typeUrl, resource_names });
    const res = await c.next();
    assert.equal(res.type_url, typeUrl);
    c.send({ type_url: typeUrl, version_info: res.version_info, response_nonce: res.nonce, resource_names });
    got[typeUrl] = res;
  }
  return got;
}

describe('state of the world', () => {
  it('answers wildcard CDS and LDS with every resource, named EDS and RDS with those named', async () => {
    const { cache, server } = await start();
    const snap = snapshot(BASE);
    assert.ok(cache.set('p1', snap).ok);
    const c = sotwClient(server);
    const got = await subscribeAll(c, 'p1');
    assert.deepEqual(names(got[CDS]!), ['a', 'b']);
    assert.deepEqual(names(got[EDS]!), ['a', 'b']);
    assert.deepEqual(names(got[LDS]!), ['http']);
    assert.deepEqual(names(got[RDS]!), ['routes']);
    for (const t of [CDS, EDS, LDS, RDS]) {
      assert.equal(got[t]!.version_info, snap.version(t));
      assert.ok(typeof got[t]!.nonce === 'string' && got[t]!.nonce !== '');
    }
    assert.equal(
      new Set([CDS, EDS, LDS, RDS].map((t) => got[t]!.nonce)).size,
      4,
      'a fresh nonce per response',
    );
  });

  it('waits for a snapshot before answering, and keeps the node it was given', async () => {
    const { cache, server } = await start();
    const c = sotwClient(server);
    c.send({ node: node('late'), type_url: CDS, resource_names: [] });
    await until(() => server.status().length === 1);
    assert.equal(typeStatus(server, 'late', CDS)?.status, 'NOT SENT');
    assert.deepEqual(server.status()[0]!.node, node('late'));
    cache.set('late', snapshot(BASE));
    const res = await c.next();
    assert.deepEqual(names(res), ['a', 'b']);
  });

  it('after an ACK resends nothing; an endpoint-only change pushes only the changed EDS resource', async () => {
    const { cache, server } = await start();
    cache.set('p2', snapshot(BASE));
    const c = sotwClient(server);
    await subscribeAll(c, 'p2');
    await until(() => typeStatus(server, 'p2', RDS)?.status === 'SYNCED');
    for (const t of [CDS, EDS, LDS, RDS]) assert.equal(typeStatus(server, 'p2', t)?.status, 'SYNCED');

    const next = snapshot({ ...BASE, endpoints: [cla('a', 8001, 8011), cla('b', 8002), cla('c', 8003)] });
    const set = cache.set('p2', next);
    assert.ok(set.ok);
    assert.deepEqual([...set.changes.keys()], [EDS]);
    assert.deepEqual(set.changes.get(EDS), { changed: ['a'], removed: [] });
    const res = await c.next();
    assert.equal(res.type_url, EDS);
    assert.deepEqual(names(res), ['a'], 'only the changed ClusterLoadAssignment');
    assert.equal(res.version_info, next.version(EDS));
    assert.equal(typeStatus(server, 'p2', EDS)?.status, 'STALE', 'sent, not yet ACKed');
    c.send({
      type_url: EDS,
      version_info: res.version_info,
      response_nonce: res.nonce,
      resource_names: ['a', 'b'],
    });
    await until(() => typeStatus(server, 'p2', EDS)?.status === 'SYNCED');
    assert.equal(typeStatus(server, 'p2', EDS)?.ackedVersion, next.version(EDS));
    assert.equal(c.pending, 0);
  });

  it('records a NACK with its message, keeps the last good version, and offers the refused type again on the next push', async () => {
    const { cache, server } = await start();
    cache.set('p3', snapshot(BASE));
    const c = sotwClient(server);
    const first = await subscribeAll(c, 'p3');
    const good = first[CDS]!.version_info;
    await until(() => typeStatus(server, 'p3', CDS)?.status === 'SYNCED');

    const bad = { ...BASE, clusters: [cluster('a', '7s'), cluster('b')] };
    cache.set('p3', snapshot(bad));
    const res = await c.next();
    assert.equal(res.type_url, CDS);
    assert.deepEqual(names(res), ['a', 'b'], 'CDS carries the full set');
    c.send({
      type_url: CDS,
      version_info: good,
      response_nonce: res.nonce,
      resource_names: [],
      error_detail: { code: 3, message: 'clusters[0].connect_timeout: too long' },
    });
    await until(() => typeStatus(server, 'p3', CDS)?.lastNack !== undefined);
    const st = typeStatus(server, 'p3', CDS)!;
    assert.equal(st.status, 'STALE');
    assert.equal(st.ackedVersion, good);
    assert.equal(st.lastNack?.message, 'clusters[0].connect_timeout: too long');
    assert.equal(st.lastNack?.version, res.version_info);
    assert.equal(server.metrics.nacks.byType.get('CDS'), 1);

    // Not resent on its own; the next push (an RDS change) offers the refused type again first, as Istio's full
    // pushes do: what made the proxy refuse it (a port in use, say) may be gone by then.
    cache.set('p3', snapshot({ ...bad, routes: [route('routes', 'b'), route('other', 'b')] }));
    const again = await c.next();
    assert.equal(again.type_url, CDS);
    assert.deepEqual(names(again), ['a', 'b']);
    const after = await c.next();
    assert.equal(after.type_url, RDS);
    assert.deepEqual(names(after), ['routes']);
  });

  it('ignores a request with a stale nonce', async () => {
    const { cache, server } = await start();
    cache.set('p4', snapshot(BASE));
    const c = sotwClient(server);
    c.send({ node: node('p4'), type_url: EDS, resource_names: ['a'] });
    const first = await c.next();
    assert.deepEqual(names(first), ['a']);
    // An answer to a response that is not the latest: superseded, so its subscription is not applied.
    c.send({
      type_url: EDS,
      version_info: first.version_info,
      response_nonce: 'stale',
      resource_names: ['a', 'b'],
    });
    c.send({
      type_url: EDS,
      version_info: first.version_info,
      response_nonce: first.nonce,
      resource_names: ['a', 'c'],
    });
    const res = await c.next();
    assert.deepEqual(names(res), ['c'], 'only the newly subscribed name; "b" was never subscribed');
    assert.equal(server.metrics.staleNonces, 1);
  });

  it('pushes only the types that changed, in the order CDS, EDS, LDS, RDS', async () => {
    const { cache, server } = await start();
    cache.set('p5', snapshot(BASE));
    const c = sotwClient(server);
    await subscribeAll(c, 'p5');

    cache.set('p5', snapshot({ ...BASE, listeners: [listener('http', 8081, 'routes')] }));
    const lds = await c.next();
    assert.equal(lds.type_url, LDS);
    assert.deepEqual(names(lds), ['http']);
    c.send({ type_url: LDS, version_info: lds.version_info, response_nonce: lds.nonce, resource_names: [] });

    const all: World = {
      clusters: [cluster('a'), cluster('b'), cluster('c')],
      endpoints: [cla('a', 9001), cla('b', 8002), cla('c', 8003)],
      listeners: [listener('http', 8082, 'routes')],
      routes: [route('routes', 'c'), route('other', 'b')],
    };
    cache.set('p5', snapshot(all));
    const order: string[] = [];
    for (let i = 0; i < 4; i++) order.push((await c.next()).type_url as string);
    assert.deepEqual(order, [CDS, EDS, LDS, RDS]);
  });

  it('coalesces quick changes into one push', async () => {
    const { cache, server } = await start(200);
    cache.set('p6', snapshot(BASE));
    const c = sotwClient(server);
    await subscribeAll(c, 'p6');
    const before = server.metrics.pushes.byType.get('EDS');
    let last: Snapshot | undefined;
    for (const port of [9001, 9002, 9003]) {
      last = snapshot({ ...BASE, endpoints: [cla('a', port), cla('b', 8002), cla('c', 8003)] });
      cache.set('p6', last);
    }
    const res = await c.next();
    assert.equal(res.type_url, EDS);
    assert.equal(res.version_info, last!.version(EDS), 'the last of the burst');
    const d = decodeAny((res.resources as Any[])[0]!);
    assert.ok(d.ok);
    assert.match(JSON.stringify(d.value), /9003/);
    assert.equal(server.metrics.pushes.byType.get('EDS'), before! + 1);
    // Nothing else was queued: the next message is the next change.
    cache.set(
      'p6',
      snapshot({
        ...BASE,
        endpoints: [cla('a', 9003), cla('b', 8002), cla('c', 8003)],
        routes: [route('routes', 'b'), route('other', 'b')],
      }),
    );
    assert.equal((await c.next()).type_url, RDS);
  });

  it('refuses an inconsistent snapshot and keeps serving the last consistent one', async () => {
    const { cache, server } = await start();
    const good = snapshot(BASE);
    cache.set('p7', good);
    const c = sotwClient(server);
    await subscribeAll(c, 'p7');
    const broken = snapshot({
      clusters: [cluster('a'), cluster('lonely')],
      endpoints: [cla('a', 8001)],
      listeners: [listener('http', 8080, 'missing-routes')],
      routes: [],
    });
    const result = cache.set('p7', broken);
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && result.errors, [
      {
        path: 'clusters["lonely"].name',
        message: 'names ClusterLoadAssignment "lonely", which the snapshot does not have',
      },
      {
        path: 'listeners["http"].filter_chains[0].filters[0].typed_config.rds.route_config_name',
        message: 'names RouteConfiguration "missing-routes", which the snapshot does not have',
      },
    ]);
    assert.equal(cache.get('p7'), good);
    assert.equal(cache.rejection('p7')?.errors.length, 2);
    // Nothing was pushed for it: the next message is the next good change.
    cache.set('p7', snapshot({ ...BASE, routes: [route('routes', 'b'), route('other', 'b')] }));
    assert.equal((await c.next()).type_url, RDS);
    assert.match(server.metrics.render(), /^remora_xds_rejected_snapshots_total 1$/m);
  });

  it('refuses a stream whose first request has no node', async () => {
    const { server } = await start();
    const c = sotwClient(server);
    c.send({ type_url: CDS });
    const status = await c.status;
    assert.equal(status.code, 3);
    assert.match(status.details, /node\.id/);
  });
});

describe('delta', () => {
  it('subscribes, unsubscribes, removes, and honours initial_resource_versions', async () => {
    const { cache, server } = await start();
    const snap = snapshot(BASE);
    cache.set('d1', snap);
    const c = RawAdsClient.delta(server.port);
    open.push(c);
    const versionOfA = snap.resources(EDS).get('a')!.version;
    c.send({
      node: node('d1'),
      type_url: EDS,
      resource_names_subscribe: ['a', 'b', 'nope'],
      initial_resource_versions: { a: versionOfA, b: 'old' },
    });
    const first = await c.next();
    assert.deepEqual(deltaNames(first), ['b'], 'a is already held at its version');
    assert.deepEqual(first.removed_resources, ['nope']);
    assert.equal(first.system_version_info, snap.version(EDS));
    const b = (first.resources as { name: string; version: string; resource: Any }[])[0]!;
    assert.equal(b.version, snap.resources(EDS).get('b')!.version);
    assert.equal(b.resource.type_url, EDS);
    c.send({ type_url: EDS, response_nonce: first.nonce });
    await until(() => typeStatus(server, 'd1', EDS)?.status === 'SYNCED');

    // b goes away (with its cluster); a is unsubscribed and then changes: only b's removal is sent.
    c.send({ type_url: EDS, resource_names_unsubscribe: ['a'] });
    await until(() => !typeStatus(server, 'd1', EDS)?.subscribed.includes('a'));
    cache.set(
      'd1',
      snapshot({ ...BASE, clusters: [cluster('a')], endpoints: [cla('a', 7000), cla('c', 8003)] }),
    );
    const removal = await c.next();
    assert.deepEqual(deltaNames(removal), []);
    assert.deepEqual(removal.removed_resources, ['b']);
    c.send({ type_url: EDS, response_nonce: removal.nonce });

    // Subscribing again answers with just the new name.
    c.send({ type_url: EDS, resource_names_subscribe: ['c'] });
    const sub = await c.next();
    assert.deepEqual(deltaNames(sub), ['c']);
    assert.deepEqual(sub.removed_resources ?? [], []);
  });

  it('serves a wildcard CDS subscription and tells of removed clusters', async () => {
    const { cache, server } = await start();
    cache.set('d2', snapshot(BASE));
    const c = RawAdsClient.delta(server.port);
    open.push(c);
    c.send({ node: node('d2'), type_url: CDS });
    const first = await c.next();
    assert.deepEqual(deltaNames(first), ['a', 'b']);
    c.send({ type_url: CDS, response_nonce: first.nonce });
    cache.set('d2', snapshot({ ...BASE, clusters: [cluster('b', '2s')] }));
    const next = await c.next();
    assert.deepEqual(deltaNames(next), ['b']);
    assert.deepEqual(next.removed_resources, ['a']);
    assert.equal(server.status()[0]!.protocol, 'delta');
  });
});

describe('lifecycle and debug port', () => {
  it('reports status and metrics over HTTP, and close() ends streams with OK', async () => {
    const cache = new SnapshotCache();
    const server = await AdsServer.listen({ cache, host: '127.0.0.1', port: 0, debounceMs: 0 });
    const debug = await DebugServer.listen({ ads: server, cache, host: '127.0.0.1', port: 0 });
    try {
      cache.set('p9', snapshot(BASE));
      const c = RawAdsClient.sotw(server.port);
      await subscribeAll(c, 'p9');
      cache.set('p9', snapshot({ ...BASE, endpoints: [cla('a', 7001), cla('b', 8002), cla('c', 8003)] }));
      const eds = await c.next();
      c.send({
        type_url: EDS,
        version_info: eds.version_info,
        response_nonce: eds.nonce,
        resource_names: ['a', 'b'],
      });
      await until(() => server.metrics.convergence.count === 1);
      await until(() => typeStatus(server, 'p9', RDS)?.status === 'SYNCED');
      const syncz = (await (await fetch(`http://127.0.0.1:${debug.port}/debug/syncz`)).json()) as {
        node: { id: string };
        types: { type: string; status: string }[];
      }[];
      assert.equal(syncz.length, 1);
      assert.equal(syncz[0]!.node.id, 'p9');
      assert.deepEqual(
        syncz[0]!.types.map((t) => [t.type, t.status]),
        [
          ['CDS', 'SYNCED'],
          ['EDS', 'SYNCED'],
          ['LDS', 'SYNCED'],
          ['RDS', 'SYNCED'],
        ],
      );
      const metrics = await (await fetch(`http://127.0.0.1:${debug.port}/metrics`)).text();
      assert.match(metrics, /^remora_xds_pushes_total\{type="CDS"\} 1$/m);
      assert.match(metrics, /^remora_xds_connected_proxies 1$/m);
      assert.match(metrics, /^remora_xds_pushes_total\{type="EDS"\} 2$/m);
      assert.match(metrics, /^remora_xds_convergence_seconds_count 1$/m);
      assert.match(metrics, /^remora_xds_push_latency_seconds_count 1$/m);
      assert.match(metrics, /^process_resident_memory_bytes [1-9]\d*$/m);
      assert.match(metrics, /^nodejs_heap_size_used_bytes [1-9]\d*$/m);
      assert.equal((await fetch(`http://127.0.0.1:${debug.port}/nope`)).status, 404);

      await server.close();
      const status = await c.status;
      assert.equal(status.code, 0);
      assert.equal(server.status().length, 0);
      c.close();
    } finally {
      await debug.close();
      await server.close();
    }
  });
});

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
