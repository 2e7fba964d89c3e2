// Everything the generator emits for a sidecar passes Remora's own data-plane translators after the trip through
// protobuf that a proxy sees (so no proxy NACKs it), and decodes back to exactly the JSON that was generated.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { translateCluster, translateListener, translateRouteConfiguration } from '../../config/bootstrap.js';
import { translateClusterLoadAssignment } from '../../config/endpoints.js';
import { formatErrors } from '../../config/result.js';
import { decodeAny, encodeResource, XDS_TYPE_URLS } from '../../xds/protos.js';
import { analyzeDir } from '../analyze.js';
import type { MeshSnapshot } from '../model/snapshot.js';
import { Snapshot } from '../xds/cache.js';
import { missingReferences } from '../xds/consistency.js';
import { encodeConfig } from './encode.js';
import { generate } from './generate.js';
import type { ProxyGroup } from './identity.js';
import { syntheticMesh } from './mesh.fixture.js';
import type { Json } from './names.js';

const EXAMPLES = fileURLToPath(new URL('../../../../examples/mesh', import.meta.url));

const PARTS = [
  ['listeners', XDS_TYPE_URLS.listener, translateListener],
  ['routes', XDS_TYPE_URLS.route, translateRouteConfiguration],
  ['clusters', XDS_TYPE_URLS.cluster, translateCluster],
  ['endpoints', XDS_TYPE_URLS.endpoint, translateClusterLoadAssignment],
] as const;

/** Generates for `proxy`, and checks every resource; returns how many there were. */
function checkProxy(mesh: MeshSnapshot, proxy: ProxyGroup): number {
  const config = generate(mesh, proxy);
  let n = 0;
  for (const [part, typeUrl, translate] of PARTS) {
    for (const json of config[part] as readonly Json[]) {
      const name = String(json.name ?? json.cluster_name);
      const where = `${proxy.kind} ${proxy.namespace} ${JSON.stringify(proxy.labels)} ${part}[${name}]`;
      const encoded = encodeResource(typeUrl, json);
      assert.ok(encoded.ok, `${where}: ${!encoded.ok && formatErrors(encoded.errors)}`);
      const decoded = decodeAny(encoded.value);
      assert.ok(decoded.ok, `${where}: ${!decoded.ok && formatErrors(decoded.errors)}`);
      assert.deepEqual(decoded.value, json, `${where}: the protobuf round trip changes it`);
      if (proxy.kind === 'sidecar') {
        const r = translate(decoded.value, `${part}[${name}]`);
        assert.ok(r.ok, `${where}: a Remora sidecar would NACK it:\n${!r.ok && formatErrors(r.errors)}`);
      }
      n++;
    }
  }
  const resources = encodeConfig(config);
  assert.ok(resources.ok);
  const snapshot = Snapshot.of(resources.value);
  assert.ok(snapshot.ok, 'no two resources of a type share a name');
  assert.deepEqual(
    missingReferences((t) => snapshot.value.resources(t)),
    [],
    'every EDS and RDS name is there',
  );
  return n;
}

test('examples/mesh: every resource of every kind of proxy passes the sidecar translators', async () => {
  const { snapshot } = await analyzeDir(EXAMPLES);
  const proxies: ProxyGroup[] = [
    { kind: 'sidecar', namespace: 'demo', labels: { app: 'hello' }, ipFamilies: ['v4'] },
    { kind: 'sidecar', namespace: 'demo', labels: { app: 'echo', version: 'v2' }, ipFamilies: ['v4', 'v6'] },
    { kind: 'sidecar', namespace: 'elsewhere', labels: {}, ipFamilies: [] },
    { kind: 'grpc', namespace: 'demo', labels: {}, ipFamilies: [] },
    {
      kind: 'sidecar',
      namespace: 'demo',
      labels: { app: 'hello' },
      ipFamilies: ['v4'],
      interception: {
        mode: 'NONE',
        outboundBindAddress: '127.0.0.2',
        inbound: { address: '127.0.0.1', port: 15006 },
      },
    },
  ];
  for (const p of proxies) assert.ok(checkProxy(snapshot, p) > 0);
});

test('a synthetic mesh with every supported field: every resource passes the sidecar translators', () => {
  const mesh = syntheticMesh(3, 12);
  const proxies: ProxyGroup[] = [];
  for (const ns of ['ns0', 'ns1', 'ns2', 'other']) {
    proxies.push({ kind: 'sidecar', namespace: ns, labels: {}, ipFamilies: ['v4'] });
    proxies.push({
      kind: 'sidecar',
      namespace: ns,
      labels: { app: 'svc3', version: 'v1' },
      ipFamilies: ['v6'],
    });
    // A workload with a mesh identity: mTLS chains per PeerAuthentication.
    proxies.push({
      kind: 'sidecar',
      namespace: ns,
      labels: { app: 'svc3', version: 'v1', 'security.istio.io/tlsMode': 'istio' },
      ipFamilies: ['v4'],
      trustDomain: 'example.org',
    });
    proxies.push({ kind: 'grpc', namespace: ns, labels: {}, ipFamilies: [] });
    // Without capture: bound listeners, with and without an inbound listener.
    proxies.push({
      kind: 'sidecar',
      namespace: ns,
      labels: { app: 'svc1', version: 'v2' },
      ipFamilies: ['v4'],
      interception: {
        mode: 'NONE',
        outboundBindAddress: '127.0.0.2',
        inbound: { address: '127.0.0.1', port: 15006 },
      },
    });
    proxies.push({
      kind: 'sidecar',
      namespace: ns,
      labels: {},
      ipFamilies: ['v6'],
      interception: { mode: 'NONE', outboundBindAddress: '::1', inbound: undefined },
    });
  }
  let total = 0;
  for (const p of proxies) total += checkProxy(mesh, p);
  assert.ok(total > 1000, `checked ${total} resources`);
});
