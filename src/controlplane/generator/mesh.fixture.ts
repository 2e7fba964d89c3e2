// Test fixtures: snapshots from YAML text, and a synthetic mesh that uses every kind and field the generator reads.

import assert from 'node:assert/strict';
import { parseManifests } from '../manifests/parse.js';
import { buildSnapshot } from '../model/build.js';
import type { MeshObject } from '../model/objects.js';
import type { MeshSnapshot } from '../model/snapshot.js';

export function objectsOf(text: string): MeshObject[] {
  const r = parseManifests(text, { source: 'test', file: 'mesh.yaml' });
  assert.deepEqual(r.errors, []);
  return r.objects;
}

export function snapshotOf(text: string, extra: readonly MeshObject[] = []): MeshSnapshot {
  return buildSnapshot([...objectsOf(text), ...extra]);
}

/** What the DNS source reports for a ServiceEntry. */
export function dnsEndpoints(
  name: string,
  namespace: string,
  host: string,
  addresses: readonly string[],
  ports: Record<string, number>,
): MeshObject {
  return {
    kind: 'DnsEndpoints',
    meta: { name, namespace, labels: {} },
    origin: { source: 'dns' },
    host,
    endpoints: addresses.map((address) => ({ address, ports })),
  };
}

/**
 * `namespaces` namespaces of `perNamespace` services each. Service i of namespace n has an HTTP port, a gRPC
 * port, a TCP port and a port of undeclared protocol, cluster IP 10.<n>.<i>.1 (every fifth is headless), two
 * versions as WorkloadEntries, an EndpointSlice, a DestinationRule (subsets, load balancers in turn, pools) and a
 * VirtualService that uses every supported match and action. Namespace n>0 has a REGISTRY_ONLY Sidecar reaching
 * its own namespace and ns0; ns0 calls services of ns1; an external ServiceEntry resolved by DNS.
 */
export function syntheticMesh(namespaces: number, perNamespace: number): MeshSnapshot {
  const docs: string[] = [];
  const lbs = [
    '{simple: LEAST_REQUEST}',
    '{simple: RANDOM}',
    '{consistentHash: {httpHeaderName: x-user}}',
    '{consistentHash: {httpCookie: {name: session, ttl: 10s, path: /}, maglev: {tableSize: 65537}}}',
    '{consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 2048}}}',
    '{simple: ROUND_ROBIN}',
  ];
  for (let n = 0; n < namespaces; n++) {
    const ns = `ns${n}`;
    docs.push(`apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}`);
    if (n > 0)
      docs.push(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: ${ns}}
spec:
  egress: [{hosts: ["./*", "ns0/*", "istio-system/*"]}]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}`);
    if (n > 0)
      docs.push(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: ${ns}}
spec:
  action: DENY
  rules:
  - from: [{source: {notNamespaces: [ns0], remoteIpBlocks: ["10.0.0.0/8"]}}]
    to: [{operation: {paths: ["/admin", "/admin/*", "*.php"], notPorts: ["9090"], hosts: ["*.example.com"]}}]
    when: [{key: "request.headers[x-debug]", values: ["*"]}, {key: connection.sni, values: [a.example.com]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api-from-ns0, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: svc3}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/ns0/sa/*", "*"], ipBlocks: ["10.1.0.0/16"], notIpBlocks: ["::1"]}}]
    to: [{operation: {methods: [GET, HEAD], notMethods: [POST], ports: ["8080"]}}]
    when: [{key: source.ip, values: ["10.0.0.1"]}, {key: destination.port, notValues: ["22"]}, {key: source.principal, values: ["*/sa/x"]}]
  - to: [{operation: {ports: ["5432"]}}]
    when: [{key: destination.ip, values: ["10.0.0.0/8"]}, {key: request.method, values: [GET]}, {key: source.namespace, values: ["ns*"]}]`);
    if (n === 1)
      docs.push(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: ${ns}}
spec: {mtls: {mode: STRICT}}`);
    if (n === 2)
      docs.push(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: svc3, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: svc3}}
  mtls: {mode: PERMISSIVE}
  portLevelMtls: {"8080": {mode: STRICT}, "5432": {mode: DISABLE}}`);
    for (let i = 0; i < perNamespace; i++) {
      const name = `svc${i}`;
      const headless = i % 5 === 4;
      docs.push(`apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
  ${headless ? 'clusterIP: None' : `clusterIP: 10.${n}.${i}.1`}
  selector: {app: ${name}}
  ports:
  - {name: http-web, port: 80, targetPort: 8080}
  - {name: grpc, port: 9090, appProtocol: grpc}
  - {name: tcp-db, port: 5432}
  - {name: custom, port: 7000, targetPort: app}
  - {name: dns, port: 53, protocol: UDP}`);
      docs.push(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-a, namespace: ${ns}, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
ports: [{name: http-web, port: 8080}, {name: grpc, port: 9090}, {name: tcp-db, port: 5432}]
endpoints:
- {addresses: [10.200.${n}.${i}], zone: z${i % 3}}
- {addresses: [10.201.${n}.${i}], conditions: {ready: false}}`);
      for (const v of [1, 2])
        docs.push(`apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}-v${v}, namespace: ${ns}}
spec:
  address: 10.${100 + v}.${n}.${i}
  labels: {app: ${name}, version: v${v}${v === 1 ? ', security.istio.io/tlsMode: istio' : ''}}
  ${v === 1 ? `serviceAccount: ${name}` : ''}
  ports: {http-web: 8080, grpc: 9090, app: 7007, tcp-db: 5432}
  locality: region${v}/zone${i % 2}/sub
  weight: ${v * 10}
  ${v === 2 ? 'priority: 1' : ''}`);
      docs.push(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: ${ns}}
spec:
  host: ${name}
  trafficPolicy:
    loadBalancer: ${lbs[i % lbs.length]}
    connectionPool:
      tcp: {maxConnections: ${50 + i}, connectTimeout: 250ms}
      http: {http1MaxPendingRequests: 10, http2MaxRequests: 20, maxRequestsPerConnection: 5, maxRetries: 2}
  subsets:
  - {name: v1, labels: {version: v1}}
  - name: v2
    labels: {version: v2}
    trafficPolicy: {loadBalancer: {simple: RANDOM}, connectionPool: {tcp: {maxConnections: 7}}}`);
      const other = `svc${(i + 1) % perNamespace}.${ns}.svc.cluster.local`;
      docs.push(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: ${ns}}
spec:
  hosts: [${name}]
  http:
  - name: exact-and-headers
    match:
    - uri: {exact: /exact}
      method: {exact: POST}
      headers: {x-a: {exact: "1"}, x-b: {prefix: p}, x-c: {regex: "c[0-9]+"}, x-d: {}}
    - uri: {prefix: /pre}
      authority: {prefix: ${name}}
      queryParams: {q: {exact: v}, r: {regex: "[a-z]+"}, s: {}}
      ignoreUriCase: true
    - uri: {regex: "/re/[0-9]+"}
      port: 80
    rewrite: {uri: /new, authority: other.example}
    route:
    - destination: {host: ${name}, subset: v1}
      weight: 70
    - destination: {host: ${name}, subset: v2}
      weight: 30
    - destination: {host: ${name}, subset: v2}
      weight: 0
    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,reset,503,504", backoff: 50ms}
    timeout: 3s
  - name: grpc-only
    match: [{port: 9090, uri: {prefix: /svc.Api/}}]
    route: [{destination: {host: ${name}, port: {number: 9090}}}]
    retries: {attempts: 0}
  - name: to-neighbour
    match: [{uri: {prefix: /neighbour}}]
    route: [{destination: {host: ${other}}}]
    retries: {attempts: 2, retryOn: unavailable}`);
    }
  }
  docs.push(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: calls-ns1, namespace: ns0}
spec:
  hosts: [svc0.ns${Math.min(1, namespaces - 1)}.svc.cluster.local]
  exportTo: ["."]
  http:
  - route: [{destination: {host: svc0.ns${Math.min(1, namespaces - 1)}.svc.cluster.local, subset: v1}}]`);
  docs.push(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: ns0}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}, {number: 8000, name: http, protocol: HTTP}]
  resolution: DNS`);
  return snapshotOf(docs.join('\n---\n'), [
    dnsEndpoints('api', 'ns0', 'api.example.com', ['192.0.2.1', '2001:db8::1'], { tls: 443, http: 8000 }),
  ]);
}
