// The generator: Istio's names and layout, protocols, VirtualService and DestinationRule translation, Sidecar
// scoping, the inbound listener, proxyless gRPC, and purity (endpoint changes touch only the endpoints).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildSnapshot } from '../model/build.js';
import { generate, planProxy } from './generate.js';
import type { ProxyGroup } from './identity.js';
import { objectsOf, snapshotOf, syntheticMesh } from './mesh.fixture.js';
import type { Json } from './names.js';

const sidecar = (namespace: string, labels: Record<string, string> = {}): ProxyGroup => ({
  kind: 'sidecar',
  namespace,
  labels,
  ipFamilies: ['v4'],
});

const byName = (list: readonly Json[], name: string): Json => {
  const found = list.find((r) => (r.name ?? r.cluster_name) === name);
  assert.ok(found, `${name} is generated (have: ${list.map((r) => r.name ?? r.cluster_name).join(', ')})`);
  return found;
};
const names = (list: readonly Json[]) => list.map((r) => String(r.name ?? r.cluster_name));
// biome-ignore lint/suspicious/noExplicitAny: reading deep into generated JSON in assertions
const at = (v: Json): any => v;

const SHOP = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.0.0.10
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: grpc-api, port: 9090, targetPort: 9091}
  - {name: tcp-db, port: 5432}
  - {name: other, port: 7000}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  clusterIP: 10.0.0.20
  ports: [{name: pg, port: 5432, appProtocol: tcp}]
---
apiVersion: v1
kind: Service
metadata: {name: cache, namespace: shop}
spec:
  clusterIP: 10.0.0.30
  ports: [{port: 7000}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: grpc-api, port: 9091}]
endpoints:
- {addresses: [10.1.0.1], zone: z1}
- {addresses: [10.1.0.2], conditions: {ready: false}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-vm, namespace: shop}
spec: {address: 10.2.0.1, labels: {app: web, version: v2}, ports: {http: 18080}, weight: 3, locality: eu/west/a}
`;

test('examples-style layout: Istio names, EDS clusters per port and subset, passthrough clusters', () => {
  const c = generate(snapshotOf(SHOP), sidecar('shop'));
  assert.deepEqual(names(c.listeners), [
    'virtualOutbound',
    '0.0.0.0_80',
    '0.0.0.0_5432',
    '0.0.0.0_7000',
    '0.0.0.0_9090',
    'virtualInbound',
  ]);
  assert.deepEqual(names(c.routes), ['80', '7000', '9090']);
  assert.deepEqual(names(c.clusters).slice(0, 3), [
    'PassthroughCluster',
    'BlackHoleCluster',
    'InboundPassthroughCluster',
  ]);
  assert.ok(names(c.clusters).includes('outbound|80||web.shop.svc.cluster.local'));
  assert.ok(names(c.clusters).includes('outbound|5432||db.shop.svc.cluster.local'));
  const web = byName(c.clusters, 'outbound|80||web.shop.svc.cluster.local');
  assert.deepEqual(web.eds_cluster_config, {
    eds_config: { ads: {}, resource_api_version: 'V3' },
    service_name: 'outbound|80||web.shop.svc.cluster.local',
  });
  assert.equal(web.type, 'EDS');
  assert.equal(web.connect_timeout, '10s');
  assert.equal(web.lb_policy, undefined, 'ROUND_ROBIN, the default');
  // Every EDS cluster has its assignment, and nothing else has one.
  assert.deepEqual(names(c.endpoints), names(c.clusters.filter((x) => x.type === 'EDS')));
  const outbound = byName(c.listeners, 'virtualOutbound');
  assert.equal(outbound.use_original_dst, true);
  assert.equal(
    at(outbound).filter_chains[0].filters.at(-1).typed_config.cluster,
    'PassthroughCluster',
    'ALLOW_ANY by default',
  );
  const inboundPass = byName(c.clusters, 'InboundPassthroughCluster');
  assert.equal(inboundPass.type, 'ORIGINAL_DST');
  assert.equal(at(inboundPass).upstream_bind_config.source_address.address, '127.0.0.6');
});

test('endpoints: ready ones only, on the service port, grouped by locality with non-zero weights', () => {
  const c = generate(snapshotOf(SHOP), sidecar('shop'));
  const cla = byName(c.endpoints, 'outbound|80||web.shop.svc.cluster.local');
  assert.deepEqual(cla.endpoints, [
    {
      locality: { region: 'eu', zone: 'west', sub_zone: 'a' },
      lb_endpoints: [
        {
          endpoint: { address: { socket_address: { address: '10.2.0.1', port_value: 18080 } } },
          load_balancing_weight: 3,
        },
      ],
      load_balancing_weight: 3,
    },
    {
      locality: { zone: 'z1' },
      lb_endpoints: [
        { endpoint: { address: { socket_address: { address: '10.1.0.1', port_value: 8080 } } } },
      ],
      load_balancing_weight: 1,
    },
  ]);
  // The WorkloadEntry names no grpc-api port: it serves it on the numeric targetPort.
  const grpc = byName(c.endpoints, 'outbound|9090||web.shop.svc.cluster.local');
  assert.deepEqual(
    at(grpc).endpoints.flatMap((l: Json) =>
      at(l).lb_endpoints.map((e: Json) => at(e).endpoint.address.socket_address),
    ),
    [
      { address: '10.2.0.1', port_value: 9091 },
      { address: '10.1.0.1', port_value: 9091 },
    ],
  );
  assert.deepEqual(byName(c.endpoints, 'outbound|5432||db.shop.svc.cluster.local').endpoints, []);
});

test('protocols: HTTP by RDS, TCP by cluster IP, undeclared ports detected, gRPC upstreams over HTTP/2', () => {
  const c = generate(snapshotOf(SHOP), sidecar('shop'));
  const http = at(byName(c.listeners, '0.0.0.0_80'));
  assert.equal(http.bind_to_port, false);
  assert.equal(http.filter_chains.length, 1);
  assert.deepEqual(http.filter_chains[0].filters.at(-1).typed_config.rds, {
    config_source: { ads: {}, resource_api_version: 'V3' },
    route_config_name: '80',
  });
  // 5432: db (TCP, appProtocol) and web's tcp-db, each by its cluster IP; the rest passes through.
  const tcp = at(byName(c.listeners, '0.0.0.0_5432'));
  assert.deepEqual(
    tcp.filter_chains.map((f: Json) => [
      at(f).filter_chain_match?.prefix_ranges,
      at(f).filters.at(-1).typed_config.cluster,
    ]),
    [
      [[{ address_prefix: '10.0.0.20', prefix_len: 32 }], 'outbound|5432||db.shop.svc.cluster.local'],
      [[{ address_prefix: '10.0.0.10', prefix_len: 32 }], 'outbound|5432||web.shop.svc.cluster.local'],
      [undefined, 'PassthroughCluster'],
    ],
  );
  // 7000: undeclared protocol: http_inspector decides per connection.
  const sniffed = at(byName(c.listeners, '0.0.0.0_7000'));
  assert.equal(sniffed.listener_filters[0].name, 'envoy.filters.listener.http_inspector');
  // Written out: unset would mean Envoy's 15 s and close, and a client that speaks second would be dropped.
  assert.equal(sniffed.listener_filters_timeout, '0.100s');
  assert.equal(sniffed.continue_on_listener_filters_timeout, true);
  assert.deepEqual(
    sniffed.filter_chains.map((f: Json) => [at(f).filter_chain_match ?? {}, at(f).filters.at(-1).name]),
    [
      [
        {
          prefix_ranges: [{ address_prefix: '10.0.0.30', prefix_len: 32 }],
          application_protocols: ['http/1.0', 'http/1.1', 'h2c'],
        },
        'envoy.filters.network.http_connection_manager',
      ],
      [
        { prefix_ranges: [{ address_prefix: '10.0.0.30', prefix_len: 32 }] },
        'envoy.filters.network.tcp_proxy',
      ],
      [
        {
          prefix_ranges: [{ address_prefix: '10.0.0.10', prefix_len: 32 }],
          application_protocols: ['http/1.0', 'http/1.1', 'h2c'],
        },
        'envoy.filters.network.http_connection_manager',
      ],
      [
        { prefix_ranges: [{ address_prefix: '10.0.0.10', prefix_len: 32 }] },
        'envoy.filters.network.tcp_proxy',
      ],
      [
        { application_protocols: ['http/1.0', 'http/1.1', 'h2c'] },
        'envoy.filters.network.http_connection_manager',
      ],
      [{}, 'envoy.filters.network.tcp_proxy'],
    ],
  );
  const opts = (name: string) =>
    at(byName(c.clusters, name)).typed_extension_protocol_options?.[
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions'
    ];
  assert.deepEqual(opts('outbound|9090||web.shop.svc.cluster.local').explicit_http_config, {
    http2_protocol_options: {},
  });
  assert.deepEqual(opts('outbound|7000||cache.shop.svc.cluster.local').use_downstream_protocol_config, {});
  assert.equal(opts('outbound|80||web.shop.svc.cluster.local'), undefined, 'HTTP/1.1 is the default');
});

test('virtual hosts: every name of the service, with and without the port; short names in its namespace only', () => {
  const mesh = snapshotOf(SHOP);
  const own = at(byName(generate(mesh, sidecar('shop')).routes, '80'));
  assert.deepEqual(
    own.virtual_hosts.map((v: Json) => v.name),
    ['web.shop.svc.cluster.local:80', 'allow_any'],
  );
  assert.deepEqual(own.virtual_hosts[0].domains, [
    'web.shop.svc.cluster.local',
    'web.shop.svc.cluster.local:80',
    'web.shop.svc',
    'web.shop.svc:80',
    'web.shop',
    'web.shop:80',
    'web',
    'web:80',
    '10.0.0.10',
    '10.0.0.10:80',
  ]);
  assert.deepEqual(own.virtual_hosts[1].routes[0].route, { cluster: 'PassthroughCluster', timeout: '0s' });
});

const ROUTED = `${SHOP}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: shop}
spec:
  host: web
  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: x-user}}
    connectionPool: {tcp: {maxConnections: 10, connectTimeout: 1500ms}, http: {http2MaxRequests: 30, maxRetries: 1}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - name: v2
    labels: {version: v2}
    trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http:
  - name: canary
    match:
    - uri: {prefix: /api}
      method: {exact: GET}
      headers: {x-canary: {exact: "yes"}, x-trace: {}}
      queryParams: {debug: {regex: "1|true"}}
      ignoreUriCase: true
    - uri: {regex: "/v[0-9]+/.*"}
    - uri: {exact: /only-on-9090}
      port: 9090
    route:
    - destination: {host: web, subset: v1}
      weight: 75
    - destination: {host: web, subset: v2}
      weight: 25
    - destination: {host: db, port: {number: 5432}}
      weight: 0
    rewrite: {uri: /internal, authority: web.internal}
    retries: {attempts: 4, perTryTimeout: 250ms, retryOn: "gateway-error,502", backoff: 100ms}
    timeout: 2s
  - name: no-retries
    match: [{uri: {exact: /pay}}]
    route: [{destination: {host: web}}]
    retries: {attempts: 0}
`;

test('VirtualService routes: matches, weighted subsets, retries, timeout, rewrites, then the default route', () => {
  const c = generate(snapshotOf(ROUTED), sidecar('shop'));
  const vh = at(byName(c.routes, '80')).virtual_hosts[0];
  assert.deepEqual(
    vh.routes.map((r: Json) => r.name),
    ['canary', 'canary', 'no-retries', 'default'],
  );
  const [first, regex, pay, fallback] = vh.routes;
  assert.deepEqual(first.match, {
    prefix: '/api',
    case_sensitive: false,
    headers: [
      { name: ':method', string_match: { exact: 'GET' } },
      { name: 'x-canary', string_match: { exact: 'yes' } },
      { name: 'x-trace', present_match: true },
    ],
    query_parameters: [{ name: 'debug', string_match: { safe_regex: { regex: '1|true' } } }],
  });
  assert.deepEqual(first.route, {
    weighted_clusters: {
      clusters: [
        { name: 'outbound|80|v1|web.shop.svc.cluster.local', weight: 75 },
        { name: 'outbound|80|v2|web.shop.svc.cluster.local', weight: 25 },
      ],
    },
    prefix_rewrite: '/internal',
    host_rewrite_literal: 'web.internal',
    timeout: '2s',
    retry_policy: {
      retry_on: 'gateway-error,retriable-status-codes',
      num_retries: 4,
      per_try_timeout: '0.250s',
      retriable_status_codes: [502],
      retry_back_off: { base_interval: '0.100s' },
    },
    hash_policy: [{ header: { header_name: 'x-user' } }],
  });
  assert.deepEqual(regex.match, { safe_regex: { regex: '/v[0-9]+/.*' } });
  assert.deepEqual(regex.route.regex_rewrite, { pattern: { regex: '^.*$' }, substitution: '/internal' });
  assert.equal(regex.route.prefix_rewrite, undefined);
  assert.deepEqual(pay.match, { path: '/pay' });
  assert.equal(pay.route.retry_policy, undefined, 'attempts: 0 turns retries off');
  assert.equal(pay.route.timeout, '0s', 'no timeout unless one is given');
  assert.deepEqual(fallback, {
    name: 'default',
    match: { prefix: '/' },
    route: {
      cluster: 'outbound|80||web.shop.svc.cluster.local',
      timeout: '0s',
      retry_policy: {
        retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
        num_retries: 2,
        retriable_status_codes: [503],
      },
      hash_policy: [{ header: { header_name: 'x-user' } }],
    },
  });
  // The match for port 9090 appears on that port's routes only.
  const grpc = at(byName(c.routes, '9090')).virtual_hosts[0].routes;
  assert.deepEqual(
    grpc.map((r: Json) => at(r).match.path ?? at(r).match.prefix ?? 'regex'),
    ['/api', 'regex', '/only-on-9090', '/pay', '/'],
  );
  assert.equal(
    grpc[2].route.weighted_clusters.clusters[0].name,
    'outbound|9090|v1|web.shop.svc.cluster.local',
  );
});

test('DestinationRule: load balancer, pool limits and connect timeout; a subset policy replaces the rule part it sets', () => {
  const c = generate(snapshotOf(ROUTED), sidecar('shop'));
  const all = byName(c.clusters, 'outbound|80||web.shop.svc.cluster.local');
  assert.equal(all.lb_policy, 'RING_HASH');
  assert.equal(all.connect_timeout, '1.500s');
  assert.deepEqual(all.circuit_breakers, {
    thresholds: [{ max_connections: 10, max_requests: 30, max_retries: 1 }],
  });
  const v1 = byName(c.clusters, 'outbound|80|v1|web.shop.svc.cluster.local');
  assert.equal(v1.lb_policy, 'RING_HASH');
  const v2 = byName(c.clusters, 'outbound|80|v2|web.shop.svc.cluster.local');
  assert.equal(v2.lb_policy, 'LEAST_REQUEST');
  assert.deepEqual(v2.circuit_breakers, all.circuit_breakers, 'the pool is inherited');
  // Subset endpoints: only the WorkloadEntry has version v2; the slice's endpoint has no labels.
  const ep = (n: string) =>
    at(byName(c.endpoints, n)).endpoints.flatMap((l: Json) =>
      at(l).lb_endpoints.map((e: Json) => at(e).endpoint.address.socket_address.address),
    );
  assert.deepEqual(ep('outbound|80|v2|web.shop.svc.cluster.local'), ['10.2.0.1']);
  assert.deepEqual(ep('outbound|80|v1|web.shop.svc.cluster.local'), []);
});

const SCOPED = `
apiVersion: v1
kind: Service
metadata: {name: a, namespace: one}
spec: {clusterIP: 10.0.1.1, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: two}
spec: {clusterIP: 10.0.2.1, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: c, namespace: three}
spec: {clusterIP: 10.0.3.1, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: d, namespace: four}
spec: {clusterIP: 10.0.4.1, ports: [{name: http, port: 80}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: calls-b, namespace: one}
spec:
  hosts: [b.two.svc.cluster.local]
  exportTo: ["."]
  http: [{route: [{destination: {host: b.two.svc.cluster.local}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: two}
spec:
  hosts: [b]
  http: [{route: [{destination: {host: c.three.svc.cluster.local}}]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: four}
spec:
  egress: [{hosts: ["./*", "one/a.one.svc.cluster.local"]}]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`;

test('scope without a Sidecar: the own namespace, what its VirtualServices call, and their destinations', () => {
  const mesh = snapshotOf(SCOPED);
  const hosts = (ns: string) =>
    names(generate(mesh, sidecar(ns)).clusters)
      .filter((n) => n.startsWith('outbound|'))
      .map((n) => n.split('|')[3]);
  // one: its own a, and b, which its VirtualService calls; for b it uses that VirtualService (its namespace's
  // first), which routes to b itself, so c is not reached.
  assert.deepEqual(hosts('one'), ['a.one.svc.cluster.local', 'b.two.svc.cluster.local']);
  // two: b, and c, where b's VirtualService (in two) routes.
  assert.deepEqual(hosts('two'), ['b.two.svc.cluster.local', 'c.three.svc.cluster.local']);
  assert.deepEqual(hosts('three'), ['c.three.svc.cluster.local']);
  assert.deepEqual(hosts('nowhere'), []);
  // A proxyless gRPC client is sent only what it asks for by name: it may ask for any service.
  const grpc = generate(mesh, { kind: 'grpc', namespace: 'nowhere', labels: {}, ipFamilies: [] });
  assert.deepEqual(names(grpc.listeners), [
    'a.one.svc.cluster.local:80',
    'b.two.svc.cluster.local:80',
    'c.three.svc.cluster.local:80',
    'd.four.svc.cluster.local:80',
  ]);
});

test('scope with a Sidecar: its egress hosts; REGISTRY_ONLY sends the unknown to the black hole', () => {
  const c = generate(snapshotOf(SCOPED), sidecar('four'));
  assert.deepEqual(
    names(c.clusters).filter((n) => n.startsWith('outbound|')),
    ['outbound|80||a.one.svc.cluster.local', 'outbound|80||d.four.svc.cluster.local'],
  );
  assert.equal(
    at(byName(c.listeners, 'virtualOutbound')).filter_chains[0].filters.at(-1).typed_config.cluster,
    'BlackHoleCluster',
  );
  const last = at(byName(c.routes, '80')).virtual_hosts.at(-1);
  assert.equal(last.name, 'block_all');
  assert.equal(last.routes[0].direct_response.status, 502);
  // `a` is in another namespace: no bare short name for it.
  const a = at(byName(c.routes, '80')).virtual_hosts.find(
    (v: Json) => v.name === 'a.one.svc.cluster.local:80',
  );
  assert.ok(!a.domains.includes('a'));
  assert.ok(a.domains.includes('a.one'));
});

test('inbound: virtualInbound has a chain per port its Services give the workload, to inbound|<port>||', () => {
  const c = generate(snapshotOf(SHOP), sidecar('shop', { app: 'web', version: 'v2' }));
  const inbound = at(byName(c.listeners, 'virtualInbound'));
  assert.equal(inbound.listener_filters[0].name, 'envoy.filters.listener.original_dst');
  assert.deepEqual(
    inbound.filter_chains.map((f: Json) => [
      at(f).name,
      at(f).filter_chain_match?.destination_port,
      at(f).filters.at(-1).name.split('.').at(-1),
    ]),
    [
      ['inbound|5432||', 5432, 'tcp_proxy'],
      ['inbound|7000||-http', 7000, 'http_connection_manager'],
      ['inbound|7000||', 7000, 'tcp_proxy'],
      ['inbound|9091||', 9091, 'http_connection_manager'],
      // The WorkloadEntry with these labels serves `http` on 18080, not the Service's targetPort.
      ['inbound|18080||', 18080, 'http_connection_manager'],
      ['virtualInbound-catchall-tcp', undefined, 'tcp_proxy'],
    ],
  );
  assert.deepEqual(
    names(c.clusters).filter((n) => n.startsWith('inbound|')),
    ['inbound|5432||', 'inbound|7000||', 'inbound|9091||', 'inbound|18080||'],
  );
  const h2 = at(byName(c.clusters, 'inbound|9091||')).typed_extension_protocol_options[
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions'
  ];
  assert.deepEqual(h2.explicit_http_config, { http2_protocol_options: {} });
  // A proxy no Service selects passes everything through.
  const none = at(byName(generate(snapshotOf(SHOP), sidecar('shop')).listeners, 'virtualInbound'));
  assert.deepEqual(
    none.filter_chains.map((f: Json) => f.name),
    ['virtualInbound-catchall-tcp'],
  );
});

test('INTERCEPTION_MODE NONE: bound listeners on the bind address, an inbound listener, no capture resources', () => {
  const c = generate(snapshotOf(SHOP), {
    ...sidecar('shop', { app: 'web', version: 'v2' }),
    interception: {
      mode: 'NONE',
      outboundBindAddress: '127.0.0.2',
      inbound: { address: '127.0.0.1', port: 15006 },
    },
  });
  const summary = (l: Json) => [
    at(l).name,
    at(l).address.socket_address.address,
    at(l).address.socket_address.port_value,
    at(l).bind_to_port,
    at(l).filter_chains.map((f: Json) => `${at(f).name} ${at(f).filters.at(-1).name.split('.').at(-1)}`),
  ];
  assert.deepEqual(c.listeners.map(summary), [
    ['127.0.0.2_80', '127.0.0.2', 80, true, ['outbound_127.0.0.2_80-http http_connection_manager']],
    // Chains cannot match cluster IPs on a bound listener: the port's first TCP service (by hostname) takes it.
    ['127.0.0.2_5432', '127.0.0.2', 5432, true, ['outbound|5432||db.shop.svc.cluster.local tcp_proxy']],
    [
      '127.0.0.2_7000',
      '127.0.0.2',
      7000,
      true,
      [
        'outbound_127.0.0.2_7000-http http_connection_manager',
        'outbound|7000||cache.shop.svc.cluster.local tcp_proxy',
      ],
    ],
    ['127.0.0.2_9090', '127.0.0.2', 9090, true, ['outbound_127.0.0.2_9090-http http_connection_manager']],
    // To the workload's first port (5432, TCP), on 127.0.0.1.
    ['inbound_127.0.0.1_15006', '127.0.0.1', 15006, undefined, ['inbound|5432|| tcp_proxy']],
  ]);
  assert.deepEqual(
    at(byName(c.listeners, '127.0.0.2_7000')).listener_filters[0].name,
    'envoy.filters.listener.http_inspector',
  );
  assert.deepEqual(names(c.routes), ['80', '7000', '9090']);
  // Nothing to pass through to without an original destination: unknown hosts are refused.
  assert.equal(at(byName(c.routes, '80')).virtual_hosts.at(-1).name, 'block_all');
  assert.deepEqual(
    names(c.clusters).filter((n) => !n.startsWith('outbound|')),
    ['BlackHoleCluster', 'inbound|5432||'],
  );
  assert.deepEqual(
    at(byName(c.clusters, 'inbound|5432||')).load_assignment.endpoints[0].lb_endpoints[0].endpoint,
    {
      address: { socket_address: { address: '127.0.0.1', port_value: 5432 } },
    },
  );
  assert.ok(!c.clusters.some((cl) => cl.type === 'ORIGINAL_DST'));
  // The outbound EDS clusters are those of capture mode.
  const capture = generate(snapshotOf(SHOP), sidecar('shop', { app: 'web', version: 'v2' }));
  assert.deepEqual(
    c.clusters.filter((cl) => cl.type === 'EDS'),
    capture.clusters.filter((cl) => cl.type === 'EDS'),
  );
  // Without an inbound address, or for a workload no Service selects: outbound listeners only.
  const plain = generate(snapshotOf(SHOP), {
    ...sidecar('shop'),
    interception: {
      mode: 'NONE',
      outboundBindAddress: '127.0.0.1',
      inbound: { address: '127.0.0.1', port: 15006 },
    },
  });
  assert.deepEqual(names(plain.listeners), [
    '127.0.0.1_80',
    '127.0.0.1_5432',
    '127.0.0.1_7000',
    '127.0.0.1_9090',
  ]);
});

test('IPv6 workloads get dual-stack listeners', () => {
  const c = generate(snapshotOf(SHOP), { ...sidecar('shop'), ipFamilies: ['v4', 'v6'] });
  assert.deepEqual(at(byName(c.listeners, 'virtualOutbound')).address, {
    socket_address: { address: '::', port_value: 15001, ipv4_compat: true },
  });
});

test('proxyless gRPC: a listener <hostname>:<port> with an api_listener, routes of the same name, no capture resources', () => {
  const c = generate(snapshotOf(ROUTED), { kind: 'grpc', namespace: 'shop', labels: {}, ipFamilies: [] });
  assert.deepEqual(names(c.listeners), [
    'cache.shop.svc.cluster.local:7000',
    'web.shop.svc.cluster.local:80',
    'web.shop.svc.cluster.local:9090',
    'web.shop.svc.cluster.local:7000',
  ]);
  assert.deepEqual(names(c.routes), names(c.listeners));
  const l = at(byName(c.listeners, 'web.shop.svc.cluster.local:9090'));
  assert.equal(l.api_listener.api_listener.rds.route_config_name, 'web.shop.svc.cluster.local:9090');
  assert.equal(l.api_listener.api_listener.http_filters.at(-1).name, 'envoy.filters.http.router');
  assert.ok(!names(c.clusters).includes('PassthroughCluster'));
  // gRPC clients implement ROUND_ROBIN and RING_HASH only.
  assert.equal(byName(c.clusters, 'outbound|9090|v2|web.shop.svc.cluster.local').lb_policy, undefined);
  assert.equal(byName(c.clusters, 'outbound|9090|v1|web.shop.svc.cluster.local').lb_policy, 'RING_HASH');
  const vh = at(byName(c.routes, 'web.shop.svc.cluster.local:9090')).virtual_hosts[0];
  assert.ok(vh.domains.includes('web.shop.svc.cluster.local:9090'));
});

test('pure and stable: equal inputs give equal output, whatever the order of the objects', () => {
  const objects = objectsOf(ROUTED);
  const a = generate(buildSnapshot(objects), sidecar('shop'));
  const b = generate(buildSnapshot([...objects].reverse()), sidecar('shop'));
  assert.deepEqual(a, b);
  assert.equal(JSON.stringify(a), JSON.stringify(b));
});

test('an endpoint-only change leaves everything but the endpoints as it was', () => {
  const before = snapshotOf(ROUTED);
  const after = snapshotOf(ROUTED.replace('10.1.0.1', '10.1.0.9'));
  assert.notEqual(before.version, after.version);
  assert.equal(before.versions.services, after.versions.services);
  const proxy = sidecar('shop', { app: 'web', version: 'v2' });
  assert.deepEqual(planProxy(after, proxy), planProxy(before, proxy));
  assert.notDeepEqual(generate(after, proxy).endpoints, generate(before, proxy).endpoints);
});

test('synthetic mesh: Sidecar-scoped namespaces get less than the unscoped one', () => {
  const mesh = syntheticMesh(3, 4);
  // ns1 reaches ns1 and ns0 (its Sidecar); ns0 reaches itself, svc0.ns1 (its VirtualService) and the ServiceEntry.
  const ns1 = names(generate(mesh, sidecar('ns1')).clusters);
  assert.ok(ns1.includes('outbound|80||svc3.ns0.svc.cluster.local'));
  assert.ok(ns1.includes('outbound|80||svc3.ns1.svc.cluster.local'));
  assert.ok(!ns1.some((n) => n.endsWith('ns2.svc.cluster.local')));
  const ns0 = names(generate(mesh, sidecar('ns0')).clusters);
  assert.ok(ns0.includes('outbound|80|v1|svc0.ns1.svc.cluster.local'));
  assert.ok(!ns0.some((n) => n.endsWith('ns2.svc.cluster.local')));
  assert.ok(ns0.includes('outbound|443||api.example.com'));
});
