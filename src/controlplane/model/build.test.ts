// buildSnapshot: services and endpoints (slices, selected WorkloadEntries, never Pods), workloads, versions, lookups.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifests } from '../manifests/parse.js';
import { buildSnapshot } from './build.js';
import type { MeshObject, PodObject } from './objects.js';

function objects(text: string, file = 'mesh.yaml'): MeshObject[] {
  const r = parseManifests(text, { source: 'test', file });
  assert.deepEqual(r.errors, []);
  return r.objects;
}

const MESH = `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop, labels: {team: books}}
spec:
  clusterIP: 10.96.0.10
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 8080}, {name: admin, port: 9901, targetPort: admin}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-1, namespace: shop, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: unknown, port: 1}]
endpoints:
- {addresses: [10.1.0.2], zone: z1}
- {addresses: [10.1.0.1], conditions: {ready: false}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: shop}
spec: {address: 192.168.0.5, labels: {app: reviews, version: v2}, serviceAccount: sa, locality: r1/z1/s1, ports: {admin: 9000}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-other-ns, namespace: other}
spec: {address: 192.168.0.6, labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-unselected, namespace: shop}
spec: {address: 192.168.0.7, labels: {app: ratings}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets: [{name: v2, labels: {version: v2}}, {name: v3, labels: {version: v3}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v2}}]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec: {egress: [{hosts: ["./*"]}]}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ratings, namespace: shop}
spec: {workloadSelector: {labels: {app: ratings}}, egress: [{hosts: ["*/*"]}]}
`;

test('a Service: hostname, ports, cluster IPs; endpoints from its slices and the WorkloadEntries it selects', () => {
  const s = buildSnapshot(objects(MESH));
  const host = 'reviews.shop.svc.cluster.local';
  const svc = s.service(host);
  assert.ok(svc);
  assert.equal(svc.name, 'reviews');
  assert.deepEqual(svc.clusterIPs, ['10.96.0.10']);
  assert.deepEqual(svc.labels, { team: 'books' });
  const eps = s.endpoints(host);
  assert.deepEqual(
    eps.map((e) => [e.address, e.ports, e.ready, e.from]),
    [
      ['10.1.0.1', { http: 8080 }, false, 'EndpointSlice/shop/reviews-1'],
      ['10.1.0.2', { http: 8080 }, true, 'EndpointSlice/shop/reviews-1'],
      // The entry's own port for "admin", the Service's numeric targetPort for "http".
      ['192.168.0.5', { http: 8080, admin: 9000 }, true, 'WorkloadEntry/shop/vm-1'],
    ],
  );
  assert.deepEqual(eps[1]!.locality, { region: '', zone: 'z1', subZone: '' });
  assert.deepEqual(eps[2]!.labels, { app: 'reviews', version: 'v2' });
  assert.equal(eps[2]!.serviceAccount, 'sa');
  assert.deepEqual(eps[2]!.locality, { region: 'r1', zone: 'z1', subZone: 's1' });
  assert.deepEqual(
    s.subsetEndpoints(host, 'v2').map((e) => e.address),
    ['192.168.0.5'],
  );
  assert.deepEqual(s.subsetEndpoints(host, 'v3'), []);
  assert.deepEqual(s.subsetEndpoints(host, 'nope'), []);
  assert.deepEqual(
    s.workloads.map((w) => `${w.namespace}/${w.name}`),
    ['other/vm-other-ns', 'shop/vm-1', 'shop/vm-unselected'],
  );
  assert.deepEqual(s.namespaces, ['other', 'shop']);
});

test('policies are found by host; a Sidecar by workload labels, else the namespace default', () => {
  const s = buildSnapshot(objects(MESH));
  const host = 'reviews.shop.svc.cluster.local';
  assert.equal(s.virtualServicesFor(host)[0]?.meta.name, 'reviews');
  assert.equal(s.destinationRule(host)?.meta.name, 'reviews');
  assert.equal(s.sidecarFor('shop', { app: 'ratings' })?.meta.name, 'ratings');
  assert.equal(s.sidecarFor('shop', { app: 'reviews' })?.meta.name, 'default');
  assert.equal(s.sidecarFor('other', {}), undefined);
});

test('the snapshot is immutable', () => {
  const s = buildSnapshot(objects(MESH));
  assert.throws(() => {
    (s.services as unknown as unknown[]).push({});
  }, TypeError);
  assert.throws(() => {
    (s.services[0]!.ports[0] as { port: number }).port = 1;
  }, TypeError);
  assert.throws(() => {
    (s as unknown as { version: string }).version = 'x';
  }, TypeError);
});

test('equal inputs give equal versions, whatever their order and file; a change moves only its part', () => {
  const a = buildSnapshot(objects(MESH));
  const shuffled = objects(MESH, 'elsewhere.yaml').reverse();
  const b = buildSnapshot(shuffled);
  assert.equal(a.version, b.version);
  assert.deepEqual(a.versions, b.versions);

  const endpointOnly = buildSnapshot(objects(MESH.replace('10.1.0.2', '10.1.0.3')));
  assert.notEqual(endpointOnly.version, a.version);
  assert.notEqual(endpointOnly.versions.endpoints, a.versions.endpoints);
  assert.equal(endpointOnly.versions.services, a.versions.services);
  assert.equal(endpointOnly.versions.policies, a.versions.policies);

  const policyOnly = buildSnapshot(objects(MESH.replace('subset: v2}}', 'subset: v3}}')));
  assert.notEqual(policyOnly.versions.policies, a.versions.policies);
  assert.equal(policyOnly.versions.endpoints, a.versions.endpoints);
});

test('ServiceEntry services take their endpoints from what the DNS source resolved', () => {
  const base = objects(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: ext}
spec: {hosts: [api.example.com], ports: [{number: 443, name: tls, protocol: TLS}], resolution: DNS}
`);
  const resolved: MeshObject = {
    kind: 'DnsEndpoints',
    meta: { name: 'api', namespace: 'ext', labels: {} },
    origin: { source: 'dns' },
    host: 'api.example.com',
    endpoints: [
      { address: '192.0.2.2', ports: { tls: 443 } },
      { address: '192.0.2.1', ports: { tls: 443 } },
    ],
  };
  const s = buildSnapshot([...base, resolved]);
  const svc = s.service('api.example.com');
  assert.equal(svc?.kind, 'ServiceEntry');
  assert.equal(svc?.location, 'MESH_EXTERNAL');
  assert.deepEqual(
    svc?.ports.map((p) => [p.name, p.port, p.targetPort, p.meshProtocol]),
    [['tls', 443, 443, 'TLS']],
  );
  assert.deepEqual(
    s.endpoints('api.example.com').map((e) => e.address),
    ['192.0.2.1', '192.0.2.2'],
  );
  assert.deepEqual(buildSnapshot(base).endpoints('api.example.com'), []);
});

test('duplicate keys: one object is kept by its content, so the snapshot does not depend on input order', () => {
  const one = objects('apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}');
  const two = objects('apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 81}]}');
  const x = buildSnapshot([...one, ...two]);
  const y = buildSnapshot([...two, ...one]);
  assert.equal(x.services.length, 1);
  assert.equal(x.version, y.version);
});

/** A Pod as the Kubernetes source delivers it. */
function pod(name: string, labels: Record<string, string>, addresses: string[]): PodObject {
  return {
    kind: 'Pod',
    meta: { name, namespace: 'shop', labels },
    origin: { source: 'kubernetes', file: `/api/v1/namespaces/shop/pods/${name}` },
    addresses,
    hostNetwork: false,
    serviceAccount: 'reviews',
    ports: [{ name: 'admin', port: 9001, protocol: 'TCP' }],
  };
}

test('Pods are workloads, never endpoints, even when a Service selects them', () => {
  const before = buildSnapshot(objects(MESH));
  // Selected by the Service (app: reviews), and at an address no slice lists.
  const s = buildSnapshot([
    ...objects(MESH),
    pod('reviews-1', { app: 'reviews', version: 'v2' }, ['10.1.0.9']),
  ]);
  const host = 'reviews.shop.svc.cluster.local';
  assert.deepEqual(s.endpoints(host), before.endpoints(host));
  assert.equal(s.versions.endpoints, before.versions.endpoints);
  assert.notEqual(s.versions.workloads, before.versions.workloads);
  assert.deepEqual(
    s.workloads.map((w) => `${w.kind} ${w.namespace}/${w.name} ${w.addresses.join(',')}`),
    [
      'WorkloadEntry other/vm-other-ns 192.168.0.6',
      'WorkloadEntry shop/vm-1 192.168.0.5',
      'WorkloadEntry shop/vm-unselected 192.168.0.7',
      'Pod shop/reviews-1 10.1.0.9',
    ],
  );
  assert.deepEqual(s.workloads[3]!.containerPorts, [{ name: 'admin', port: 9001, protocol: 'TCP' }]);
  // The workloads a proxy with these labels may be: exactly these labels, in this namespace, WorkloadEntries first.
  assert.deepEqual(
    s.workloadsWithLabels('shop', { version: 'v2', app: 'reviews' }).map((w) => w.name),
    ['vm-1', 'reviews-1'],
  );
  assert.deepEqual(s.workloadsWithLabels('shop', { app: 'reviews' }), []);
  assert.deepEqual(s.workloadsWithLabels('other', { app: 'reviews', version: 'v2' }), []);
});
