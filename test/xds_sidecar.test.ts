// The sidecar driven by xDS: a real proxy whose bootstrap has only ads_config, fed by an in-process ADS server
// holding hand-written resources, with real upstream HTTP servers on loopback.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AdsServer } from '../src/controlplane/xds/ads_server.js';
import { type ChangeListener, Snapshot, SnapshotCache } from '../src/controlplane/xds/cache.js';
import type { ProxyServer } from '../src/dataplane/server.js';
import { XDS_TYPE_URLS } from '../src/xds/protos.js';
import { REMORA_BIN, sleep, until } from './support/child.js';
import { canBind, closedPort, startUpstream, type Upstream } from './support/upstream.js';
import {
  adsBootstrap,
  assignment,
  type ControlPlane,
  edsCluster,
  get,
  loadLoop,
  NODE_ID,
  type Resources,
  rdsListener,
  snapshotOf,
  startControlPlane,
  startXdsProxy,
  weightedRoute,
} from './support/xds.js';

describe('a sidecar driven by ADS (state of the world)', () => {
  let a: Upstream;
  let b: Upstream;
  let cp: ControlPlane;
  let proxy: ProxyServer;
  let dir: string;
  let resources: Resources;

  const port = () => proxy.listenerAddress('web')!.port;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'remora-xds-'));
    a = await startUpstream('a');
    b = await startUpstream('b');
    resources = {
      clusters: [edsCluster('a'), edsCluster('b')],
      endpoints: [assignment('a', [a.port]), assignment('b', [b.port])],
      listeners: [rdsListener('web', 'web-routes')],
      routes: [weightedRoute('web-routes', { a: 100, b: 0 })],
    };
    cp = await startControlPlane(resources);
    proxy = await startXdsProxy(adsBootstrap([cp.port]), { cacheDir: dir });
    await proxy.live;
  });

  after(async () => {
    await proxy?.close();
    await cp?.close();
    await a?.close();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gets its listeners, routes, clusters and endpoints from the control plane and serves', async () => {
    const r = await get(port());
    assert.equal(r.status, 200);
    assert.equal(r.upstream, 'a');
    const admin = proxy.adminAddress!;
    const ready = await fetch(`http://127.0.0.1:${admin.port}/ready`);
    assert.equal(ready.status, 200);
    await ready.text();
    const status = cp.server.status();
    assert.equal(status.length, 1);
    assert.equal(status[0]!.node.id, NODE_ID);
    assert.deepEqual(status[0]!.node.metadata, { NAMESPACE: 'default', LABELS: { app: 'web' } });
    assert.deepEqual(
      status[0]!.types.map((t) => [t.type, t.status]),
      [
        ['CDS', 'SYNCED'],
        ['EDS', 'SYNCED'],
        ['LDS', 'SYNCED'],
        ['RDS', 'SYNCED'],
      ],
    );
    assert.deepEqual(status[0]!.types.find((t) => t.type === 'EDS')!.subscribed, ['a', 'b']);
    assert.deepEqual(status[0]!.types.find((t) => t.type === 'RDS')!.subscribed, ['web-routes']);
  });

  it('/config_dump shows the dynamic resources with version_info and last_updated', async () => {
    const admin = proxy.adminAddress!;
    const res = await fetch(`http://127.0.0.1:${admin.port}/config_dump?include_eds`);
    const dump = (await res.json()) as { configs: Record<string, unknown>[] };
    const byType = (t: string) => dump.configs.find((c) => String(c['@type']).endsWith(t))!;
    const clusters = byType('ClustersConfigDump') as {
      version_info: string;
      dynamic_active_clusters: { version_info: string; cluster: { name: string }; last_updated: string }[];
    };
    assert.deepEqual(clusters.dynamic_active_clusters.map((c) => c.cluster.name).sort(), ['a', 'b']);
    assert.ok(clusters.version_info.length > 0);
    assert.equal(clusters.dynamic_active_clusters[0]!.version_info, clusters.version_info);
    assert.ok(!Number.isNaN(Date.parse(clusters.dynamic_active_clusters[0]!.last_updated)));
    const listeners = byType('ListenersConfigDump') as {
      dynamic_listeners: {
        name: string;
        active_state: { version_info: string; listener: { name: string } };
      }[];
    };
    assert.equal(listeners.dynamic_listeners[0]!.name, 'web');
    assert.equal(listeners.dynamic_listeners[0]!.active_state.listener.name, 'web');
    const routes = byType('RoutesConfigDump') as {
      dynamic_route_configs: { route_config: { name: string } }[];
    };
    assert.deepEqual(
      routes.dynamic_route_configs.map((r) => r.route_config.name),
      ['web-routes'],
    );
    const eds = byType('EndpointsConfigDump') as {
      dynamic_endpoint_configs: { endpoint_config: { cluster_name: string } }[];
    };
    assert.deepEqual(eds.dynamic_endpoint_configs.map((e) => e.endpoint_config.cluster_name).sort(), [
      'a',
      'b',
    ]);
  });

  it('a route change (weights 100/0 to 0/100) under continuous load loses no request', async () => {
    const load = loadLoop(port(), 4);
    await until('traffic to flow', () => load.total > 50);
    resources = { ...resources, routes: [weightedRoute('web-routes', { a: 0, b: 100 })] };
    cp.set(resources);
    await until('traffic to move to b', () => load.last === 'b');
    const before = load.total;
    await until('more traffic after the change', () => load.total > before + 50);
    const result = await load.stop();
    assert.deepEqual(result.errors, []);
    const answered = Object.values(result.counts).reduce((s, n) => s + n, 0);
    assert.equal(answered, result.total, JSON.stringify(result));
    assert.deepEqual(Object.keys(result.counts).sort(), ['200 a', '200 b'], JSON.stringify(result.counts));
    // Once b answered, a never did again: the switch is atomic for new requests.
    const after = await get(port());
    assert.equal(after.upstream, 'b');
  });

  it('an endpoint change shifts traffic within a second', async () => {
    const c = await startUpstream('c');
    try {
      const changedAt = Date.now();
      resources = { ...resources, endpoints: [assignment('a', [a.port]), assignment('b', [c.port])] };
      cp.set(resources);
      await until(
        'traffic to reach the new endpoint',
        async () => (await get(port())).upstream === 'c',
        5000,
      );
      const took = Date.now() - changedAt;
      assert.ok(took < 1000, `took ${took} ms`);
      // Back to b, for the tests after this one.
      resources = { ...resources, endpoints: [assignment('a', [a.port]), assignment('b', [b.port])] };
      cp.set(resources);
      await until('traffic back on b', async () => (await get(port())).upstream === 'b');
    } finally {
      await c.close();
    }
  });

  it('an invalid resource is NACKed with its field path; traffic stays on the last good config', async () => {
    const bad = weightedRoute('web-routes', { a: 100, b: 0 });
    (bad.virtual_hosts as Record<string, unknown>[])[0]!.require_tls = 'ALL';
    cp.set({ ...resources, routes: [bad] });
    await until('the NACK', () => {
      const rds = cp.server.status()[0]?.types.find((t) => t.type === 'RDS');
      return rds?.lastNack !== undefined;
    });
    const rds = cp.server.status()[0]!.types.find((t) => t.type === 'RDS')!;
    assert.match(
      rds.lastNack!.message,
      /RDS\["web-routes"\]\.virtual_hosts\[0\]\.require_tls: field not supported/,
    );
    assert.equal(rds.status, 'STALE');
    for (let i = 0; i < 10; i++) assert.equal((await get(port())).upstream, 'b');
    const admin = proxy.adminAddress!;
    const stats = await (await fetch(`http://127.0.0.1:${admin.port}/stats`)).text();
    assert.match(stats, /^rds\.update_rejected: [1-9]/m);
    // A good version after the bad one is taken again.
    cp.set(resources);
    await until('the good version ACKed', () => {
      const t = cp.server.status()[0]?.types.find((x) => x.type === 'RDS');
      return t?.status === 'SYNCED';
    });
  });

  it('a listener added and removed at run time', async () => {
    const extra = rdsListener('extra', 'extra-routes');
    cp.set({
      ...resources,
      listeners: [...resources.listeners!, extra],
      routes: [...resources.routes!, weightedRoute('extra-routes', { a: 1 })],
    });
    await until('the new listener', () => proxy.listenerAddress('extra') !== undefined);
    const extraPort = proxy.listenerAddress('extra')!.port;
    assert.equal((await get(extraPort)).upstream, 'a');
    cp.set(resources);
    await until('the listener gone', () => proxy.listenerAddress('extra') === undefined);
    await assert.rejects(get(extraPort), /ECONNREFUSED/);
    assert.equal((await get(port())).upstream, 'b');
  });

  it('a listener still waiting for its routes that cannot bind is NACKed at once, not ACKed and lost', async () => {
    // Its routes come in the same snapshot, after LDS: the sidecar gets the listener before them and must warm.
    cp.set({
      ...resources,
      listeners: [...resources.listeners!, rdsListener('busy-warming', 'busy-routes', { port: a.port })],
      routes: [...resources.routes!, weightedRoute('busy-routes', { a: 1 })],
    });
    await until('the NACK', () => {
      const lds = cp.server.status()[0]?.types.find((t) => t.type === 'LDS');
      return lds?.lastNack !== undefined && /busy-warming/.test(lds.lastNack.message);
    });
    const lds = cp.server.status()[0]!.types.find((t) => t.type === 'LDS')!;
    assert.match(lds.lastNack!.message, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${a.port}`));
    assert.equal(lds.status, 'STALE');
    assert.equal((await get(port())).upstream, 'b');
    cp.set(resources);
    await until(
      'LDS synced again',
      () => cp.server.status()[0]?.types.find((t) => t.type === 'LDS')?.status === 'SYNCED',
    );
  });

  it('a listener that cannot bind is NACKed and shown in /config_dump', async () => {
    cp.set({
      ...resources,
      listeners: [...resources.listeners!, rdsListener('busy', 'web-routes', { port: a.port })],
    });
    await until('the NACK', () => {
      const lds = cp.server.status()[0]?.types.find((t) => t.type === 'LDS');
      return lds?.lastNack !== undefined && /LDS\["busy"\]/.test(lds.lastNack.message);
    });
    const lds = cp.server.status()[0]!.types.find((t) => t.type === 'LDS')!;
    assert.match(
      lds.lastNack!.message,
      new RegExp(`LDS\\["busy"\\]: cannot listen on 127\\.0\\.0\\.1:${a.port}`),
    );
    const admin = proxy.adminAddress!;
    const res = await fetch(`http://127.0.0.1:${admin.port}/config_dump?resource=dynamic_listeners`);
    const dump = (await res.json()) as { configs: { name: string; error_state?: { details: string } }[] };
    const busy = dump.configs.find((c) => c.name === 'busy')!;
    assert.match(busy.error_state!.details, /cannot listen/);
    assert.equal((await get(port())).upstream, 'b');
    cp.set(resources);
    await until(
      'LDS synced again',
      () => cp.server.status()[0]?.types.find((t) => t.type === 'LDS')?.status === 'SYNCED',
    );
  });

  it('an in-flight request survives a change of its listener and of its cluster', async () => {
    const slow = await startUpstream('slow', (_req, res) => {
      setTimeout(() => {
        res.setHeader('x-upstream', 'slow');
        res.end('done');
      }, 600);
    });
    try {
      resources = {
        ...resources,
        clusters: [...resources.clusters!, edsCluster('slow')],
        endpoints: [...resources.endpoints!, assignment('slow', [slow.port])],
        routes: [weightedRoute('web-routes', { slow: 1 })],
      };
      cp.set(resources);
      await until('routes to the slow upstream', async () => (await get(port())).upstream === 'slow');
      const before = port();
      const oldCluster = proxy.clusterManager.get('slow');
      const inFlight = get(port());
      await sleep(100);
      // A new version of the listener (another stat prefix): same address, so it keeps the socket. And a new
      // version of the cluster the request is on.
      resources = {
        ...resources,
        clusters: [edsCluster('a'), edsCluster('b'), edsCluster('slow', { connect_timeout: '2s' })],
        listeners: [rdsListener('web', 'web-routes', { hcm: { stat_prefix: 'web-v2' } })],
      };
      cp.set(resources);
      await until('the new cluster', () => proxy.clusterManager.get('slow') !== oldCluster);
      const r = await inFlight;
      assert.equal(r.status, 200);
      assert.equal(r.body, 'done');
      assert.equal(port(), before);
      const next = await get(port());
      assert.equal(next.status, 200);
      assert.ok(proxy.stats.counter('http.web-v2.downstream_rq_total').value >= 1);
      assert.equal(proxy.clusterManager.get('slow')!.config.connectTimeoutMs, 2000);
    } finally {
      await slow.close();
    }
  });
});

describe('a sidecar without its control plane', () => {
  let a: Upstream;
  let b: Upstream;
  let dir: string;
  const cleanup: (() => Promise<unknown>)[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'remora-xds-'));
    a = await startUpstream('a');
    b = await startUpstream('b');
  });

  after(async () => {
    for (const c of cleanup.reverse()) await c();
    await a?.close();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const resources = (weights: Record<string, number>): Resources => ({
    clusters: [edsCluster('a'), edsCluster('b')],
    endpoints: [assignment('a', [a.port]), assignment('b', [b.port])],
    listeners: [rdsListener('web', 'web-routes')],
    routes: [weightedRoute('web-routes', weights)],
  });

  it('keeps serving when the control plane goes away, and follows it when it is back', async () => {
    const cp = await startControlPlane(resources({ a: 1 }));
    const proxy = await startXdsProxy(adsBootstrap([cp.port]), { cacheDir: join(dir, 'one') });
    cleanup.push(() => proxy.close());
    await proxy.live;
    const port = proxy.listenerAddress('web')!.port;
    assert.equal((await get(port)).upstream, 'a');
    await cp.close();
    await until('the stream to notice', () => proxy.stats.gauge('control_plane.connected_state').value === 0);
    for (let i = 0; i < 5; i++) assert.equal((await get(port)).upstream, 'a');
    const again = await startControlPlane(resources({ b: 1 }), cp.port);
    cleanup.push(() => again.close());
    await until(
      'the proxy to reconnect and apply the new routes',
      async () => (await get(port)).upstream === 'b',
    );
  });

  it('restarted while the control plane is down, it boots from its cache and serves', async () => {
    const cacheDir = join(dir, 'two');
    const cp = await startControlPlane(resources({ b: 1 }));
    const first = await startXdsProxy(adsBootstrap([cp.port]), { cacheDir });
    await first.live;
    await first.close();
    await cp.close();
    // The same bootstrap, the same (now dead) control plane address.
    const second = await startXdsProxy(adsBootstrap([cp.port]), { cacheDir });
    cleanup.push(() => second.close());
    await second.live;
    const admin = second.adminAddress!;
    const ready = await fetch(`http://127.0.0.1:${admin.port}/ready`);
    assert.equal(ready.status, 200);
    await ready.text();
    assert.equal(second.stats.gauge('control_plane.connected_state').value, 0);
    const r = await get(second.listenerAddress('web')!.port);
    assert.equal(r.status, 200);
    assert.equal(r.upstream, 'b');
  });

  it('/ready stays 503 while no config has been applied', async () => {
    const cp = await startControlPlane(resources({ a: 1 }));
    const deadPort = cp.port;
    await cp.close();
    const proxy = await startXdsProxy(adsBootstrap([deadPort]), { cacheDir: join(dir, 'empty') });
    cleanup.push(() => proxy.close());
    const admin = proxy.adminAddress!;
    const ready = await fetch(`http://127.0.0.1:${admin.port}/ready`);
    assert.equal(ready.status, 503);
    assert.equal((await ready.text()).trim(), 'INITIALIZING');
    const back = await startControlPlane(resources({ a: 1 }), deadPort);
    cleanup.push(() => back.close());
    await proxy.live;
    const live = await fetch(`http://127.0.0.1:${admin.port}/ready`);
    assert.equal(live.status, 200);
    await live.text();
  });

  it('given two control-plane addresses, it fails over to the second when the first dies', async () => {
    const one = await startControlPlane(resources({ a: 1 }));
    const two = await startControlPlane(resources({ a: 1 }));
    cleanup.push(
      () => one.close(),
      () => two.close(),
    );
    const proxy = await startXdsProxy(adsBootstrap([one.port, two.port]), { cacheDir: join(dir, 'three') });
    cleanup.push(() => proxy.close());
    await proxy.live;
    assert.equal(one.server.status().length, 1);
    assert.equal(two.server.status().length, 0);
    const port = proxy.listenerAddress('web')!.port;
    await one.close();
    await until('the proxy on the second control plane', () => two.server.status().length === 1);
    two.set(resources({ b: 1 }));
    await until('a change from the second control plane', async () => (await get(port)).upstream === 'b');
  });
});

describe('a sidecar driven by ADS (delta, google_grpc)', () => {
  it('gets its config, follows changes, and NACKs an invalid resource', async () => {
    const a = await startUpstream('a');
    const b = await startUpstream('b');
    const base: Resources = {
      clusters: [edsCluster('a'), edsCluster('b')],
      endpoints: [assignment('a', [a.port]), assignment('b', [b.port])],
      listeners: [rdsListener('web', 'web-routes')],
      routes: [weightedRoute('web-routes', { a: 1 })],
    };
    const cp = await startControlPlane(base);
    const proxy = await startXdsProxy(adsBootstrap([cp.port], { delta: true, googleGrpc: true }));
    try {
      await proxy.live;
      const port = proxy.listenerAddress('web')!.port;
      assert.equal((await get(port)).upstream, 'a');
      assert.equal(cp.server.status()[0]!.protocol, 'delta');
      cp.set({ ...base, routes: [weightedRoute('web-routes', { b: 1 })] });
      await until('the new routes', async () => (await get(port)).upstream === 'b');
      // A cluster removed by delta goes away; its endpoints are no longer subscribed.
      cp.set({
        ...base,
        clusters: [edsCluster('b')],
        endpoints: [assignment('b', [b.port])],
        routes: [weightedRoute('web-routes', { b: 1 })],
      });
      await until('cluster a removed', () => proxy.clusterManager.get('a') === undefined);
      const bad = edsCluster('c', { lb_policy: 'CLUSTER_PROVIDED' });
      cp.set({
        ...base,
        clusters: [edsCluster('b'), bad],
        endpoints: [assignment('b', [b.port]), assignment('c', [a.port])],
        routes: [weightedRoute('web-routes', { b: 1 })],
      });
      await until('the NACK', () => cp.server.status()[0]!.types.some((t) => t.lastNack !== undefined));
      const cds = cp.server.status()[0]!.types.find((t) => t.type === 'CDS')!;
      assert.match(cds.lastNack!.message, /CDS\["c"\]\.lb_policy: value "CLUSTER_PROVIDED" is not supported/);
      assert.equal((await get(port)).upstream, 'b');
    } finally {
      await proxy.close();
      await cp.close();
      await a.close();
      await b.close();
    }
  });
});

describe('remora proxy --xds-cache-dir', () => {
  it('the command boots from its cache while the control plane is down', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'remora-xds-cli-'));
    const a = await startUpstream('a');
    const cp = await startControlPlane({
      clusters: [edsCluster('a')],
      endpoints: [assignment('a', [a.port])],
      listeners: [rdsListener('web', 'web-routes')],
      routes: [weightedRoute('web-routes', { a: 1 })],
    });
    const adminPort = await closedPort();
    const config = adsBootstrap([cp.port]) as { admin: unknown };
    config.admin = { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } };
    const file = join(dir, 'bootstrap.json');
    writeFileSync(file, JSON.stringify(config));
    const cacheDir = join(dir, 'cache');
    const run = async () => {
      const proc = spawn(process.execPath, [REMORA_BIN, 'proxy', '-c', file, '--xds-cache-dir', cacheDir], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      proc.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
      });
      const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
      await until('the proxy to be ready', async () => {
        if (proc.exitCode !== null) throw new Error(`remora proxy exited:\n${err}`);
        try {
          const r = await fetch(`http://127.0.0.1:${adminPort}/ready`);
          await r.text();
          return r.status === 200;
        } catch {
          return false;
        }
      });
      const listeners = (await (
        await fetch(`http://127.0.0.1:${adminPort}/listeners?format=json`)
      ).json()) as {
        listener_statuses: { name: string; local_address: { socket_address: { port_value: number } } }[];
      };
      const web = listeners.listener_statuses.find((l) => l.name === 'web')!;
      return { proc, exited, port: web.local_address.socket_address.port_value, stderr: () => err };
    };
    try {
      const first = await run();
      assert.equal((await get(first.port)).upstream, 'a');
      first.proc.kill('SIGTERM');
      assert.equal(await first.exited, 0);
      await cp.close();
      const second = await run();
      try {
        assert.equal((await get(second.port)).upstream, 'a');
        assert.match(second.stderr(), /applied the xDS config cached on disk/);
      } finally {
        second.proc.kill('SIGKILL');
        await second.exited;
      }
    } finally {
      await cp.close();
      await a.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a bootstrap listener whose routes come by RDS', () => {
  it('subscribes to the route table its static listener names, and serves clusters from CDS', async () => {
    const a = await startUpstream('a');
    const cp = await startControlPlane({
      clusters: [edsCluster('a')],
      endpoints: [assignment('a', [a.port])],
      routes: [weightedRoute('static-routes', { a: 1 })],
    });
    const config = adsBootstrap([cp.port]) as {
      dynamic_resources: Record<string, unknown>;
      static_resources: Record<string, unknown>;
    };
    delete config.dynamic_resources.lds_config;
    config.static_resources.listeners = [rdsListener('gateway', 'static-routes')];
    const proxy = await startXdsProxy(config);
    try {
      await proxy.live;
      const port = proxy.listenerAddress('gateway')!.port;
      await until('the route table', async () => (await get(port)).upstream === 'a');
      const types = cp.server.status()[0]!.types.map((t) => t.type);
      assert.deepEqual(types, ['CDS', 'EDS', 'RDS']);
    } finally {
      await proxy.close();
      await cp.close();
      await a.close();
    }
  });
});

/** A snapshot cache that keeps some resources back from its proxies until released: a control plane slow to send them. */
class WithholdingCache extends SnapshotCache {
  private readonly withheld = new Set<string>();
  private readonly watchers = new Set<ChangeListener>();

  withhold(typeUrl: string, name: string): void {
    this.withheld.add(`${typeUrl} ${name}`);
  }

  /** Sends what was withheld, as a change of the snapshot. */
  release(typeUrl: string, name: string): void {
    this.withheld.delete(`${typeUrl} ${name}`);
    for (const key of this.keys()) for (const w of [...this.watchers]) w(key, this.get(key)!, new Map());
  }

  override get(key: string): Snapshot | undefined {
    const s = super.get(key);
    if (s === undefined || this.withheld.size === 0) return s;
    return Snapshot.from(
      s
        .typeUrls()
        .flatMap((t) => [...s.resources(t).values()].filter((r) => !this.withheld.has(`${t} ${r.name}`))),
    );
  }

  override onChange(listener: ChangeListener): () => void {
    this.watchers.add(listener);
    const cancel = super.onChange(listener);
    return () => {
      this.watchers.delete(listener);
      cancel();
    };
  }
}

describe('a listener is bound when LDS adds it, and serves once warm', () => {
  let a: Upstream;
  let cache: WithholdingCache;
  let ads: AdsServer;
  let proxy: ProxyServer;
  let base: Resources;

  const lds = () => ads.status()[0]?.types.find((t) => t.type === 'LDS');
  const warming = (name: string) =>
    proxy.dynamicResources()?.LDS.resources.some((r) => r.name === name && r.warming) === true;
  const set = (r: Resources) => {
    const result = cache.set(NODE_ID, snapshotOf(r));
    if (!result.ok) throw new Error('inconsistent test snapshot');
  };
  const held = (port: number) =>
    proxy.stats.gauge(`listener.127.0.0.1_${port}.downstream_pre_cx_active`).value;

  before(async () => {
    a = await startUpstream('a');
    base = {
      clusters: [edsCluster('a')],
      endpoints: [assignment('a', [a.port])],
      listeners: [rdsListener('web', 'web-routes')],
      routes: [weightedRoute('web-routes', { a: 1 })],
    };
    cache = new WithholdingCache();
    set(base);
    ads = await AdsServer.listen({ cache, host: '127.0.0.1', port: 0, debounceMs: 5, maxDebounceMs: 50 });
    proxy = await startXdsProxy(adsBootstrap([ads.port]));
    await proxy.live;
  });

  after(async () => {
    await proxy?.close();
    await ads?.close();
    await a?.close();
  });

  it('one whose cluster waits for its endpoints holds its port from the ACK on, and serves a connection opened meanwhile', async () => {
    const port = await closedPort();
    cache.withhold(XDS_TYPE_URLS.endpoint, 'late');
    set({
      clusters: [...base.clusters!, edsCluster('late')],
      endpoints: [...base.endpoints!, assignment('late', [a.port])],
      listeners: [...base.listeners!, rdsListener('late', 'late-routes', { port })],
      routes: [...base.routes!, weightedRoute('late-routes', { late: 1 })],
    });
    await until(
      'the listener warming, its update ACKed',
      () => warming('late') && lds()?.status === 'SYNCED',
    );
    assert.equal(proxy.listenerAddress('late'), undefined);
    // Nothing can take the address between the ACK and the listener serving.
    assert.equal(await canBind(port), false);
    const early = get(port);
    await until('the connection held', () => held(port) === 1);
    cache.release(XDS_TYPE_URLS.endpoint, 'late');
    const r = await early;
    assert.equal(r.status, 200);
    assert.equal(r.upstream, 'a');
    assert.equal(proxy.listenerAddress('late')?.port, port);
    assert.ok(!warming('late'));
    assert.equal(held(port), 0);
    set(base);
    await until('the listener gone', () => proxy.listenerAddress('late') === undefined);
  });

  it('one removed while warming frees its port and resets the connection it held', async () => {
    const port = await closedPort();
    cache.withhold(XDS_TYPE_URLS.route, 'gone-routes');
    set({
      ...base,
      listeners: [...base.listeners!, rdsListener('gone', 'gone-routes', { port })],
      routes: [...base.routes!, weightedRoute('gone-routes', { a: 1 })],
    });
    try {
      await until('the listener warming', () => warming('gone'));
      assert.equal(await canBind(port), false);
      const client = new Socket();
      const closed = new Promise<string | undefined>((resolve) => {
        let code: string | undefined;
        client.on('error', (err: NodeJS.ErrnoException) => {
          code = err.code;
        });
        client.on('close', () => resolve(code));
      });
      client.connect(port, '127.0.0.1');
      await until('the connection held', () => held(port) === 1);
      set(base);
      await until('the listener gone', () => !warming('gone') && proxy.listenerAddress('gone') === undefined);
      assert.equal(await closed, 'ECONNRESET');
      assert.equal(await canBind(port), true);
      assert.equal((await get(proxy.listenerAddress('web')!.port)).upstream, 'a');
    } finally {
      cache.release(XDS_TYPE_URLS.route, 'gone-routes');
    }
  });

  it('a change of a listener to an address another server holds is NACKed; its running version serves on', async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const taken = (holder.address() as { port: number }).port;
    const port = proxy.listenerAddress('web')!.port;
    try {
      set({ ...base, listeners: [rdsListener('web', 'web-routes', { port: taken })] });
      await until('the NACK', () => lds()?.lastNack !== undefined);
      assert.match(
        lds()!.lastNack!.message,
        new RegExp(`LDS\\["web"\\]: cannot listen on 127\\.0\\.0\\.1:${taken}`),
      );
      assert.equal(lds()!.status, 'STALE');
      assert.equal(proxy.listenerAddress('web')!.port, port);
      assert.ok(!warming('web'));
      assert.equal((await get(port)).upstream, 'a');
      // The refused version left nothing bound: once the holder lets go, the address is free.
      await new Promise<void>((r) => holder.close(() => r()));
      assert.equal(await canBind(taken), true);
    } finally {
      if (holder.listening) holder.close();
      set(base);
      await until('LDS synced again', () => lds()?.status === 'SYNCED');
    }
  });
});
