// Listener versions on real sockets: bound when added (an address in use is refused at once), warming until their
// route tables and new clusters are there while holding the connections they accept, then serving those.

import assert from 'node:assert/strict';
import { createServer, Socket } from 'node:net';
import { test } from 'node:test';
import { until } from '../../../test/support/child.js';
import { canBind, closedPort } from '../../../test/support/upstream.js';
import { translateCluster } from '../../config/cluster.js';
import { translateListener } from '../../config/listener.js';
import type { ClusterConfig, ListenerConfig, RouteConfig } from '../../config/model.js';
import { formatErrors } from '../../config/result.js';
import { translateRouteConfiguration } from '../../config/route.js';
import { Logger } from '../observe/log.js';
import { StatsStore } from '../observe/stats.js';
import { emptyRouteConfig, RouteConfigs } from '../router/route_configs.js';
import { ClusterManager } from '../upstream/cluster_manager.js';
import type { HoldLimits } from './held_connections.js';
import type { NetworkFilter } from './listener.js';
import { type BuiltChains, ListenerManager } from './listener_manager.js';

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

/**
 * A listener on 127.0.0.1 whose chain is labelled `label` (its stat_prefix): with `rds` its HCM waits for that
 * route table, with `cluster` it is a tcp_proxy to that cluster.
 */
function listener(
  name: string,
  label: string,
  opts: { port?: number; rds?: string; cluster?: string; address?: string; ipv4Compat?: boolean } = {},
) {
  const typed =
    opts.cluster !== undefined
      ? { '@type': TCP_PROXY, stat_prefix: label, cluster: opts.cluster }
      : {
          '@type': HCM,
          stat_prefix: label,
          ...(opts.rds !== undefined
            ? { rds: { route_config_name: opts.rds, config_source: { ads: {}, resource_api_version: 'V3' } } }
            : { route_config: { virtual_hosts: [] } }),
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
        };
  const r = translateListener(
    {
      name,
      address: {
        socket_address: {
          address: opts.address ?? '127.0.0.1',
          port_value: opts.port ?? 0,
          ...(opts.ipv4Compat !== undefined && { ipv4_compat: opts.ipv4Compat }),
        },
      },
      filter_chains: [{ filters: [{ name: 'terminal', typed_config: typed }] }],
    },
    '',
  );
  if (!r.ok) assert.fail(formatErrors(r.errors));
  return r.value;
}

/** A STRICT_DNS cluster: it warms until its name resolves. */
function dnsCluster(name: string): ClusterConfig {
  const r = translateCluster(
    {
      name,
      type: 'STRICT_DNS',
      connect_timeout: '1s',
      load_assignment: {
        cluster_name: name,
        endpoints: [
          {
            lb_endpoints: [
              { endpoint: { address: { socket_address: { address: 'backend.test', port_value: 80 } } } },
            ],
          },
        ],
      },
    },
    '',
  );
  if (!r.ok) assert.fail(formatErrors(r.errors));
  return r.value;
}

/** The chain's filter: says its label, then echoes until the client ends. */
class Echo implements NetworkFilter {
  private readonly sockets = new Set<Socket>();
  private drained: (() => void)[] = [];
  constructor(private readonly label: string) {}
  onConnection(s: Socket): void {
    this.sockets.add(s);
    s.once('close', () => {
      this.sockets.delete(s);
      if (this.sockets.size === 0) for (const d of this.drained.splice(0)) d();
    });
    s.on('error', () => undefined);
    s.write(`${this.label}:`);
    s.on('data', (d: Buffer) => s.write(d));
    s.on('end', () => s.end());
    s.resume();
  }
  whenDrained(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((r) => this.drained.push(r));
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
  }
}

function build(config: ListenerConfig): BuiltChains {
  const chains = config.filterChains.map((fc) => {
    const f = fc.filter;
    const label = f.kind === 'tcp_proxy' ? f.tcpProxy.statPrefix : f.hcm.statPrefix;
    return { name: fc.name, match: fc.match, filter: new Echo(label) };
  });
  return { chains, defaultChain: undefined };
}

function setup(hold?: HoldLimits) {
  const store = new StatsStore();
  const routes = new RouteConfigs();
  let answer!: () => void;
  const answered = new Promise<void>((r) => {
    answer = r;
  });
  // The cluster's name resolves when the test says so.
  const lookup = async () => {
    await answered;
    return [{ address: '127.0.0.1', family: 4 }];
  };
  const clusters = new ClusterManager([], store, { lookup, logger: new Logger('off') });
  const m = new ListenerManager({
    store,
    build,
    routeConfigs: routes,
    clusters,
    drainTimeMs: 5000,
    logger: new Logger('off'),
    hold,
  });
  return {
    m,
    routes,
    clusters,
    store,
    resolveDns: answer,
    async close() {
      await m.close();
      await clusters.destroy();
    },
  };
}

/** A client that connects and reads until the connection closes; with `text`, sends it and ends at once. */
function talk(port: number, text?: string) {
  const s = new Socket();
  let got = '';
  let error: string | undefined;
  const done = new Promise<{ got: string; error: string | undefined }>((resolve) => {
    s.on('data', (d: Buffer) => {
      got += d.toString();
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    s.on('close', () => resolve({ got, error }));
  });
  const connected = new Promise<void>((resolve) => s.once('connect', resolve));
  s.connect(port, '127.0.0.1', () => {
    if (text !== undefined) s.end(text);
  });
  return { connected, done, socket: s };
}

/** One route table: every request to `cluster`. */
function routesTo(name: string, cluster: string): RouteConfig {
  const r = translateRouteConfiguration(
    {
      name,
      virtual_hosts: [
        { name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] },
      ],
    },
    '',
  );
  if (!r.ok) assert.fail(formatErrors(r.errors));
  return r.value;
}

test('a warming listener holds its address from the update on, and serves what it held once warm', async () => {
  const t = setup();
  try {
    const port = await closedPort();
    assert.equal(await t.m.upsert(listener('web', 'v1', { port, rds: 'web-routes' })), undefined);
    assert.ok(t.m.isWarming('web'));
    assert.equal(t.m.get('web'), undefined);
    // Accepted: no other process can take the port while the listener warms.
    assert.equal(await canBind(port), false);
    const early = talk(port, 'early bytes');
    await early.connected;
    await until(
      'the connection held',
      () => t.store.gauge(`listener.127.0.0.1_${port}.downstream_pre_cx_active`).value === 1,
    );
    t.routes.set('web-routes', emptyRouteConfig('web-routes'));
    assert.ok(!t.m.isWarming('web'));
    assert.equal(t.m.get('web')?.address.port, port);
    const r = await early.done;
    assert.deepEqual(r, { got: 'v1:early bytes', error: undefined });
    assert.equal(t.store.gauge(`listener.127.0.0.1_${port}.downstream_pre_cx_active`).value, 0);
    assert.deepEqual(await talk(port, 'later').done, { got: 'v1:later', error: undefined });
  } finally {
    await t.close();
  }
});

test('a listener whose address is taken is refused at once, naming it; the running version serves on', async () => {
  const t = setup();
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const taken = (holder.address() as { port: number }).port;
  try {
    assert.equal(await t.m.upsert(listener('web', 'v1')), undefined);
    const port = t.m.get('web')!.address.port;
    // A warming version and a warm one are refused alike: the bind comes first.
    for (const next of [
      listener('web', 'v2', { port: taken, rds: 'r' }),
      listener('web', 'v2', { port: taken }),
    ]) {
      const why = await t.m.upsert(next);
      assert.match(why ?? '', new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${taken}: .*EADDRINUSE`));
      assert.ok(!t.m.isWarming('web'));
      assert.equal(t.m.get('web')!.config.address.port, 0);
      assert.deepEqual(await talk(port, 'x').done, { got: 'v1:x', error: undefined });
    }
    const other = await t.m.upsert(listener('other', 'o', { port: taken }));
    assert.match(other ?? '', /cannot listen on/);
    assert.equal(t.m.get('other'), undefined);
    // Nothing of the refused versions stays bound: once its holder lets go, the address is free.
    await new Promise<void>((r) => holder.close(() => r()));
    assert.equal(await canBind(taken), true);
  } finally {
    if (holder.listening) holder.close();
    await t.close();
  }
});

test('a listener removed while warming frees its port and resets what it held', async () => {
  const t = setup();
  try {
    const port = await closedPort();
    await t.m.upsert(listener('web', 'v1', { port, rds: 'web-routes' }));
    const held = talk(port, 'hello');
    await held.connected;
    await until(
      'the connection held',
      () => t.store.gauge(`listener.127.0.0.1_${port}.downstream_pre_cx_active`).value === 1,
    );
    t.m.remove('web');
    assert.ok(!t.m.isWarming('web'));
    assert.equal(await canBind(port), true);
    const r = await held.done;
    assert.equal(r.got, '');
    assert.equal(r.error, 'ECONNRESET');
    // Its routes arriving later change nothing.
    t.routes.set('web-routes', emptyRouteConfig('web-routes'));
    assert.equal(t.m.get('web'), undefined);
  } finally {
    await t.close();
  }
});

test('a listener warms until the new cluster it sends to is warm', async () => {
  const t = setup();
  try {
    assert.equal(t.clusters.upsert(dnsCluster('backend')), undefined);
    assert.ok(t.clusters.isWarming('backend'));
    const port = await closedPort();
    await t.m.upsert(listener('tcp', 'tcp', { port, cluster: 'backend' }));
    assert.ok(t.m.isWarming('tcp'));
    const held = talk(port, 'ping');
    await held.connected;
    const warm = t.m.whenWarm();
    t.resolveDns();
    await warm;
    assert.deepEqual(await held.done, { got: 'tcp:ping', error: undefined });
    // A cluster with a serving version (here: the warm one) or none at all is nothing to wait for.
    await t.m.upsert(listener('tcp2', 't2', { cluster: 'backend' }));
    await t.m.upsert(listener('tcp3', 't3', { cluster: 'unknown' }));
    assert.ok(!t.m.isWarming('tcp2') && !t.m.isWarming('tcp3'));
  } finally {
    await t.close();
  }
});

test('a listener waits for the new clusters its RDS routes name, once the routes are there', async () => {
  const t = setup();
  try {
    t.clusters.upsert(dnsCluster('backend'));
    await t.m.upsert(listener('web', 'v1', { rds: 'web-routes' }));
    t.routes.set('web-routes', routesTo('web-routes', 'backend'));
    assert.ok(t.m.isWarming('web'));
    t.resolveDns();
    await t.m.whenWarm();
    assert.ok(t.m.get('web') !== undefined);
  } finally {
    await t.close();
  }
});

test('an update on the same address: the running version serves until the new one is warm, on the same socket', async () => {
  const t = setup();
  try {
    await t.m.upsert(listener('web', 'v1'));
    const port = t.m.get('web')!.address.port;
    const open = talk(port);
    await open.connected;
    assert.equal(await t.m.upsert(listener('web', 'v2', { rds: 'v2-routes' })), undefined);
    assert.ok(t.m.isWarming('web'));
    assert.deepEqual(await talk(port, 'a').done, { got: 'v1:a', error: undefined });
    t.routes.set('v2-routes', emptyRouteConfig('v2-routes'));
    assert.ok(!t.m.isWarming('web'));
    assert.equal(t.m.get('web')!.address.port, port);
    assert.deepEqual(await talk(port, 'b').done, { got: 'v2:b', error: undefined });
    // The connection the old version took stays on it.
    open.socket.end('still v1');
    assert.deepEqual(await open.done, { got: 'v1:still v1', error: undefined });
  } finally {
    await t.close();
  }
});

test('a warming version replaced by another on its address hands over its socket and the connections it holds', async () => {
  const t = setup();
  try {
    const port = await closedPort();
    await t.m.upsert(listener('web', 'v1', { port, rds: 'r1' }));
    const held = talk(port, 'hi');
    await held.connected;
    await t.m.upsert(listener('web', 'v2', { port, rds: 'r2' }));
    assert.ok(t.m.isWarming('web'));
    t.routes.set('r1', emptyRouteConfig('r1'));
    assert.ok(t.m.isWarming('web'), 'v1 is gone: its routes warm nothing');
    t.routes.set('r2', emptyRouteConfig('r2'));
    assert.deepEqual(await held.done, { got: 'v2:hi', error: undefined });
  } finally {
    await t.close();
  }
});

test('a warming version replaced by one on another address: its socket is closed once the new one is bound', async () => {
  const t = setup();
  try {
    const [first, second] = [await closedPort(), await closedPort()];
    await t.m.upsert(listener('web', 'v1', { port: first, rds: 'never' }));
    const held = talk(first, 'hi');
    await held.connected;
    await t.m.upsert(listener('web', 'v2', { port: second, rds: 'r2' }));
    assert.equal((await held.done).error, 'ECONNRESET');
    assert.equal(await canBind(first), true);
    assert.equal(await canBind(second), false);
    t.routes.set('r2', emptyRouteConfig('r2'));
    assert.deepEqual(await talk(second, 'x').done, { got: 'v2:x', error: undefined });
  } finally {
    await t.close();
  }
});

test('a change of socket options on the same IP and port: the new socket takes the address, the old connections stay', async () => {
  const t = setup();
  try {
    const port = await closedPort();
    await t.m.upsert(listener('any', 'v6only', { address: '::', port }));
    const v4 = talk(port);
    const v6 = new Socket();
    const v6done = new Promise<string>((resolve) => {
      let got = '';
      v6.on('data', (d: Buffer) => {
        got += d.toString();
      });
      v6.on('close', () => resolve(got));
    });
    v6.connect(port, '::1', () => v6.write('still'));
    await until('the IPv6 connection served', () => t.m.get('any')!.openConnections === 1);
    // IPv4 (127.0.0.1) is refused by the IPv6-only socket until the new version takes the port.
    assert.equal((await v4.done).error, 'ECONNREFUSED');
    assert.equal(
      await t.m.upsert(listener('any', 'compat', { address: '::', port, ipv4Compat: true })),
      undefined,
    );
    assert.deepEqual(await talk(port, 'x').done, { got: 'compat:x', error: undefined });
    v6.end();
    assert.equal(await v6done, 'v6only:still');
  } finally {
    await t.close();
  }
});

test('held connections are bounded in number and in time: past either they are reset', async () => {
  const t = setup({ maxConnections: 2, maxWaitMs: 300 });
  try {
    const port = await closedPort();
    await t.m.upsert(listener('web', 'v1', { port, rds: 'never' }));
    const stat = (n: string) => t.store.counter(`listener.127.0.0.1_${port}.${n}`).value;
    const a = talk(port, 'a');
    const b = talk(port, 'b');
    await until(
      'two held',
      () => t.store.gauge(`listener.127.0.0.1_${port}.downstream_pre_cx_active`).value === 2,
    );
    const c = talk(port, 'c');
    assert.equal((await c.done).error, 'ECONNRESET');
    assert.equal(stat('downstream_cx_overflow'), 1);
    assert.equal((await a.done).error, 'ECONNRESET');
    assert.equal((await b.done).error, 'ECONNRESET');
    assert.equal(stat('downstream_pre_cx_timeout'), 2);
    assert.equal(t.store.gauge(`listener.127.0.0.1_${port}.downstream_pre_cx_active`).value, 0);
    assert.ok(t.m.isWarming('web'), 'the listener itself warms on');
  } finally {
    await t.close();
  }
});

test('close() closes warming sockets, held connections and timers', async () => {
  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const t = setup();
  const port = await closedPort();
  await t.m.upsert(listener('web', 'v1', { port, rds: 'never' }));
  const held = talk(port, 'x');
  await until(
    'the connection held',
    () => t.store.gauge(`listener.127.0.0.1_${port}.downstream_pre_cx_active`).value === 1,
  );
  await t.close();
  assert.equal((await held.done).error, 'ECONNRESET');
  assert.equal(await canBind(port), true);
  const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  assert.ok(after <= before, `timers left: ${after - before}`);
});
