// Pods: their workload objects, and their labels and service accounts joined onto slice endpoints (PodIndex).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifests } from '../manifests/parse.js';
import { buildSnapshot } from '../model/build.js';
import type { EndpointSliceObject } from '../model/objects.js';
import { PodIndex, podObjectOf } from './kubernetes_pods.js';

const pod = (
  name: string,
  ip: string,
  labels: Record<string, string>,
  extra: Record<string, unknown> = {},
) => ({
  metadata: { name, namespace: 'shop', labels },
  spec: { serviceAccountName: `sa-${name}`, ...extra },
  status: { podIP: ip, podIPs: [{ ip }] },
});

const slice = parseManifests(
  `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s, namespace: shop, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.0.0.1], targetRef: {kind: Pod, name: a}}
- {addresses: [10.0.0.2]}
- {addresses: [10.0.0.3]}
- {addresses: [10.0.0.4], targetRef: {kind: Pod, name: gone}}
`,
  { source: 'test' },
).objects[0] as EndpointSliceObject;

function joined(index: PodIndex): string[] {
  return index
    .join(slice)
    .endpoints.map((e) => `${e.address} ${JSON.stringify(e.labels ?? null)} ${e.serviceAccount ?? '-'}`);
}

test('endpoints get their Pod by targetRef, else by a unique IP in the namespace', () => {
  const index = new PodIndex('kubernetes');
  assert.equal(index.join(slice), slice, 'nothing to join: the same object');
  index.set(pod('a', '10.0.0.1', { v: '1' }));
  index.set(pod('b', '10.0.0.2', { v: '2' }));
  // Two Pods with one IP (one leaving, one arriving): neither is guessed.
  index.set(pod('c1', '10.0.0.3', { v: '3' }));
  index.set(pod('c2', '10.0.0.3', { v: '3' }));
  // A host-network Pod's IP is its node's.
  index.set(pod('h', '10.0.0.4', { v: 'h' }, { hostNetwork: true }));
  assert.deepEqual(joined(index), [
    '10.0.0.1 {"v":"1"} sa-a',
    '10.0.0.2 {"v":"2"} sa-b',
    '10.0.0.3 null -',
    '10.0.0.4 null -',
  ]);
  assert.equal(index.delete(pod('c2', '10.0.0.3', {})), true);
  assert.equal(joined(index)[2], '10.0.0.3 {"v":"3"} sa-c1');
});

test('only changes the mesh uses count as changes', () => {
  const index = new PodIndex('kubernetes');
  assert.equal(index.set(pod('a', '10.0.0.1', { v: '1' })), true);
  assert.equal(
    index.set({ ...pod('a', '10.0.0.1', { v: '1' }), status: { podIP: '10.0.0.1', phase: 'Running' } }),
    false,
  );
  assert.equal(index.set(pod('a', '10.0.0.1', { v: '2' })), true);
  assert.equal(index.delete(pod('zz', '10.9.9.9', {})), false);
});

/** A Pod as an API server returns it: status, conditions and fields the mesh does not read included. */
const apiPod = (status: Record<string, unknown> = {}, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: 'reviews-7d9c-x1',
    namespace: 'shop',
    labels: { app: 'reviews', 'pod-template-hash': '7d9c' },
    annotations: { 'kubectl.kubernetes.io/restartedAt': '2024-01-01T00:00:00Z' },
    uid: 'u-1',
    resourceVersion: '41',
  },
  spec: {
    serviceAccountName: 'bookinfo-reviews',
    nodeName: 'node-1',
    containers: [
      {
        name: 'app',
        image: 'reviews:1',
        ports: [
          { name: 'http-web', containerPort: 8080 },
          { containerPort: 9999 },
          { name: 'dns', containerPort: 5353, protocol: 'UDP' },
        ],
      },
      {
        name: 'metrics',
        image: 'exporter:1',
        ports: [{ name: 'metrics', containerPort: 9102, protocol: 'TCP' }],
      },
    ],
    initContainers: [
      { name: 'setup', image: 'setup:1', ports: [{ name: 'never', containerPort: 1111 }] },
      {
        name: 'log-shipper',
        image: 'shipper:1',
        restartPolicy: 'Always',
        ports: [{ name: 'shipper', containerPort: 2020 }],
      },
    ],
    ...spec,
  },
  status: {
    phase: 'Running',
    podIP: '10.1.0.7',
    podIPs: [{ ip: '10.1.0.7' }, { ip: 'fd00::7' }],
    hostIP: '192.168.1.10',
    conditions: [{ type: 'Ready', status: 'True' }],
    ...status,
  },
});

test('a Pod becomes a workload object: IPs, labels, service account, named container ports', () => {
  assert.deepEqual(podObjectOf(apiPod(), 'kubernetes'), {
    kind: 'Pod',
    meta: {
      name: 'reviews-7d9c-x1',
      namespace: 'shop',
      labels: { app: 'reviews', 'pod-template-hash': '7d9c' },
    },
    origin: { source: 'kubernetes', file: '/api/v1/namespaces/shop/pods/reviews-7d9c-x1' },
    addresses: ['10.1.0.7', 'fd00::7'],
    hostNetwork: false,
    serviceAccount: 'bookinfo-reviews',
    // Unnamed ports cannot be a targetPort's name; init containers that run to completion serve nothing.
    ports: [
      { name: 'http-web', port: 8080, protocol: 'TCP' },
      { name: 'dns', port: 5353, protocol: 'UDP' },
      { name: 'metrics', port: 9102, protocol: 'TCP' },
      { name: 'shipper', port: 2020, protocol: 'TCP' },
    ],
  });
  // Before an IP is assigned, and on the host network (the node's IP names no Pod): no addresses.
  assert.deepEqual(
    podObjectOf(apiPod({ podIP: undefined, podIPs: undefined, phase: 'Pending' }), 'k')?.addresses,
    [],
  );
  const host = podObjectOf(
    apiPod({ podIP: '192.168.1.10', podIPs: [{ ip: '192.168.1.10' }] }, { hostNetwork: true }),
    'k',
  );
  assert.deepEqual([host?.hostNetwork, host?.addresses, host?.ports.length], [true, [], 4]);
  assert.equal(podObjectOf({ metadata: {} }, 'k'), undefined);
});

test('status-only churn is no change: same index answer, same snapshot version', () => {
  const index = new PodIndex('kubernetes');
  assert.equal(index.set(apiPod({ phase: 'Pending', podIP: undefined, podIPs: undefined })), true);
  const pending = buildSnapshot(index.objects());
  assert.equal(index.set(apiPod()), true, 'an IP assigned is a change');
  const running = buildSnapshot(index.objects());
  assert.notEqual(running.version, pending.version);
  const churn = [
    apiPod({ conditions: [{ type: 'Ready', status: 'False' }] }),
    apiPod({ containerStatuses: [{ name: 'app', restartCount: 3, ready: false }] }),
    {
      ...apiPod(),
      metadata: { ...apiPod().metadata, resourceVersion: '99', deletionTimestamp: '2024-01-01T00:00:00Z' },
    },
  ];
  for (const p of churn) {
    assert.equal(index.set(p), false);
    assert.equal(buildSnapshot(index.objects()).version, running.version);
  }
  assert.equal(
    index.set({ ...apiPod(), metadata: { ...apiPod().metadata, labels: { app: 'reviews' } } }),
    true,
  );
  assert.notEqual(buildSnapshot(index.objects()).version, running.version);
});

test('a Pod that finished or was deleted leaves the index and the workloads', () => {
  const index = new PodIndex('kubernetes');
  index.set(apiPod());
  index.set({ ...apiPod(), metadata: { name: 'other', namespace: 'shop', labels: {} } });
  assert.deepEqual(
    index.objects().map((o) => o.meta.name),
    ['other', 'reviews-7d9c-x1'],
  );
  assert.equal(index.set(apiPod({ phase: 'Succeeded' })), true);
  assert.equal(index.set(apiPod({ phase: 'Succeeded' })), false, 'already gone');
  assert.deepEqual(
    buildSnapshot(index.objects()).workloads.map((w) => `${w.kind} ${w.name}`),
    ['Pod other'],
  );
  assert.equal(index.delete({ metadata: { name: 'other', namespace: 'shop' } }), true);
  assert.deepEqual(index.objects(), []);
});
