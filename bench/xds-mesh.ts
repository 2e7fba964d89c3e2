// The synthetic mesh of `npm run bench:xds`: Services, EndpointSlices and Istio policies written as YAML manifests,
// the simulated proxies' identities, and the EndpointSlice edit each round makes.

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface MeshShape {
  readonly namespaces: number;
  /** Services in all, spread evenly over the namespaces. */
  readonly services: number;
  /** Endpoints listed in each Service's EndpointSlice (the pods the simulated proxies stand for). */
  readonly podsPerService: number;
}

/** One simulated proxy: the pod of a service whose EndpointSlice lists its IP. */
export interface ProxyNode {
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Record<string, unknown>;
}

/** Where each round's new endpoint goes: the first service of the first namespace, in every proxy's scope. */
export const CHANGED_SERVICE = { namespace: 'ns-0', name: 'svc-0' } as const;

const nsName = (n: number): string => `ns-${n}`;
const svcIndexIn = (svc: number, shape: MeshShape): { ns: number; local: number } => ({
  ns: svc % shape.namespaces,
  local: Math.floor(svc / shape.namespaces),
});
const svcName = (local: number): string => `svc-${local}`;
const podIp = (svc: number, pod: number): string => `10.${1 + (svc >> 8)}.${svc & 255}.${pod + 1}`;

/** Every third service also serves gRPC, every fifth a TCP port: listeners of each kind. */
function servicePorts(svc: number): { name: string; port: number; targetPort: number }[] {
  const ports = [{ name: 'http', port: 80, targetPort: 8080 }];
  if (svc % 3 === 0) ports.push({ name: 'grpc-api', port: 9090, targetPort: 9090 });
  if (svc % 5 === 0) ports.push({ name: 'tcp-db', port: 5432, targetPort: 5432 });
  return ports;
}

function endpointSlice(shape: MeshShape, svc: number, extra: readonly string[]): Record<string, unknown> {
  const { ns, local } = svcIndexIn(svc, shape);
  const addresses = Array.from({ length: shape.podsPerService }, (_, p) => podIp(svc, p)).concat(extra);
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${svcName(local)}-1`,
      namespace: nsName(ns),
      labels: { 'kubernetes.io/service-name': svcName(local) },
    },
    addressType: 'IPv4',
    ports: servicePorts(svc).map((p) => ({ name: p.name, port: p.targetPort, protocol: 'TCP' })),
    endpoints: addresses.map((ip, i) => ({
      addresses: [ip],
      conditions: { ready: true },
      nodeName: `node-${i % 7}`,
      zone: `zone-${i % 3}`,
    })),
  };
}

function writeDocs(file: string, docs: readonly Record<string, unknown>[]): void {
  // Written beside and renamed over, as editors and ConfigMap updates do: the watcher never reads half a file.
  const tmp = `${file}.tmp~`;
  writeFileSync(tmp, docs.map((d) => stringify(d)).join('---\n'));
  renameSync(tmp, file);
}

function sliceFile(dir: string, shape: MeshShape, svc: number): string {
  const { ns, local } = svcIndexIn(svc, shape);
  return join(dir, nsName(ns), `${svcName(local)}-endpoints.yaml`);
}

/**
 * Writes the mesh under `dir`: per namespace a directory with a Sidecar (its own namespace plus `ns-0`, the shared
 * one, so the changed service is in every proxy's scope), a VirtualService and a DestinationRule for its first
 * service; per service a Service file and an EndpointSlice file.
 */
export function writeMesh(dir: string, shape: MeshShape): void {
  for (let n = 0; n < shape.namespaces; n++) {
    mkdirSync(join(dir, nsName(n)), { recursive: true });
    const ns = nsName(n);
    writeDocs(join(dir, ns, 'policies.yaml'), [
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'Sidecar',
        metadata: { name: 'default', namespace: ns },
        spec: { egress: [{ hosts: ['./*', `${CHANGED_SERVICE.namespace}/*`] }] },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'svc-0', namespace: ns },
        spec: {
          hosts: ['svc-0'],
          http: [
            {
              name: 'api',
              match: [{ uri: { prefix: '/api/' } }],
              route: [{ destination: { host: 'svc-0', port: { number: 80 } } }],
              retries: { attempts: 3, perTryTimeout: '2s', retryOn: '5xx,reset' },
              timeout: '10s',
            },
          ],
        },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: 'svc-0', namespace: ns },
        spec: {
          host: 'svc-0',
          trafficPolicy: {
            loadBalancer: { simple: 'LEAST_REQUEST' },
            connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 64 } },
          },
        },
      },
    ]);
  }
  for (let svc = 0; svc < shape.services; svc++) {
    const { ns, local } = svcIndexIn(svc, shape);
    const name = svcName(local);
    writeDocs(join(dir, nsName(ns), `${name}.yaml`), [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace: nsName(ns), labels: { app: name } },
        spec: {
          selector: { app: name },
          clusterIP: `10.96.${svc >> 8}.${(svc & 255) + 1}`,
          ports: servicePorts(svc),
        },
      },
    ]);
    writeDocs(sliceFile(dir, shape, svc), [endpointSlice(shape, svc, [])]);
  }
}

/** The address the `round`-th edit adds (0-based). */
export function addedEndpoint(round: number): string {
  return `10.250.${round >> 8}.${(round & 255) + 1}`;
}

/** Rewrites the changed service's EndpointSlice with the endpoints of rounds 0..round added. */
export function addEndpoint(dir: string, shape: MeshShape, round: number): void {
  const svc = 0; // ns-0/svc-0: service index 0
  const extra = Array.from({ length: round + 1 }, (_, r) => addedEndpoint(r));
  writeDocs(sliceFile(dir, shape, svc), [endpointSlice(shape, svc, extra)]);
}

/**
 * The `i`-th proxy: a pod of service `i mod services` (so proxies spread over every namespace and deployment, and
 * proxies of one deployment share labels, hence a node group, as pods of one Deployment do), with Istio's node
 * id form and metadata keys.
 */
export function proxyNode(i: number, shape: MeshShape): ProxyNode {
  const svc = i % shape.services;
  const pod = Math.floor(i / shape.services) % shape.podsPerService;
  const { ns, local } = svcIndexIn(svc, shape);
  const name = svcName(local);
  const namespace = nsName(ns);
  const ip = podIp(svc, pod);
  const podName = `${name}-7d9f${(svc % 16).toString(16)}-${i.toString(36).padStart(5, '0')}`;
  return {
    id: `sidecar~${ip}~${podName}.${namespace}~${namespace}.svc.cluster.local`,
    cluster: `${name}.${namespace}`,
    metadata: {
      NAMESPACE: namespace,
      LABELS: { app: name, version: 'v1', 'pod-template-hash': `7d9f${(svc % 16).toString(16)}` },
      WORKLOAD_NAME: name,
      SERVICE_ACCOUNT: name,
      INSTANCE_IPS: ip,
    },
  };
}
