// Unit tests: endpoint and locality metadata, a cluster's transport_socket_matches and the istio.alpn HTTP filter,
// validated with the path of every error.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { translateCluster } from './cluster.js';
import { translateClusterLoadAssignment } from './endpoints.js';
import { translateListener } from './listener.js';
import { formatErrors } from './result.js';

const TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const RAW = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';
const ALPN = 'type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

const tlsSocket = (extra: Record<string, unknown> = {}) => ({
  name: 'envoy.transport_sockets.tls',
  typed_config: { '@type': TLS, sni: 'outbound_.80_._.web', ...extra },
});
const rawSocket = { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': RAW } };

function cluster(extra: Record<string, unknown>) {
  return translateCluster(
    { name: 'web', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, ...extra },
    'c',
  );
}

function errors(r: { ok: true } | { ok: false; errors: Parameters<typeof formatErrors>[0] }): string[] {
  assert.ok(!r.ok, 'expected errors');
  return formatErrors(r.errors).split('\n');
}

const endpoint = (extra: Record<string, unknown> = {}) => ({
  endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 80 } } },
  ...extra,
});

describe('endpoint metadata', () => {
  it('keeps filter_metadata of LbEndpoints and localities, keys as written', () => {
    const r = translateClusterLoadAssignment(
      {
        cluster_name: 'web',
        endpoints: [
          {
            metadata: { filter_metadata: { istio: { workload: 'web-v1' } } },
            lb_endpoints: [
              endpoint({
                metadata: {
                  filter_metadata: {
                    'envoy.transport_socket_match': { tlsMode: 'istio', nested: { aB: [1] } },
                  },
                  typed_filter_metadata: {},
                },
              }),
              endpoint(),
            ],
          },
        ],
      },
      '',
    );
    assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors));
    const loc = r.value.localities[0]!;
    assert.deepEqual(loc.metadata, { istio: { workload: 'web-v1' } });
    assert.deepEqual(loc.endpoints[0]!.metadata, {
      'envoy.transport_socket_match': { tlsMode: 'istio', nested: { aB: [1] } },
    });
    assert.equal(loc.endpoints[1]!.metadata, undefined);
  });

  it('reports malformed metadata with its path; typed_filter_metadata is refused', () => {
    const r = translateClusterLoadAssignment(
      {
        cluster_name: 'web',
        endpoints: [
          {
            metadata: { filter_metadata: ['x'] },
            lb_endpoints: [
              endpoint({ metadata: { filter_metadata: { a: 'not a struct' } } }),
              endpoint({ metadata: { typed_filter_metadata: { a: { '@type': 'x.Y' } }, labels: {} } }),
            ],
          },
        ],
      },
      'eds',
    );
    assert.deepEqual(errors(r), [
      'eds.endpoints[0].lb_endpoints[0].metadata.filter_metadata.a: expected an object (a Struct), got string',
      'eds.endpoints[0].lb_endpoints[1].metadata.typed_filter_metadata: field not supported by Remora (filter_metadata is)',
      'eds.endpoints[0].lb_endpoints[1].metadata.labels: unknown field "labels"',
      'eds.endpoints[0].metadata.filter_metadata: expected an object (a map of filter name to Struct), got array',
    ]);
  });
});

describe('transport_socket_matches', () => {
  it("reads Istio's pair in order: a TLS match by label, then a plaintext one for every host", () => {
    const r = cluster({
      transport_socket_matches: [
        { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: tlsSocket() },
        { name: 'tlsMode-disabled', match: {}, transport_socket: rawSocket },
      ],
    });
    assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors));
    const [tls, plain] = r.value.transportSocketMatches!;
    assert.equal(tls!.name, 'tlsMode-istio');
    assert.deepEqual(tls!.match, { tlsMode: 'istio' });
    assert.equal(tls!.tls?.sni, 'outbound_.80_._.web');
    assert.deepEqual(plain, { name: 'tlsMode-disabled', match: {}, tls: undefined });
    assert.equal(r.value.tls, undefined);
  });

  it('a match without `match` takes every host; none at all leaves the field out', () => {
    const r = cluster({ transport_socket_matches: [{ name: 'all', transport_socket: tlsSocket() }] });
    assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors));
    assert.deepEqual(r.value.transportSocketMatches![0]!.match, {});
    const none = cluster({ transport_socket_matches: [] });
    assert.ok(none.ok);
    assert.equal(none.value.transportSocketMatches, undefined);
  });

  it('refuses duplicate and missing names, a bad match, a missing socket, and errors inside a TLS context', () => {
    const r = cluster({
      transport_socket_matches: [
        { name: 'a', match: { tlsMode: 'istio' }, transport_socket: tlsSocket() },
        { name: 'a', transport_socket: rawSocket },
        { match: {}, transport_socket: rawSocket },
        { name: 'b', match: 'tlsMode=istio', transport_socket: rawSocket },
        { name: 'c', match: {} },
        { name: 'd', transport_socket: tlsSocket({ sni: 7 }), extra: true },
        'x',
      ],
    });
    assert.deepEqual(errors(r), [
      'c.transport_socket_matches[1].name: duplicate transport socket match name "a" (also transport_socket_matches[0])',
      'c.transport_socket_matches[2].name: missing required field',
      'c.transport_socket_matches[3].match: expected an object (a Struct of metadata labels), got string',
      'c.transport_socket_matches[4].transport_socket: missing required field (raw_buffer for plaintext)',
      'c.transport_socket_matches[5].transport_socket.typed_config.sni: expected a string, got number',
      'c.transport_socket_matches[5].extra: unknown field "extra"',
      'c.transport_socket_matches[6]: expected an object, got string',
    ]);
  });

  it('a DownstreamTlsContext is not a cluster socket, in a match as in transport_socket', () => {
    const r = cluster({
      transport_socket_matches: [
        {
          name: 'x',
          transport_socket: {
            name: 'tls',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
            },
          },
        },
      ],
    });
    assert.deepEqual(errors(r), [
      'c.transport_socket_matches[0].transport_socket.typed_config.@type: the transport socket of a cluster takes UpstreamTlsContext, not DownstreamTlsContext',
    ]);
  });
});

function listenerWith(filters: unknown[]) {
  return translateListener(
    {
      name: 'out',
      address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: {
                '@type': HCM,
                stat_prefix: 'out',
                route_config: { name: 'r', virtual_hosts: [] },
                http_filters: [
                  ...filters,
                  { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } },
                ],
              },
            },
          ],
        },
      ],
    },
    'l',
  );
}

const HF = 'l.filter_chains[0].filters[0].typed_config.http_filters';

describe('istio.alpn', () => {
  it("reads Istio's overrides by upstream protocol (unset is HTTP10); the first entry of a protocol wins", () => {
    const r = listenerWith([
      {
        name: 'istio.alpn',
        typed_config: {
          '@type': ALPN,
          alpn_override: [
            { alpn_override: ['istio-http/1.0', 'istio'] },
            { upstream_protocol: 'HTTP11', alpn_override: ['istio-http/1.1', 'istio'] },
            { upstream_protocol: 'HTTP2', alpn_override: ['istio-h2', 'istio'] },
            { upstream_protocol: 'HTTP2', alpn_override: ['ignored'] },
          ],
        },
      },
    ]);
    assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors));
    const chain = r.value.filterChains[0]!.filter;
    assert.equal(chain.kind, 'http_connection_manager');
    const f = chain.kind === 'http_connection_manager' ? chain.hcm.httpFilters[0] : undefined;
    assert.equal(f?.name, 'istio.alpn');
    assert.deepEqual(f?.alpn, {
      http10: ['istio-http/1.0', 'istio'],
      http11: ['istio-http/1.1', 'istio'],
      http2: ['istio-h2', 'istio'],
    });
  });

  it('any name goes with its type URL; an empty list is no override', () => {
    const r = listenerWith([
      { name: 'my-alpn', typed_config: { '@type': ALPN, alpn_override: [{ upstream_protocol: 'HTTP11' }] } },
    ]);
    assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors));
    const chain = r.value.filterChains[0]!.filter;
    const f = chain.kind === 'http_connection_manager' ? chain.hcm.httpFilters[0] : undefined;
    assert.deepEqual(f?.alpn, { http10: undefined, http11: undefined, http2: undefined });
  });

  it('reports bad protocols, names and fields with their paths, and a second istio.alpn', () => {
    const long = 'x'.repeat(256);
    const r = listenerWith([
      {
        name: 'istio.alpn',
        typed_config: {
          '@type': ALPN,
          alpn_override: [
            { upstream_protocol: 'HTTP3', alpn_override: ['h3'] },
            { upstream_protocol: 'HTTP11', alpn_override: ['', 7, long] },
            { downstream_protocol: 'HTTP2' },
          ],
          extra: 1,
        },
      },
    ]);
    assert.deepEqual(errors(r), [
      `${HF}[0].typed_config.alpn_override[0].upstream_protocol: unsupported value "HTTP3" (expected one of HTTP10, HTTP11, HTTP2)`,
      `${HF}[0].typed_config.alpn_override[1].alpn_override[0]: must not be empty`,
      `${HF}[0].typed_config.alpn_override[1].alpn_override[1]: expected a string, got number`,
      `${HF}[0].typed_config.alpn_override[1].alpn_override[2]: longer than 255 bytes`,
      `${HF}[0].typed_config.alpn_override[2].downstream_protocol: unknown field "downstream_protocol"`,
      `${HF}[0].typed_config.extra: unknown field "extra"`,
    ]);
    const twice = listenerWith([
      { name: 'istio.alpn', typed_config: { '@type': ALPN } },
      { name: 'istio.alpn', typed_config: { '@type': ALPN } },
    ]);
    assert.deepEqual(errors(twice), [
      `${HF}[1]: only one istio.alpn filter may be set (also http_filters[0])`,
    ]);
  });
});
