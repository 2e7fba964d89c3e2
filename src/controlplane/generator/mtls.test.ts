// Automatic mTLS in generated config: transport socket matches toward sidecars, endpoint metadata, istio.alpn, and
// inbound chains per PeerAuthentication mode.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generate } from './generate.js';
import type { ProxyGroup } from './identity.js';
import { snapshotOf } from './mesh.fixture.js';

// biome-ignore lint/suspicious/noExplicitAny: reading deep into generated JSON in assertions
type Json = Record<string, any>;

const MESHED = { 'security.istio.io/tlsMode': 'istio' };

const sidecar = (labels: Record<string, string>, extra: Partial<ProxyGroup> = {}): ProxyGroup => ({
  kind: 'sidecar',
  namespace: 'shop',
  labels,
  ipFamilies: ['v4'],
  ...extra,
});

const MESH = `
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  clusterIP: 10.0.0.20
  selector: {app: api}
  ports: [{name: http, port: 8080}, {name: tcp-db, port: 5432}, {name: other, port: 7000}]
---
apiVersion: v1
kind: Service
metadata: {name: legacy, namespace: shop}
spec:
  clusterIP: 10.0.0.30
  selector: {app: legacy}
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-1, namespace: shop}
spec:
  address: 10.1.0.1
  serviceAccount: api
  labels: {app: api, security.istio.io/tlsMode: istio}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-2, namespace: shop}
spec: {address: 10.1.0.2, labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: legacy-1, namespace: shop}
spec: {address: 10.1.0.3, labels: {app: legacy}}
`;

const byName = (list: readonly Json[], name: string): Json => {
  const r = list.find((x) => (x.name ?? x.cluster_name) === name);
  assert.ok(r, `no ${name}`);
  return r;
};

test('a service whose workloads speak mTLS: TLS to those endpoints, verified by their identities; plaintext to the rest', () => {
  const c = generate(snapshotOf(MESH), sidecar({ app: 'web' }, { trustDomain: 'example.org' }));
  const api = byName(c.clusters, 'outbound|8080||api.shop.svc.cluster.local');
  const [tls, plain] = api.transport_socket_matches;
  assert.equal(tls.name, 'tlsMode-istio');
  assert.deepEqual(tls.match, { tlsMode: 'istio' });
  const ctx = tls.transport_socket.typed_config;
  assert.equal(ctx.sni, 'outbound_.8080_._.api.shop.svc.cluster.local');
  assert.deepEqual(
    ctx.common_tls_context.tls_certificate_sds_secret_configs.map((s: Json) => s.name),
    ['default'],
  );
  const validation = ctx.common_tls_context.combined_validation_context;
  assert.equal(validation.validation_context_sds_secret_config.name, 'ROOTCA');
  // Both workloads' accounts: one without a service account runs as `default`, as a Pod does.
  assert.deepEqual(
    validation.default_validation_context.match_typed_subject_alt_names.map((m: Json) => m.matcher.exact),
    ['spiffe://example.org/ns/shop/sa/api', 'spiffe://example.org/ns/shop/sa/default'],
  );
  assert.equal(ctx.common_tls_context.tls_params.tls_minimum_protocol_version, 'TLSv1_2');
  assert.deepEqual(plain, {
    name: 'tlsMode-disabled',
    match: {},
    transport_socket: {
      name: 'envoy.transport_sockets.raw_buffer',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
      },
    },
  });
  // Only the endpoint whose workload has a sidecar with an identity is matched to TLS.
  const cla = byName(c.endpoints, 'outbound|8080||api.shop.svc.cluster.local');
  const lb = cla.endpoints.flatMap((l: Json) => l.lb_endpoints);
  const metadataOf = (ip: string) =>
    lb.find((e: Json) => e.endpoint.address.socket_address.address === ip)?.metadata;
  assert.deepEqual(metadataOf('10.1.0.1'), {
    filter_metadata: { 'envoy.transport_socket_match': { tlsMode: 'istio' } },
  });
  assert.equal(metadataOf('10.1.0.2'), undefined);
  // No workload of legacy speaks mTLS: a plain cluster, as before.
  assert.equal(
    byName(c.clusters, 'outbound|8080||legacy.shop.svc.cluster.local').transport_socket_matches,
    undefined,
  );
});

test('istio.alpn goes first in the HTTP chains of a port with an mTLS service', () => {
  const c = generate(snapshotOf(MESH), sidecar({ app: 'web' }));
  const filtersOf = (listener: string) =>
    byName(c.listeners, listener)
      .filter_chains.flatMap((ch: Json) => ch.filters)
      .filter((f: Json) => f.name === 'envoy.filters.network.http_connection_manager')
      .map((f: Json) => f.typed_config.http_filters.map((h: Json) => h.name));
  for (const names of filtersOf('0.0.0.0_8080'))
    assert.deepEqual(names, ['istio.alpn', 'istio.stats', 'envoy.filters.http.router']);
  const alpn = byName(c.listeners, '0.0.0.0_8080').filter_chains.at(-1).filters[0].typed_config
    .http_filters[0];
  assert.deepEqual(alpn.typed_config.alpn_override, [
    { alpn_override: ['istio-http/1.0', 'istio'] },
    { upstream_protocol: 'HTTP11', alpn_override: ['istio-http/1.1', 'istio'] },
    { upstream_protocol: 'HTTP2', alpn_override: ['istio-h2', 'istio'] },
  ]);
});

const chainsOf = (c: ReturnType<typeof generate>) =>
  byName(c.listeners, 'virtualInbound').filter_chains.map((ch: Json) => ({
    name: ch.name,
    port: ch.filter_chain_match?.destination_port,
    transport: ch.filter_chain_match?.transport_protocol,
    alpn: ch.filter_chain_match?.application_protocols,
    tls: ch.transport_socket?.typed_config?.require_client_certificate,
  }));

const peerAuth = (mode: string, extra = '') => `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: ${mode}}}
${extra}`;

test('PERMISSIVE (the default) on a workload with an identity: mTLS chains told apart by ALPN, beside plaintext', () => {
  const c = generate(snapshotOf(MESH), sidecar({ app: 'api', ...MESHED }));
  const inbound = byName(c.listeners, 'virtualInbound');
  assert.deepEqual(
    inbound.listener_filters.map((f: Json) => f.name),
    [
      'envoy.filters.listener.original_dst',
      'envoy.filters.listener.tls_inspector',
      'envoy.filters.listener.http_inspector',
    ],
  );
  const all = ['istio-http/1.0', 'istio-http/1.1', 'istio-h2', 'istio-peer-exchange', 'istio'];
  assert.deepEqual(chainsOf(c), [
    { name: 'inbound|5432||-mtls', port: 5432, transport: 'tls', alpn: all, tls: true },
    { name: 'inbound|5432||', port: 5432, transport: undefined, alpn: undefined, tls: undefined },
    {
      name: 'inbound|7000||-mtls-http',
      port: 7000,
      transport: 'tls',
      alpn: ['istio-http/1.0', 'istio-http/1.1', 'istio-h2'],
      tls: true,
    },
    {
      name: 'inbound|7000||-mtls',
      port: 7000,
      transport: 'tls',
      alpn: ['istio-peer-exchange', 'istio'],
      tls: true,
    },
    {
      name: 'inbound|7000||-http',
      port: 7000,
      transport: undefined,
      alpn: ['http/1.0', 'http/1.1', 'h2c'],
      tls: undefined,
    },
    { name: 'inbound|7000||', port: 7000, transport: undefined, alpn: undefined, tls: undefined },
    { name: 'inbound|8080||-mtls', port: 8080, transport: 'tls', alpn: all, tls: true },
    { name: 'inbound|8080||', port: 8080, transport: undefined, alpn: undefined, tls: undefined },
    { name: 'virtualInbound-catchall-tcp-mtls', port: undefined, transport: 'tls', alpn: all, tls: true },
    {
      name: 'virtualInbound-catchall-tcp',
      port: undefined,
      transport: undefined,
      alpn: undefined,
      tls: undefined,
    },
  ]);
  assert.deepEqual(
    byName(inbound.filter_chains, 'inbound|5432||-mtls').filters.map((f: Json) => f.name),
    ['istio.stats', 'envoy.filters.network.tcp_proxy'],
  );
  const tls = byName(inbound.filter_chains, 'inbound|8080||-mtls').transport_socket.typed_config;
  assert.equal(
    tls['@type'],
    'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  );
  assert.equal(tls.common_tls_context.tls_certificate_sds_secret_configs[0].name, 'default');
  assert.equal(tls.common_tls_context.validation_context_sds_secret_config.name, 'ROOTCA');
});

test('PERMISSIVE on a workload without an identity, and DISABLE: plaintext only, no tls_inspector', () => {
  for (const [mesh, labels] of [
    [MESH, { app: 'api' }],
    [MESH + peerAuth('DISABLE'), { app: 'api', ...MESHED }],
  ] as const) {
    const c = generate(snapshotOf(mesh), sidecar(labels));
    assert.ok(chainsOf(c).every((ch: Json) => ch.transport === undefined && ch.tls === undefined));
    const filters = byName(c.listeners, 'virtualInbound').listener_filters.map((f: Json) => f.name);
    assert.ok(!filters.includes('envoy.filters.listener.tls_inspector'));
  }
});

test('STRICT: only mTLS chains (plaintext matches none and is closed), port-level modes override', () => {
  const portLevel = `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  portLevelMtls: {"5432": {mode: DISABLE}}
`;
  const c = generate(snapshotOf(MESH + peerAuth('STRICT', portLevel)), sidecar({ app: 'api' }));
  assert.deepEqual(
    chainsOf(c).map((ch: Json) => `${ch.name} ${ch.transport ?? 'any'}`),
    [
      'inbound|5432|| any',
      'inbound|7000||-mtls-http tls',
      'inbound|7000||-mtls tls',
      'inbound|8080||-mtls tls',
      'virtualInbound-catchall-tcp-mtls tls',
    ],
  );
  // Without plaintext chains of a detected port, http_inspector has nothing to pick.
  assert.deepEqual(
    byName(c.listeners, 'virtualInbound').listener_filters.map((f: Json) => f.name),
    ['envoy.filters.listener.original_dst', 'envoy.filters.listener.tls_inspector'],
  );
});

test('without capture, the bound inbound listener takes the same mTLS chains', () => {
  const c = generate(
    snapshotOf(MESH + peerAuth('STRICT')),
    sidecar(
      { app: 'api', ...MESHED },
      {
        interception: {
          mode: 'NONE',
          outboundBindAddress: '127.0.0.1',
          inbound: { address: '127.0.0.1', port: 15006 },
        },
      },
    ),
  );
  const inbound = c.listeners.find((l: Json) => String(l.name).startsWith('inbound_')) as Json;
  assert.ok(inbound);
  assert.deepEqual(
    inbound.filter_chains.map((ch: Json) => ch.filter_chain_match?.transport_protocol),
    ['tls'],
  );
  assert.deepEqual(
    inbound.listener_filters.map((f: Json) => f.name),
    ['envoy.filters.listener.tls_inspector'],
  );
});

test("a DestinationRule's tls decides: DISABLE is plaintext, ISTIO_MUTUAL is mTLS to every endpoint", () => {
  const rules = `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: shop}
spec: {host: api, trafficPolicy: {tls: {mode: DISABLE}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: legacy, namespace: shop}
spec:
  host: legacy
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
  subsets:
  - {name: plain, labels: {app: legacy}, trafficPolicy: {tls: {mode: DISABLE}}}
  - name: pinned
    labels: {app: legacy}
    trafficPolicy: {tls: {mode: ISTIO_MUTUAL, sni: legacy.example, subjectAltNames: ["spiffe://cluster.local/ns/x/sa/y"]}}
`;
  const c = generate(snapshotOf(MESH + rules), sidecar({ app: 'web' }));
  const api = byName(c.clusters, 'outbound|8080||api.shop.svc.cluster.local');
  assert.equal(api.transport_socket_matches, undefined);
  assert.equal(api.transport_socket, undefined);
  const legacy = byName(c.clusters, 'outbound|8080||legacy.shop.svc.cluster.local');
  assert.equal(legacy.transport_socket_matches, undefined);
  const ctx = legacy.transport_socket.typed_config;
  assert.equal(ctx.sni, 'outbound_.8080_._.legacy.shop.svc.cluster.local');
  assert.deepEqual(
    ctx.common_tls_context.combined_validation_context.default_validation_context
      .match_typed_subject_alt_names,
    [{ san_type: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/shop/sa/default' } }],
  );
  assert.equal(
    byName(c.clusters, 'outbound|8080|plain|legacy.shop.svc.cluster.local').transport_socket,
    undefined,
  );
  const pinned = byName(c.clusters, 'outbound|8080|pinned|legacy.shop.svc.cluster.local').transport_socket
    .typed_config;
  assert.equal(pinned.sni, 'legacy.example');
  assert.deepEqual(
    pinned.common_tls_context.combined_validation_context.default_validation_context
      .match_typed_subject_alt_names,
    [{ san_type: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/x/sa/y' } }],
  );
});
