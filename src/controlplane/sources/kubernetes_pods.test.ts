// PodIndex: Pod labels and service accounts joined onto EndpointSlice endpoints by targetRef, else by IP.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifests } from '../manifests/parse.js';
import type { EndpointSliceObject } from '../model/objects.js';
import { PodIndex } from './kubernetes_pods.js';

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
  const index = new PodIndex();
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
  const index = new PodIndex();
  assert.equal(index.set(pod('a', '10.0.0.1', { v: '1' })), true);
  assert.equal(
    index.set({ ...pod('a', '10.0.0.1', { v: '1' }), status: { podIP: '10.0.0.1', phase: 'Running' } }),
    false,
  );
  assert.equal(index.set(pod('a', '10.0.0.1', { v: '2' })), true);
  assert.equal(index.delete(pod('zz', '10.9.9.9', {})), false);
});
