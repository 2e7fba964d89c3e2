// A real third-party xDS client: @grpc/grpc-js-xds, in a child process, resolves xds:///<host>:<port> through
// Remora's ADS server (Listener with an api_listener, RouteConfiguration by RDS, EDS Cluster,
// ClusterLoadAssignment), calls a real gRPC server on loopback, and follows an endpoint change to another one.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { AdsServer } from '../src/controlplane/xds/ads_server.js';
import { Snapshot, SnapshotCache } from '../src/controlplane/xds/cache.js';
import { XdsResource } from '../src/controlplane/xds/resource.js';
import { XDS_TYPE_URLS } from '../src/xds/protos.js';

const HOST = 'echo.default.svc.cluster.local:7070';
const CLUSTER = 'outbound|7070||echo.default.svc.cluster.local';
const ROUTES = 'echo-routes';
const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

const passthrough = (b: Buffer) => b;
const ECHO = {
  Echo: {
    path: '/remora.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: passthrough,
    requestDeserialize: passthrough,
    responseSerialize: passthrough,
    responseDeserialize: passthrough,
  },
} as const;

/** A gRPC server whose one method answers with `name`. */
async function echoServer(name: string): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  server.addService(ECHO, {
    Echo: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(name)),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return { port, server };
}

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

/** Calls the target every 50 ms (at most 400 times), printing each answer; stops once it has heard "B". */
const CLIENT = `
import { createRequire } from 'node:module';
const require = createRequire(process.env.REMORA_TEST_BASE);
const grpc = require('@grpc/grpc-js');
require('@grpc/grpc-js-xds').register();
const id = (b) => b;
const def = { Echo: { path: '/remora.test.Echo/Echo', requestStream: false, responseStream: false,
  requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } };
const Client = grpc.makeGenericClientConstructor(def, 'Echo');
const client = new Client('xds:///${HOST}', grpc.credentials.createInsecure());
for (let i = 0; i < 400; i++) {
  const reply = await new Promise((resolve) =>
    client.Echo(Buffer.from('ping'), { deadline: Date.now() + 5000 }, (err, res) =>
      resolve(err ? 'ERROR ' + err.code + ' ' + err.details : 'REPLY ' + res.toString())));
  console.log(reply);
  if (reply === 'REPLY B') break;
  await new Promise((r) => setTimeout(r, 50));
}
client.close();
process.exit(0);
`;

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
  assert.ok(cache.set('proxyless-1', world(a.port)).ok);

  const bootstrap = {
    xds_servers: [
      {
        server_uri: `127.0.0.1:${ads.port}`,
        channel_creds: [{ type: 'insecure' }],
        server_features: ['xds_v3'],
      },
    ],
    node: { id: 'proxyless-1', cluster: 'echo-client', locality: { zone: 'a' } },
  };
  const child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT], {
    env: {
      ...process.env,
      GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap),
      REMORA_TEST_BASE: import.meta.url,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  cleanups.push(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  const waiting = new Set<() => void>();
  child.stdout.on('data', (d) => {
    out += d;
    for (const check of [...waiting]) check();
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const seen = (line: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!out.split('\n').includes(line)) return;
        waiting.delete(check);
        resolve();
      };
      waiting.add(check);
      child.once('exit', () => reject(new Error(`client exited before "${line}":\n${out}\n${err}`)));
      check();
    });

  await seen('REPLY A');
  const proxy = () => ads.status().find((p) => p.node.id === 'proxyless-1');
  assert.equal(proxy()?.node.cluster, 'echo-client', 'the client is listed by its node');
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

  assert.ok(cache.set('proxyless-1', world(b.port)).ok);
  await seen('REPLY B');
  assert.equal(await exited, 0, err);
  assert.doesNotMatch(out, /ERROR/, 'no call failed while the endpoints changed');
});
