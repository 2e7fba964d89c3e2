// inboundPorts: the ports a proxy's workload serves, with Pods' named container ports resolving named targetPorts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ContainerPort, PodObject } from '../model/objects.js';
import type { ProxyGroup } from './identity.js';
import { inboundPorts } from './inbound.js';
import { snapshotOf } from './mesh.fixture.js';
import { proxyScope } from './scope.js';

const sidecar = (labels: Record<string, string>): ProxyGroup => ({
  kind: 'sidecar',
  namespace: 'shop',
  labels,
  ipFamilies: ['v4'],
});

function pod(name: string, labels: Record<string, string>, ports: ContainerPort[]): PodObject {
  return {
    kind: 'Pod',
    meta: { name, namespace: 'shop', labels },
    origin: { source: 'kubernetes' },
    addresses: ['10.1.0.1'],
    hostNetwork: false,
    serviceAccount: undefined,
    ports,
  };
}

/** Ports by their `targetPort`: a container port name (TCP and UDP), a number, and a WorkloadEntry's port name. */
const MESH = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.0.0.10
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http-web}
  - {name: grpc-api, port: 9090, targetPort: 9091}
  - {name: dns, port: 53, protocol: UDP, targetPort: dns}
`;

const tcp = (name: string, port: number): ContainerPort => ({ name, port, protocol: 'TCP' });

function ports(extra: PodObject[], labels: Record<string, string>): string[] {
  const snapshot = snapshotOf(MESH, extra);
  const proxy = sidecar(labels);
  return inboundPorts(snapshot, proxyScope(snapshot, proxy), proxy).map((p) => `${p.port} ${p.protocol}`);
}

test("a named targetPort resolves to the container port of that name of the proxy's Pod", () => {
  const v1 = { app: 'web', version: 'v1' };
  // UDP service ports are not proxied; a name of another protocol is not a match (Kubernetes' rule).
  const p = pod('web-1', v1, [tcp('http-web', 8080), { name: 'dns', port: 5353, protocol: 'UDP' }]);
  assert.deepEqual(ports([p], v1), ['8080 HTTP', '9091 GRPC']);
  // Without a Pod (or a WorkloadEntry) of the proxy's exact labels, the name is not known.
  assert.deepEqual(ports([p], { app: 'web' }), ['9091 GRPC']);
  assert.deepEqual(ports([], v1), ['9091 GRPC']);
  // A Pod in another namespace with the same labels is not the proxy's.
  const elsewhere = { ...p, meta: { ...p.meta, namespace: 'other' } };
  assert.deepEqual(ports([elsewhere], v1), ['9091 GRPC']);
});

test('Pods with equal labels: the first that declares the name gives the port', () => {
  const v1 = { app: 'web', version: 'v1' };
  const undeclared = pod('web-a', v1, [tcp('metrics', 9100)]);
  assert.deepEqual(ports([undeclared, pod('web-b', v1, [tcp('http-web', 8081)])], v1), [
    '8081 HTTP',
    '9091 GRPC',
  ]);
  assert.deepEqual(
    ports([pod('web-b', v1, [tcp('http-web', 8081)]), pod('web-c', v1, [tcp('http-web', 8082)])], v1),
    ['8081 HTTP', '9091 GRPC'],
  );
});
