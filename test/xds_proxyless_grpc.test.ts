// A real third-party xDS client: @grpc/grpc-js-xds, in a child process, resolves xds:///<host>:<port> through
// Remora's ADS server (Listener with an api_listener, RouteConfiguration by RDS, EDS Cluster,
// ClusterLoadAssignment), calls a real gRPC server on loopback, and follows an endpoint change to another one.

import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { AdsServer } from '../src/controlplane/xds/ads_server.js';
import { Snapshot, SnapshotCache } from '../src/controlplane/xds/cache.js';
import { XdsResource } from '../src/controlplane/xds/resource.js';
import { XDS_TYPE_URLS } from '../src/xds/protos.js';
import { echoServer, PROXYLESS_NODE, spawnGrpcXdsClient } from './support/grpc_xds_client.js';

const HOST = 'echo.default.svc.cluster.local:7070';
const CLUSTER = 'outbound|7070||echo.default.svc.cluster.local';
const ROUTES = 'echo-routes';
const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

function resource(typeUrl: string, json: Record<string, unknown>): XdsResource {
  const r = XdsResource.fromJson(typeUrl, json);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r.value;
}

function world(backendPort: number): Snapshot {
  return Snapshot.from([
    resource(XDS_TYPE_URLS.listener, {
      name: HOST,
      api_listener: {
        api_listener: {
          '@type': HCM,
          rds: { config_source: { ads: {} }, route_config_name: ROUTES },
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
        },
      },
    }),
    resource(XDS_TYPE_URLS.route, {
      name: ROUTES,
      virtual_hosts: [
        {
          name: 'echo',
          domains: [HOST, 'echo.default.svc.cluster.local'],
          routes: [{ match: { prefix: '' }, route: { cluster: CLUSTER } }],
        },
      ],
    }),
    resource(XDS_TYPE_URLS.cluster, {
      name: CLUSTER,
      type: 'EDS',
      eds_cluster_config: { eds_config: { ads: {} }, service_name: CLUSTER },
      lb_policy: 'ROUND_ROBIN',
    }),
    resource(XDS_TYPE_URLS.endpoint, {
      cluster_name: CLUSTER,
      endpoints: [
        {
          locality: { region: 'local', zone: 'a' },
          load_balancing_weight: 1,
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: backendPort } } } },
          ],
        },
      ],
    }),
  ]);
}

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

it('a grpc-js-xds client resolves through the ADS server and follows an endpoint change', async () => {
  const a = await echoServer('A');
  cleanups.push(() => a.server.forceShutdown());
  const b = await echoServer('B');
  cleanups.push(() => b.server.forceShutdown());
  const cache = new SnapshotCache();
  const ads = await AdsServer.listen({ cache, host: '127.0.0.1', port: 0, debounceMs: 10 });
  cleanups.push(() => ads.close());
  assert.ok(cache.set(PROXYLESS_NODE.id, world(a.port)).ok);

  const client = spawnGrpcXdsClient({ target: HOST, xdsPort: ads.port, maxCalls: 400 });
  cleanups.push(() => client.kill());

  await client.seen('REPLY A');
  const proxy = () => ads.status().find((p) => p.node.id === PROXYLESS_NODE.id);
  assert.equal(proxy()?.node.cluster, PROXYLESS_NODE.cluster, 'the client is listed by its node');
  const synced = () => proxy()?.types.every((t) => t.status === 'SYNCED');
  for (let i = 0; i < 500 && !synced(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(
    proxy()?.types.map((t) => [t.type, t.status]),
    [
      ['CDS', 'SYNCED'],
      ['EDS', 'SYNCED'],
      ['LDS', 'SYNCED'],
      ['RDS', 'SYNCED'],
    ],
  );

  assert.ok(cache.set(PROXYLESS_NODE.id, world(b.port)).ok);
  await client.seen('REPLY B');
  assert.equal(await client.exited, 0, client.stderr());
  assert.doesNotMatch(client.stdout(), /ERROR/, 'no call failed while the endpoints changed');
});
