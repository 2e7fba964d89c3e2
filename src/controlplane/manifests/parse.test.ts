// Manifest validation: each supported kind read into its object, and each way of being rejected, with its path.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MeshObject } from '../model/objects.js';
import { formatManifestError, parseManifests } from './parse.js';

const ORIGIN = { source: 'test', file: 'mesh.yaml' };

function parse(text: string) {
  return parseManifests(text, ORIGIN);
}

function one<K extends MeshObject['kind']>(text: string, kind: K): Extract<MeshObject, { kind: K }> {
  const r = parse(text);
  assert.deepEqual(r.errors.map(formatManifestError), []);
  assert.equal(r.objects.length, 1);
  const o = r.objects[0]!;
  assert.equal(o.kind, kind);
  return o as Extract<MeshObject, { kind: K }>;
}

/** Every error line of `text`; asserts none of its objects was accepted when `noObjects`. */
function errors(text: string, noObjects = true): string[] {
  const r = parse(text);
  if (noObjects) assert.deepEqual(r.objects, []);
  return r.errors.map(formatManifestError);
}

function assertHas(lines: string[], expected: string): void {
  assert.ok(
    lines.some((l) => l.startsWith(expected)),
    `expected a line starting with\n  ${expected}\ngot:\n  ${lines.join('\n  ')}`,
  );
}

const VS = (http: string, extra = '') => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
${extra}
  http:
${http}
`;

test('Service: ports, targetPort by number or name, cluster IPs, selector, protocol from the port name', () => {
  const s = one(
    `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop, labels: {app: reviews}, uid: abc, resourceVersion: "7"}
spec:
  type: ClusterIP
  clusterIP: 10.0.0.12
  clusterIPs: [10.0.0.12, "fd00::12"]
  selector: {app: reviews}
  ports:
  - {name: http-web, port: 9080, targetPort: 8080}
  - {name: grpc, port: 9090, targetPort: grpc-port}
  - {name: metrics, port: 9100, appProtocol: http}
  - {name: db, port: 5432}
  ipFamilies: [IPv4, IPv6]
  sessionAffinity: None
status: {loadBalancer: {}}
`,
    'Service',
  );
  assert.deepEqual(s.meta, { name: 'reviews', namespace: 'shop', labels: { app: 'reviews' } });
  assert.deepEqual(s.clusterIPs, ['10.0.0.12', 'fd00::12']);
  assert.equal(s.headless, false);
  assert.deepEqual(s.selector, { app: 'reviews' });
  assert.deepEqual(
    s.ports.map((p) => [p.name, p.port, p.targetPort, p.meshProtocol]),
    [
      ['http-web', 9080, 8080, 'HTTP'],
      ['grpc', 9090, 'grpc-port', 'GRPC'],
      ['metrics', 9100, 9100, 'HTTP'],
      ['db', 5432, 5432, 'UNKNOWN'],
    ],
  );
});

test('Service: namespace defaults to "default"; headless services have no cluster IP', () => {
  const s = one(
    'apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec: {clusterIP: None, ports: [{port: 5432}]}',
    'Service',
  );
  assert.equal(s.meta.namespace, 'default');
  assert.equal(s.headless, true);
  assert.deepEqual(s.clusterIPs, []);
  assert.equal(s.ports[0]!.name, '');
});

test('Service: every mistake with its path, and features not there yet said so', () => {
  const lines = errors(`
apiVersion: v1
kind: Service
metadata: {name: Reviews_1, namespace: shop}
spec:
  type: ExternalName
  externalName: foo.example.com
  clusterIP: 10.0.0.999
  sessionAffinity: ClientIP
  ports:
  - {name: http, port: 70000}
  - {name: http, port: 80, targetPort: "Not_A_Name", protocol: QUIC}
  - {port: 81}
  extra: true
`);
  const p = 'mesh.yaml: Service shop/Reviews_1: ';
  assertHas(lines, `${p}metadata.name: "Reviews_1" is not a valid name`);
  assertHas(lines, `${p}spec.type: value "ExternalName" is not supported by Remora yet`);
  assertHas(lines, `${p}spec.externalName: field "externalName" is not supported by Remora yet`);
  assertHas(lines, `${p}spec.clusterIP: "10.0.0.999" is not an IPv4 or IPv6 address`);
  assertHas(lines, `${p}spec.sessionAffinity: value "ClientIP" is not supported by Remora yet`);
  assertHas(lines, `${p}spec.ports[0].port: must be between 1 and 65535, got 70000`);
  assertHas(lines, `${p}spec.ports[1].targetPort: "Not_A_Name" is not a valid port name`);
  assertHas(lines, `${p}spec.ports[1].protocol: unsupported value "QUIC"`);
  assertHas(lines, `${p}spec.ports[2].name: missing required field`);
  assertHas(lines, `${p}spec.extra: unknown field "extra"`);
});

test('snake_case is not Kubernetes: target_port is an unknown field', () => {
  const lines = errors(
    'apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80, target_port: 8080}]}',
  );
  assertHas(lines, 'mesh.yaml: Service default/a: spec.ports[0].target_port: unknown field "target_port"');
});

test('EndpointSlice: endpoints, readiness (absent means ready), ports by name, zone and targetRef', () => {
  const s = one(
    `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-abc, namespace: shop, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: [10.1.0.5]
  conditions: {ready: true, serving: true, terminating: false}
  zone: us-east-1a
  nodeName: node-1
  targetRef: {kind: Pod, name: reviews-v1-x, namespace: shop, uid: u1}
- addresses: [10.1.0.6]
  conditions: {ready: false}
- addresses: [10.1.0.7]
`,
    'EndpointSlice',
  );
  assert.equal(s.serviceName, 'reviews');
  assert.deepEqual(
    s.endpoints.map((e) => [e.address, e.ready]),
    [
      ['10.1.0.5', true],
      ['10.1.0.6', false],
      ['10.1.0.7', true],
    ],
  );
  assert.equal(s.endpoints[0]!.zone, 'us-east-1a');
  assert.equal(s.endpoints[0]!.targetRef, 'Pod/shop/reviews-v1-x');
  assert.deepEqual(s.ports, [{ name: 'http', port: 8080, protocol: 'TCP', appProtocol: undefined }]);
});

test('EndpointSlice: the service-name label is required; addresses must be of the addressType', () => {
  const lines = errors(`
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s1}
addressType: IPv6
ports: [{name: http, port: 0}]
endpoints:
- addresses: [10.0.0.1]
  hints: {forZones: [{name: a}]}
- addresses: []
`);
  const p = 'mesh.yaml: EndpointSlice default/s1: ';
  assertHas(lines, `${p}metadata.labels["kubernetes.io/service-name"]: missing`);
  assertHas(lines, `${p}ports[0].port: must be between 1 and 65535, got 0`);
  assertHas(lines, `${p}endpoints[0].addresses[0]: "10.0.0.1" is not an IPv6 address`);
  assertHas(lines, `${p}endpoints[0].hints: topology-aware routing ("hints") is not supported by Remora yet`);
  assertHas(lines, `${p}endpoints[1].addresses: must not be empty`);
  assertHas(
    errors(
      'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s, labels: {kubernetes.io/service-name: a}}\nendpoints: []',
    ),
    'mesh.yaml: EndpointSlice default/s: addressType: missing required field',
  );
});

test('WorkloadEntry: v1, v1beta1 and v1alpha3 apiVersions; ports by service port name', () => {
  for (const v of ['v1', 'v1beta1', 'v1alpha3']) {
    const w = one(
      `
apiVersion: networking.istio.io/${v}
kind: WorkloadEntry
metadata: {name: vm-1, namespace: shop}
spec:
  address: 192.168.1.10
  ports: {http: 8080, grpc: 9090}
  labels: {app: reviews, version: v2}
  serviceAccount: reviews
  network: vm-net
  locality: us-east/zone-a/rack-1
  weight: 3
`,
      'WorkloadEntry',
    );
    assert.equal(w.address, '192.168.1.10');
    assert.deepEqual(w.ports, { grpc: 9090, http: 8080 });
    assert.deepEqual(w.labels, { app: 'reviews', version: 'v2' });
    assert.equal(w.serviceAccount, 'reviews');
    assert.equal(w.locality, 'us-east/zone-a/rack-1');
  }
  const lines = errors(`
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-2}
spec: {address: "unix:///var/run/a.sock", ports: {http: 0}, labels: {"bad key!": x}}
`);
  assertHas(
    lines,
    'mesh.yaml: WorkloadEntry default/vm-2: spec.address: Unix domain socket addresses are not supported by Remora yet',
  );
  assertHas(
    lines,
    'mesh.yaml: WorkloadEntry default/vm-2: spec.ports.http: must be between 1 and 65535, got 0',
  );
  assertHas(
    lines,
    'mesh.yaml: WorkloadEntry default/vm-2: spec.labels["bad key!"]: label key "bad key!" is not a valid label name',
  );
  assertHas(
    errors(
      'apiVersion: networking.istio.io/v2\nkind: WorkloadEntry\nmetadata: {name: a}\nspec: {address: 10.0.0.1}',
    ),
    'mesh.yaml: WorkloadEntry default/a: apiVersion: "networking.istio.io/v2" is not an apiVersion of WorkloadEntry',
  );
});

test('VirtualService: matches, weighted destinations with subsets and ports, retries, timeout, rewrite', () => {
  const vs = one(
    VS(
      `
  - name: v2-users
    match:
    - uri: {prefix: /api}
      headers: {end-user: {exact: jason}, x-canary: {}}
      method: {regex: "GET|HEAD"}
      ignoreUriCase: true
    route:
    - destination: {host: reviews, subset: v2, port: {number: 9080}}
    retries: {attempts: 3, perTryTimeout: 250ms, retryOn: "5xx,connect-failure,503"}
    timeout: 1.5s
    rewrite: {uri: /v2/api, authority: reviews-v2}
  - route:
    - destination: {host: reviews.other.svc.cluster.local, subset: v1}
      weight: 75
    - destination: {host: reviews, subset: v3}
      weight: 25
`,
      '  gateways: [mesh]\n  exportTo: ["."]',
    ),
    'VirtualService',
  );
  assert.deepEqual(vs.hosts, [{ host: 'reviews', fqdn: 'reviews.default.svc.cluster.local' }]);
  assert.deepEqual(vs.exportTo, ['.']);
  const [r0, r1] = vs.http;
  assert.deepEqual(r0!.match[0]!.uri, { kind: 'prefix', value: '/api' });
  assert.deepEqual(r0!.match[0]!.headers, [
    { name: 'end-user', match: { kind: 'exact', value: 'jason' } },
    { name: 'x-canary', match: undefined },
  ]);
  assert.deepEqual(r0!.match[0]!.method, { kind: 'regex', value: 'GET|HEAD' });
  assert.equal(r0!.match[0]!.ignoreUriCase, true);
  assert.deepEqual(r0!.route[0]!.destination, {
    host: 'reviews',
    fqdn: 'reviews.default.svc.cluster.local',
    subset: 'v2',
    port: 9080,
  });
  assert.deepEqual(r0!.retries, {
    attempts: 3,
    perTryTimeoutMs: 250,
    retryOn: ['5xx', 'connect-failure', 'retriable-status-codes'],
    retriableStatusCodes: [503],
    backoffMs: undefined,
  });
  assert.equal(r0!.timeoutMs, 1500);
  assert.deepEqual(r0!.rewrite, { uri: '/v2/api', authority: 'reviews-v2' });
  assert.deepEqual(
    r1!.route.map((d) => [d.destination.fqdn, d.weight]),
    [
      ['reviews.other.svc.cluster.local', 75],
      ['reviews.default.svc.cluster.local', 25],
    ],
  );
});

test('VirtualService: each rejection with its path (unknown fields, features not yet there, bad values)', () => {
  const lines = errors(
    VS(
      `
  - match:
    - uri: {prefix: /a, exact: /b}
      scheme: {exact: https}
      headers: {X-Upper: {exact: a}}
    - method: {regex: "(unclosed"}
    fault: {abort: {httpStatus: 503}}
    mirror: {host: shadow}
    mirrorPercentage: {value: 10}
    corsPolicy: {allowOrigins: [{exact: a}]}
    redirect: {uri: /x}
    route:
    - destination: {host: reviews}
      weight: 0
    - destination: {host: "*.wild"}
      headers: {request: {set: {a: b}}}
      weigth: 10
    retries: {attempts: 2, retryOn: "5xx,teapot", retryRemoteLocalities: true}
    timeout: 5
  - route: []
    rewrite: {uriRegexRewrite: {match: a, rewrite: b}}
    timeout: 10x
`,
      '  gateways: [my-gateway]\n  tcp: [{route: [{destination: {host: db}}]}]',
    ),
  );
  const p = 'mesh.yaml: VirtualService default/reviews: ';
  const expected = [
    'spec.gateways[0]: gateway "my-gateway": routes for gateways are not supported by Remora yet',
    'spec.tcp: TCP routes ("tcp") is not supported by Remora yet',
    'spec.http[0].match[0].uri: only one of exact, prefix, regex may be set',
    'spec.http[0].match[0].scheme: matching on the scheme ("scheme") is not supported by Remora yet',
    'spec.http[0].match[0].headers.X-Upper: header names must be lower-case tokens',
    'spec.http[0].match[1].method.regex: invalid regex "(unclosed"',
    'spec.http[0].fault: fault injection ("fault") is not supported by Remora yet',
    'spec.http[0].mirror: mirroring ("mirror") is not supported by Remora yet',
    'spec.http[0].mirrorPercentage: mirroring ("mirrorPercentage") is not supported by Remora yet',
    'spec.http[0].corsPolicy: CORS ("corsPolicy") is not supported by Remora yet',
    'spec.http[0].redirect: redirect ("redirect") is not supported by Remora yet',
    'spec.http[0].route[1].destination.host: "*.wild" is not a service host name',
    'spec.http[0].route[1].headers: header manipulation ("headers") is not supported by Remora yet',
    'spec.http[0].route[1].weigth: unknown field "weigth"',
    'spec.http[0].retries.retryOn: unknown retry condition "teapot"',
    'spec.http[0].retries.retryRemoteLocalities: retrying in other localities ("retryRemoteLocalities") is not supported by Remora yet',
    'spec.http[0].timeout: expected a duration such as "5s", got number',
    'spec.http[1].route: must not be empty',
    'spec.http[1].rewrite.uriRegexRewrite: regex rewrites ("uriRegexRewrite") is not supported by Remora yet',
    'spec.http[1].timeout: invalid duration "10x"',
  ];
  for (const e of expected) assertHas(lines, p + e);
  assertHas(
    errors(VS('  - route: [{destination: {host: a}}, {destination: {host: b}}]')),
    `${p}spec.http[0].route: the destinations' weights are all 0`,
  );
});

test('DestinationRule: subsets, load balancer (simple and consistent hash), connection pool, per-subset policy', () => {
  const dr = one(
    `
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: LEAST_CONN}
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 30ms}
      http: {http1MaxPendingRequests: 10, http2MaxRequests: 1000, maxRequestsPerConnection: 10, maxRetries: 3}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer:
        consistentHash: {httpCookie: {name: user, ttl: 0s}, maglev: {tableSize: 65537}}
  - name: v3
    labels: {version: v3}
    trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true}}}
`,
    'DestinationRule',
  );
  assert.equal(dr.fqdn, 'reviews.shop.svc.cluster.local');
  assert.deepEqual(dr.trafficPolicy?.loadBalancer, { kind: 'simple', simple: 'LEAST_REQUEST' });
  assert.deepEqual(dr.trafficPolicy?.connectionPool, {
    tcp: { maxConnections: 100, connectTimeoutMs: 30 },
    http: {
      http1MaxPendingRequests: 10,
      http2MaxRequests: 1000,
      maxRequestsPerConnection: 10,
      maxRetries: 3,
    },
  });
  assert.deepEqual(dr.subsets[1]!.trafficPolicy?.loadBalancer, {
    kind: 'consistentHash',
    hash: { kind: 'httpCookie', name: 'user', path: undefined, ttlMs: 0 },
    algorithm: { kind: 'maglev', tableSize: 65537 },
  });
  assert.deepEqual(dr.subsets[2]!.trafficPolicy?.loadBalancer, {
    kind: 'consistentHash',
    hash: { kind: 'useSourceIp' },
    algorithm: { kind: 'ringHash', minimumRingSize: undefined },
  });
});

test('DestinationRule: outlier detection, TLS and other missing features rejected with their paths', () => {
  const lines = errors(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: r
  workloadSelector: {matchLabels: {a: b}}
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 5}
    tls: {mode: SIMPLE, credentialName: my-secret}
    loadBalancer: {simple: PASSTHROUGH, consistentHash: {httpHeaderName: x}}
    connectionPool: {tcp: {maxConnections: 0, tcpKeepalive: {time: 1s}}, http: {idleTimeout: 1s}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {portLevelSettings: [{port: {number: 80}}]}
  - name: v1
  - labels: {a: b}
`);
  const p = 'mesh.yaml: DestinationRule default/r: ';
  for (const e of [
    'spec.workloadSelector: a workload selector on a DestinationRule ("workloadSelector") is not supported by Remora yet',
    'spec.trafficPolicy.outlierDetection: outlier detection ("outlierDetection") is not supported by Remora yet',
    'spec.trafficPolicy.tls.mode: value "SIMPLE" is not supported by Remora yet (supported: DISABLE, ISTIO_MUTUAL)',
    'spec.trafficPolicy.tls.credentialName: certificates from a Kubernetes secret ("credentialName") is not supported by Remora yet',
    'spec.trafficPolicy.loadBalancer: only one of simple, consistentHash may be set',
    'spec.trafficPolicy.loadBalancer.simple: value "PASSTHROUGH" is not supported by Remora yet',
    'spec.trafficPolicy.connectionPool.tcp.maxConnections: must be between 1 and 2147483647, got 0',
    'spec.trafficPolicy.connectionPool.tcp.tcpKeepalive: TCP keep-alive settings ("tcpKeepalive") is not supported by Remora yet',
    'spec.trafficPolicy.connectionPool.http.idleTimeout: an HTTP idle timeout ("idleTimeout") is not supported by Remora yet',
    'spec.subsets[0].trafficPolicy.portLevelSettings: per-port traffic policies ("portLevelSettings") is not supported by Remora yet',
    'spec.subsets[1].name: duplicate subset name "v1"',
    'spec.subsets[2].name: missing required field',
  ])
    assertHas(lines, p + e);
});

test('Sidecar: egress hosts in namespace/host form ("." is the own namespace), selector, outbound policy', () => {
  const sc = one(
    `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ratings, namespace: shop}
spec:
  workloadSelector: {labels: {app: ratings}}
  egress:
  - hosts: ["./*", "istio-system/*", "*/api.example.com", "~/*", "payments/*.payments.svc.cluster.local"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`,
    'Sidecar',
  );
  assert.deepEqual(sc.workloadSelector, { app: 'ratings' });
  assert.deepEqual(
    sc.egress[0]!.hosts.map((h) => [h.namespace, h.host]),
    [
      ['shop', '*'],
      ['istio-system', '*'],
      ['*', 'api.example.com'],
      ['~', '*'],
      ['payments', '*.payments.svc.cluster.local'],
    ],
  );
  assert.equal(sc.outboundTrafficPolicy, 'REGISTRY_ONLY');
  const lines = errors(`
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: s}
spec:
  ingress: [{port: {number: 80}}]
  egress:
  - hosts: ["Bad_NS/*", "./no spaces"]
    port: {number: 80, name: http}
  outboundTrafficPolicy: {mode: DENY_ALL, egressProxy: {host: egress}}
`);
  const p = 'mesh.yaml: Sidecar default/s: ';
  assertHas(lines, `${p}spec.ingress: inbound listeners ("ingress") is not supported by Remora yet`);
  assertHas(lines, `${p}spec.egress[0].hosts[0]: "Bad_NS" is not "*", ".", "~" or a namespace name`);
  assertHas(lines, `${p}spec.egress[0].hosts[1]: "no spaces" is not "*", "*.suffix" or a DNS name`);
  assertHas(
    lines,
    `${p}spec.egress[0].port: per-port egress listeners ("port") is not supported by Remora yet`,
  );
  assertHas(lines, `${p}spec.outboundTrafficPolicy.mode: unsupported value "DENY_ALL"`);
  assertHas(
    lines,
    `${p}spec.outboundTrafficPolicy.egressProxy: an egress proxy ("egressProxy") is not supported by Remora yet`,
  );
});

test('ServiceEntry: one DNS-resolved host; other resolutions not yet; SRV by annotation', () => {
  const se = one(
    `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop, annotations: {remora.io/dns-srv: "true"}}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS}, {number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  resolution: DNS
  location: MESH_EXTERNAL
`,
    'ServiceEntry',
  );
  assert.equal(se.host, 'api.example.com');
  assert.equal(se.srv, true);
  assert.deepEqual(
    se.ports.map((p) => [p.name, p.number, p.targetPort, p.meshProtocol]),
    [
      ['https', 443, undefined, 'TLS'],
      ['http', 80, 8080, 'HTTP'],
    ],
  );
  const lines = errors(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: ["*.example.com", b.example.com]
  ports: [{number: 443, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 1.2.3.4}]
`);
  const p = 'mesh.yaml: ServiceEntry default/api: ';
  assertHas(lines, `${p}spec.hosts: Remora resolves one host per ServiceEntry`);
  assertHas(lines, `${p}spec.hosts[0]: "*.example.com" is not a fully qualified DNS name`);
  assertHas(lines, `${p}spec.ports[0].name: missing required field`);
  assertHas(lines, `${p}spec.resolution: value "STATIC" is not supported by Remora yet`);
  assertHas(lines, `${p}spec.endpoints: field "endpoints" is not supported by Remora yet`);
});

test('documents: several per file, Lists (typed or not), empty documents, syntax errors, unknown kinds', () => {
  const r = parse(`
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop}
- apiVersion: v1
  kind: Service
  metadata: {name: a, namespace: shop}
  spec: {ports: [{port: 80}]}
---
---
apiVersion: v1
kind: ServiceList
items:
- metadata: {name: b}
  spec: {ports: [{port: 81}]}
- metadata: {name: c}
  spec: {ports: [{port: 0}]}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
`);
  assert.deepEqual(
    r.objects.map((o) => `${o.kind} ${o.meta.namespace}/${o.meta.name}`),
    ['Namespace shop/shop', 'Service shop/a', 'Service default/b'],
  );
  const lines = r.errors.map(formatManifestError);
  assertHas(lines, 'mesh.yaml: Service default/c: spec.ports[0].port: must be between 1 and 65535');
  assertHas(lines, 'mesh.yaml: Gateway default/gw: kind: Gateway is not supported by Remora yet');
  assertHas(
    lines,
    'mesh.yaml: Deployment default/web: kind: "Deployment" (apps/v1) is not a kind Remora reads',
  );
  assert.deepEqual(
    r.errors.map((e) => e.code),
    ['RA0102', 'RA0103', 'RA0103'],
  );
  const bad = parse(
    'apiVersion: v1\nkind: Service\nmetadata: {name: a\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n',
  );
  assert.deepEqual(
    bad.objects.map((o) => o.meta.name),
    ['ok'],
  );
  assert.equal(bad.errors[0]!.code, 'RA0101');
  assert.match(
    formatManifestError(bad.errors[0]!),
    /^mesh\.yaml: document 1: YAML syntax error at line \d+, column \d+: /,
  );
  assertHas(
    errors('apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {}\nspec2: {}\n'),
    'mesh.yaml: Service default/a: spec2: unknown field "spec2"',
  );
  assertHas(errors('[1, 2]'), 'mesh.yaml: document 1: expected an object, got array');
  assertHas(
    errors('kind: Service\nmetadata: {name: a}'),
    'mesh.yaml: Service default/a: apiVersion: missing required field',
  );
  assertHas(
    errors('apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\nspec: {}'),
    'mesh.yaml: document 1: metadata.name: missing required field',
  );
});

test('durations: Go and protobuf forms, in milliseconds', async () => {
  const { parseDuration } = await import('./common.js');
  const ms = (t: string) => {
    const r = parseDuration(t);
    return r.ok ? r.ms : r.message;
  };
  assert.equal(ms('5s'), 5000);
  assert.equal(ms('0.250s'), 250);
  assert.equal(ms('250ms'), 250);
  assert.equal(ms('1m30s'), 90_000);
  assert.equal(ms('1h'), 3_600_000);
  assert.equal(ms('100us'), 1);
  assert.equal(ms('0'), 0);
  assert.match(String(ms('-1s')), /must not be negative/);
  assert.match(String(ms('5')), /invalid duration "5"/);
  assert.match(String(ms('1d')), /invalid duration "1d"/);
});
