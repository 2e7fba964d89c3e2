// Tests of the xDS protos: resources round-trip JSON -> Any -> JSON and translate the same; well-known types;
// every encoding error with its path; the ADS stream messages.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { translateCluster } from '../config/cluster.js';
import { FULL } from '../config/full_config.fixture.js';
import { translateListener } from '../config/listener.js';
import { translateRouteConfiguration } from '../config/route.js';
import { TYPE_URLS } from '../config/typed_config.js';
import { type Any, decodeAny, encodeResource, XDS_TYPE_URLS, xdsProtos } from './protos.js';

type Json = Record<string, unknown>;

function roundTrip(typeUrl: string, json: unknown): Json {
  const any = encodeResource(typeUrl, json);
  assert.ok(any.ok, JSON.stringify(!any.ok && any.errors));
  assert.equal(any.value.type_url, typeUrl);
  const back = decodeAny(any.value);
  assert.ok(back.ok, JSON.stringify(!back.ok && back.errors));
  return back.value;
}

function errorsOf(typeUrl: string, json: unknown): string[] {
  const r = encodeResource(typeUrl, json);
  assert.equal(r.ok, false);
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
}

test('the example bootstrap: its listeners and clusters translate the same after JSON -> Any -> JSON', () => {
  const text = readFileSync(new URL('../../../examples/bootstrap.yaml', import.meta.url), 'utf8');
  const boot = parse(text) as { static_resources: { listeners: Json[]; clusters: Json[] } };
  for (const l of boot.static_resources.listeners) {
    const back = roundTrip(XDS_TYPE_URLS.listener, l);
    assert.deepEqual(translateListener(back, 'l'), translateListener(l, 'l'));
    assert.equal((back.address as Json).socket_address !== undefined, true);
  }
  for (const c of boot.static_resources.clusters) {
    const back = roundTrip(XDS_TYPE_URLS.cluster, c);
    // Canonical JSON: durations with 0, 3, 6 or 9 decimals; plain enums at their default left out.
    const { lb_policy, ...rest } = c;
    assert.equal(lb_policy, 'ROUND_ROBIN');
    assert.deepEqual(back, { ...rest, connect_timeout: '0.250s' });
    assert.deepEqual(translateCluster(back, 'c'), translateCluster(c, 'c'));
  }
});

test('the full fixture: every listener, route and cluster translates the same after the round trip', () => {
  const listeners = structuredClone(FULL.static_resources.listeners) as Json[];
  // Fields the shipped protos cannot carry, or that proto3 cannot tell from unset (see the next tests).
  const first = listeners[0] as {
    listener_filters: { typed_config?: Json }[];
    continue_on_listener_filters_timeout?: boolean;
  };
  delete first.listener_filters[0]!.typed_config!.max_client_hello_size;
  delete first.continue_on_listener_filters_timeout;
  listeners[1]!.name = 'tcp';
  for (const l of listeners) {
    const original = translateListener(l, 'l');
    assert.ok(original.ok, JSON.stringify(!original.ok && original.errors));
    assert.deepEqual(translateListener(roundTrip(XDS_TYPE_URLS.listener, l), 'l'), original);
  }
  const chain = (listeners[0]!.filter_chains as Json[])[0]!;
  const routes = ((chain.filters as Json[])[0]!.typed_config as Json).route_config as Json;
  const back = roundTrip(XDS_TYPE_URLS.route, routes);
  assert.deepEqual(translateRouteConfiguration(back, 'r'), translateRouteConfiguration(routes, 'r'));
  for (const c of FULL.static_resources.clusters) {
    const original = translateCluster(c, 'c');
    assert.ok(original.ok);
    assert.deepEqual(translateCluster(roundTrip(XDS_TYPE_URLS.cluster, c), 'c'), original);
  }
});

test('a field the shipped Envoy protos lack is refused with its path, never dropped', () => {
  const l = {
    name: 'l',
    listener_filters: [
      { name: 'tls', typed_config: { '@type': TYPE_URLS.tlsInspector, max_client_hello_size: 1 } },
    ],
  };
  assert.deepEqual(errorsOf(XDS_TYPE_URLS.listener, l), [
    'listener_filters[0].typed_config.max_client_hello_size: unknown field "max_client_hello_size"',
  ]);
});

test('TLS contexts, upstream protocol options and original_dst survive the round trip', () => {
  const pem = Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64');
  const listener = {
    name: 'tls',
    address: { socket_address: { address: '127.0.0.1', port_value: 8443 } },
    listener_filters: [
      {
        name: 'envoy.filters.listener.original_dst',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
        },
      },
      { name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': TYPE_URLS.httpInspector } },
    ],
    filter_chains: [
      {
        filters: [
          { name: 'tcp', typed_config: { '@type': TYPE_URLS.tcpProxy, stat_prefix: 't', cluster: 'up' } },
        ],
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: {
            '@type': TYPE_URLS.downstreamTlsContext,
            require_client_certificate: true,
            common_tls_context: {
              alpn_protocols: ['h2', 'http/1.1'],
              tls_certificates: [
                {
                  certificate_chain: { filename: '/certs/tls.crt' },
                  private_key: { filename: '/certs/tls.key' },
                },
              ],
              validation_context: { trusted_ca: { inline_bytes: pem } },
            },
          },
        },
      },
    ],
  };
  const back = roundTrip(XDS_TYPE_URLS.listener, listener);
  const tls = ((back.filter_chains as Json[])[0]!.transport_socket as Json).typed_config as Json;
  assert.equal(tls['@type'], TYPE_URLS.downstreamTlsContext);
  assert.equal(tls.require_client_certificate, true, 'a BoolValue wrapper is its bare value');
  assert.deepEqual(back, listener);

  const cluster = {
    name: 'up',
    connect_timeout: '0.250s',
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': TYPE_URLS.upstreamHttpProtocolOptions,
        explicit_http_config: { http2_protocol_options: { max_concurrent_streams: 10 } },
      },
    },
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: { '@type': TYPE_URLS.upstreamTlsContext, sni: 'up.example.com' },
    },
  };
  assert.deepEqual(roundTrip(XDS_TYPE_URLS.cluster, cluster), cluster);
  assert.deepEqual(
    translateCluster(roundTrip(XDS_TYPE_URLS.cluster, cluster), 'c'),
    translateCluster(cluster, 'c'),
  );
});

test('well-known types: durations, wrappers, 64-bit integers, enums by number, lowerCamelCase names', () => {
  const back = roundTrip(XDS_TYPE_URLS.cluster, {
    name: 'c',
    connectTimeout: '1.000000001s',
    dns_refresh_rate: '0.5s',
    lb_policy: 1,
    per_connection_buffer_limit_bytes: 0,
    ring_hash_lb_config: { maximum_ring_size: '18446744073709551615', minimum_ring_size: 1024 },
    metadata: { filter_metadata: { app: { list: [1, 'two', true, null, { deep: [] }], none: null } } },
  });
  assert.deepEqual(back, {
    name: 'c',
    connect_timeout: '1.000000001s',
    dns_refresh_rate: '0.500s',
    lb_policy: 'LEAST_REQUEST',
    per_connection_buffer_limit_bytes: 0,
    ring_hash_lb_config: { maximum_ring_size: '18446744073709551615', minimum_ring_size: '1024' },
    metadata: { filter_metadata: { app: { list: [1, 'two', true, null, { deep: [] }], none: null } } },
  });
  // Plain proto3 scalars at their default are not encoded (canonical bytes); an Any's own @type may be given.
  const withType = roundTrip(XDS_TYPE_URLS.route, {
    '@type': XDS_TYPE_URLS.route,
    name: 'r',
    validate_clusters: false,
  });
  assert.deepEqual(withType, { name: 'r', validate_clusters: false });
  const scalars = roundTrip(XDS_TYPE_URLS.endpoint, { cluster_name: '', endpoints: [{ priority: 0 }] });
  assert.deepEqual(scalars, { endpoints: [{}] });
});

test('every encoding error is reported with its path', () => {
  assert.deepEqual(
    errorsOf(XDS_TYPE_URLS.cluster, {
      name: 'c',
      nmae: 'typo',
      type: 'STATIC',
      cluster_type: { name: 'x' },
      connect_timeout: '5m',
      lb_policy: 'FASTEST',
      connectTimeout: '1s',
      load_assignment: { endpoints: [{ lb_endpoints: 'x' }, null] },
      transport_socket: { name: 't', typed_config: { '@type': 'type.googleapis.com/no.such.Type' } },
      upstream_connection_options: { tcp_keepalive: { keepalive_probes: -1 } },
      metadata: { filter_metadata: { a: 'not an object' } },
    }),
    [
      'nmae: unknown field "nmae"',
      'cluster_type: only one of oneof cluster_discovery_type may be set (got type)',
      'connect_timeout: invalid duration "5m": expected seconds with an "s" suffix, e.g. "5s" or "0.250s"',
      'lb_policy: unknown value "FASTEST" (expected one of ROUND_ROBIN, LEAST_REQUEST, RING_HASH, RANDOM, MAGLEV, CLUSTER_PROVIDED, LOAD_BALANCING_POLICY_CONFIG)',
      'connectTimeout: duplicate field (also given as "connect_timeout")',
      'load_assignment.endpoints[0].lb_endpoints: expected an array, got string',
      'load_assignment.endpoints[1]: null is not allowed in a repeated field',
      'transport_socket.typed_config.@type: unknown type "type.googleapis.com/no.such.Type"',
      'upstream_connection_options.tcp_keepalive.keepalive_probes: must be between 0 and 4294967295, got -1',
      'metadata.filter_metadata.a: expected an object, got string',
    ],
  );
  assert.deepEqual(
    errorsOf(XDS_TYPE_URLS.listener, {
      name: 'l',
      filter_chains: [{ filters: [{ name: 'x', typed_config: {} }] }],
    }),
    ['filter_chains[0].filters[0].typed_config.@type: missing required field "@type"'],
  );
  assert.deepEqual(errorsOf(XDS_TYPE_URLS.listener, { '@type': XDS_TYPE_URLS.cluster, name: 'l' }), [
    `@type: expected "${XDS_TYPE_URLS.listener}"`,
  ]);
  assert.deepEqual(errorsOf('type.googleapis.com/no.Such', {}), [
    ': unknown type URL "type.googleapis.com/no.Such"',
  ]);
});

test('decodeAny refuses what it cannot read, with the path of the problem', () => {
  const unknown = decodeAny({ type_url: 'type.googleapis.com/no.Such', value: new Uint8Array() });
  assert.equal(unknown.ok, false);
  const garbage = decodeAny({ type_url: XDS_TYPE_URLS.cluster, value: Uint8Array.from([0x0a, 0xff, 0xff]) });
  assert.equal(garbage.ok, false);
  assert.match(
    !garbage.ok ? garbage.errors[0]!.message : '',
    /malformed envoy\.config\.cluster\.v3\.Cluster/,
  );
  // A nested Any of a type that is not loaded: packed by hand, as a foreign control plane could.
  const protos = xdsProtos();
  const Listener = protos.root.lookupType('envoy.config.listener.v3.Listener');
  const bytes = Listener.encode({
    name: 'l',
    filter_chains: [
      {
        filters: [
          { name: 'x', typed_config: { type_url: 'type.googleapis.com/x.Y', value: new Uint8Array() } },
        ],
      },
    ],
  }).finish();
  const nested = decodeAny({ type_url: XDS_TYPE_URLS.listener, value: bytes });
  assert.deepEqual(!nested.ok && nested.errors, [
    {
      path: 'filter_chains[0].filters[0].typed_config.@type',
      message: 'unknown type "type.googleapis.com/x.Y"',
    },
  ]);
});

test('ADS stream messages: node metadata as JSON, error_detail, resources kept as Any bytes', () => {
  const { adsService } = xdsProtos();
  const method = adsService.StreamAggregatedResources!;
  const request = {
    version_info: 'v1',
    node: { id: 'sidecar~1', cluster: 'web', metadata: { labels: { app: 'web' }, ips: ['10.0.0.1'] } },
    resource_names: ['a', 'b'],
    type_url: XDS_TYPE_URLS.endpoint,
    response_nonce: '7',
    error_detail: { code: 3, message: 'bad' },
  };
  assert.deepEqual(method.requestDeserialize(method.requestSerialize(request)), request);
  const any = encodeResource(XDS_TYPE_URLS.cluster, { name: 'c' });
  assert.ok(any.ok);
  const response = {
    version_info: 'v2',
    resources: [any.value],
    type_url: XDS_TYPE_URLS.cluster,
    nonce: '8',
  };
  const back = method.responseDeserialize(method.responseSerialize(response)) as { resources: Any[] };
  assert.equal(back.resources[0]!.type_url, XDS_TYPE_URLS.cluster);
  assert.deepEqual(Buffer.from(back.resources[0]!.value), Buffer.from(any.value.value));
  assert.throws(() => method.requestSerialize({ bogus: 1 }), /unknown field "bogus"/);
});
