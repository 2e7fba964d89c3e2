// Unit: listener filters, filter_chain_match and default_filter_chain of a Listener: the model, and every error with its path.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MATCH_ANY } from './filter_chain_match.js';
import { translateListener } from './listener.js';
import { DEFAULT_SERVER_FIRST_PORTS } from './listener_filters.js';
import type { ListenerConfig } from './model.js';
import { formatErrors } from './result.js';
import { TYPE_URLS } from './typed_config.js';

const tcp = (name: string) => ({
  filters: [{ name: 'tcp', typed_config: { '@type': TYPE_URLS.tcpProxy, stat_prefix: name, cluster: 'c' } }],
});

const TLS_INSPECTOR = { name: 'tls', typed_config: { '@type': TYPE_URLS.tlsInspector } };
const HTTP_INSPECTOR = { name: 'http', typed_config: { '@type': TYPE_URLS.httpInspector } };

function listener(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    name: 'l',
    address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
    filter_chains: [tcp('a')],
    ...extra,
  };
}

function valid(extra: Record<string, unknown>): ListenerConfig {
  const r = translateListener(listener(extra), 'l');
  if (!r.ok) assert.fail(formatErrors(r.errors));
  return r.value;
}

function errors(extra: Record<string, unknown>): string[] {
  const r = translateListener(listener(extra), 'l');
  if (r.ok) assert.fail('expected errors');
  return formatErrors(r.errors).split('\n');
}

test("defaults: no listener filters, Envoy's 15 s and close, the server-first ports", () => {
  const l = valid({});
  assert.deepEqual(l.listenerFilters, []);
  assert.equal(l.listenerFiltersTimeoutMs, 15_000);
  assert.equal(l.continueOnListenerFiltersTimeout, false);
  assert.deepEqual(l.serverFirstPorts, [25, 3306, 5432, 6379, 11211, 27017]);
  assert.deepEqual(l.serverFirstPorts, DEFAULT_SERVER_FIRST_PORTS);
  assert.equal(l.defaultFilterChain, undefined);
  assert.deepEqual(l.filterChains[0]!.match, MATCH_ANY);
});

test('explicit values are honoured exactly', () => {
  const l = valid({
    listener_filters: [
      { name: 'envoy.filters.listener.tls_inspector' },
      {
        name: 'h',
        typed_config: { '@type': TYPE_URLS.httpInspector },
        filter_disabled: {
          or_match: {
            rules: [
              { destination_port_range: { start: 3306, end: 3307 } },
              { not_match: { any_match: true } },
            ],
          },
        },
      },
    ],
    listener_filters_timeout: '0s',
    continue_on_listener_filters_timeout: true,
    metadata: { filter_metadata: { remora: { server_first_ports: [] } } },
  });
  assert.deepEqual(l.listenerFilters, [
    {
      kind: 'tls_inspector',
      name: 'envoy.filters.listener.tls_inspector',
      filterDisabled: undefined,
      maxClientHelloSize: 65536,
      closeOnParsingErrors: false,
    },
    {
      kind: 'http_inspector',
      name: 'h',
      filterDisabled: {
        kind: 'or',
        rules: [
          { kind: 'destination_port_range', start: 3306, end: 3307 },
          { kind: 'not', rule: { kind: 'any' } },
        ],
      },
    },
  ]);
  assert.equal(l.listenerFiltersTimeoutMs, 0);
  assert.equal(l.continueOnListenerFiltersTimeout, true);
  assert.deepEqual(l.serverFirstPorts, []);
});

test('filter_chain_match: every field, made canonical', () => {
  const l = valid({
    listener_filters: [TLS_INSPECTOR],
    filter_chains: [
      {
        ...tcp('a'),
        filter_chain_match: {
          destination_port: 443,
          prefix_ranges: [{ address_prefix: '10.1.2.3', prefix_len: 8 }, { address_prefix: '::1' }],
          server_names: ['A.Example.com', '*.example.ORG'],
          transport_protocol: 'tls',
          application_protocols: ['h2'],
          source_type: 'SAME_IP_OR_LOOPBACK',
          source_prefix_ranges: [{ address_prefix: '::ffff:10.0.0.0', prefix_len: 104 }],
          source_ports: [80],
        },
      },
      tcp('b'),
    ],
    default_filter_chain: tcp('rest'),
  });
  assert.deepEqual(l.filterChains[0]!.match, {
    ...MATCH_ANY,
    destinationPort: 443,
    prefixRanges: [
      { addressPrefix: '10.0.0.0', prefixLen: 8 },
      { addressPrefix: '0:0:0:0:0:0:0:0', prefixLen: 0 },
    ],
    serverNames: ['a.example.com', '*.example.org'],
    transportProtocol: 'tls',
    applicationProtocols: ['h2'],
    sourceType: 'SAME_IP_OR_LOOPBACK',
    sourcePrefixRanges: [{ addressPrefix: '10.0.0.0', prefixLen: 8 }],
    sourcePorts: [80],
  });
  assert.equal(l.defaultFilterChain?.name, 'default_filter_chain');
});

test('listener filter errors carry their paths', () => {
  assert.deepEqual(
    errors({
      listener_filters: [
        {
          name: 'x',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol',
          },
        },
        { name: 'envoy.filters.listener.original_dst' },
        {
          name: 'od',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
          },
        },
        { name: 'acme', typed_config: { '@type': 'type.googleapis.com/acme.Sniffer' } },
        { name: 'mystery' },
        { typed_config: { '@type': TYPE_URLS.tlsInspector } },
        {
          name: 't',
          typed_config: {
            '@type': TYPE_URLS.tlsInspector,
            enable_ja3_fingerprinting: true,
            max_client_hello_size: 70000,
            bogus: 1,
          },
        },
        TLS_INSPECTOR,
        TLS_INSPECTOR,
        { ...HTTP_INSPECTOR, config_discovery: {} },
        'not an object',
      ],
      listener_filters_timeout: '100ms',
      continue_on_listener_filters_timeout: 'yes',
    }),
    [
      'l.listener_filters[0].typed_config.@type: listener filter type "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol" is not supported by Remora yet',
      'l.listener_filters[2]: envoy.filters.listener.original_dst is already listed',
      'l.listener_filters[3].typed_config.@type: unknown listener filter type "type.googleapis.com/acme.Sniffer"',
      'l.listener_filters[4].name: unknown listener filter "mystery": name a supported filter or give a typed_config',
      'l.listener_filters[5].name: missing required field',
      'l.listener_filters[6].typed_config.enable_ja3_fingerprinting: field not supported by Remora',
      'l.listener_filters[6].typed_config.max_client_hello_size: must be between 1 and 65536, got 70000',
      'l.listener_filters[6].typed_config.bogus: unknown field "bogus"',
      // [6] is kept with its defaults after its errors, so the next two repeat it.
      'l.listener_filters[7]: envoy.filters.listener.tls_inspector is already listed (listener_filters[6])',
      'l.listener_filters[8]: envoy.filters.listener.tls_inspector is already listed (listener_filters[6])',
      'l.listener_filters[9].config_discovery: field not supported by Remora',
      'l.listener_filters[10]: expected an object, got string',
      'l.listener_filters_timeout: invalid duration "100ms": the unit must be seconds with an "s" suffix, e.g. "0.100s" for 100ms',
      'l.continue_on_listener_filters_timeout: expected a boolean, got string',
    ],
  );
});

test('filter_disabled predicate errors', () => {
  const disabled = (filter_disabled: unknown) => ({
    listener_filters: [{ ...TLS_INSPECTOR, filter_disabled }],
  });
  const P = 'l.listener_filters[0].filter_disabled';
  assert.deepEqual(errors(disabled({})), [
    `${P}: one of or_match, and_match, not_match, any_match, destination_port_range is required`,
  ]);
  assert.deepEqual(errors(disabled({ any_match: true, not_match: { any_match: true } })), [
    `${P}: only one of or_match, and_match, not_match, any_match, destination_port_range may be set (got not_match, any_match)`,
  ]);
  assert.deepEqual(errors(disabled({ any_match: false })), [`${P}.any_match: must be true`]);
  assert.deepEqual(errors(disabled({ or_match: { rules: [{ any_match: true }] } })), [
    `${P}.or_match.rules: needs at least 2 rules`,
  ]);
  assert.deepEqual(errors(disabled({ destination_port_range: { start: 10, end: 10 } })), [
    `${P}.destination_port_range.end: must be greater than start (10): the range is [start, end)`,
  ]);
  assert.deepEqual(errors(disabled({ and_match: { rules: [{ any_match: true }, { port: 1 }] } })), [
    `${P}.and_match.rules[1]: one of or_match, and_match, not_match, any_match, destination_port_range is required`,
    `${P}.and_match.rules[1].port: unknown field "port"`,
  ]);
  let deep: unknown = { any_match: true };
  for (let i = 0; i < 40; i++) deep = { not_match: deep };
  assert.match(errors(disabled(deep))[0]!, /nested deeper than 32 levels$/);
});

test('metadata: only filter_metadata.remora.server_first_ports', () => {
  assert.deepEqual(
    valid({ metadata: { filter_metadata: { remora: { server_first_ports: [4222, 25] } } } }).serverFirstPorts,
    [4222, 25],
  );
  assert.deepEqual(
    errors({
      metadata: {
        filter_metadata: {
          istio: { config: 'x' },
          remora: { server_first_ports: [0, 'x', 22], other: 1 },
        },
        typed_filter_metadata: { a: {} },
      },
    }),
    [
      'l.metadata.typed_filter_metadata: field not supported by Remora',
      'l.metadata.filter_metadata.istio: listener metadata is not supported by Remora (the only key read is filter_metadata.remora.server_first_ports)',
      'l.metadata.filter_metadata.remora.server_first_ports[0]: expected a port between 1 and 65535, got 0',
      'l.metadata.filter_metadata.remora.server_first_ports[1]: expected a port between 1 and 65535, got "x"',
      'l.metadata.filter_metadata.remora.other: unknown key "other" (Remora reads only server_first_ports)',
    ],
  );
  assert.deepEqual(errors({ metadata: { filter_metadata: { remora: { server_first_ports: 25 } } } }), [
    'l.metadata.filter_metadata.remora.server_first_ports: expected an array of ports, got number',
  ]);
});

test('bad filter_chain_match values', () => {
  const M = 'l.filter_chains[0].filter_chain_match';
  assert.deepEqual(
    errors({
      listener_filters: [TLS_INSPECTOR],
      filter_chains: [
        {
          ...tcp('a'),
          filter_chain_match: {
            destination_port: 0,
            prefix_ranges: [
              { address_prefix: 'example.com' },
              { address_prefix: '10.0.0.0', prefix_len: 33 },
              { address_prefix: '::', prefix_len: 129 },
              { prefix_len: 8 },
              { address_prefix: '10.0.0.1', prefix_len: 8 },
              { address_prefix: '10.9.9.9', prefix_len: 8 },
            ],
            server_names: ['*w.example.com', 'a.*.com', '*', '', 'ok.test', 'OK.test', 'a b'],
            transport_protocol: 'quic',
            application_protocols: [''],
            source_type: 'LOCAL',
            source_ports: [0, 70000, 'x', 22, 22],
            address_suffix: 'x',
            suffix_len: 1,
          },
        },
      ],
    }),
    [
      `${M}.destination_port: must be between 1 and 65535, got 0`,
      `${M}.prefix_ranges[0].address_prefix: must be an IP address, got "example.com"`,
      `${M}.prefix_ranges[1].prefix_len: must be at most 32 for an IPv4 address, got 33`,
      `${M}.prefix_ranges[2].prefix_len: must be between 0 and 128, got 129`,
      `${M}.prefix_ranges[3].address_prefix: missing required field`,
      `${M}.prefix_ranges[5]: duplicate range 10.0.0.0/8`,
      `${M}.server_names[0]: invalid server name "*w.example.com": the only wildcard form is "*." followed by a domain (partial wildcards are not supported)`,
      `${M}.server_names[1]: invalid server name "a.*.com": the only wildcard form is "*." followed by a domain (partial wildcards are not supported)`,
      `${M}.server_names[2]: invalid server name "*": the only wildcard form is "*." followed by a domain (partial wildcards are not supported)`,
      `${M}.server_names[3]: must not be empty`,
      `${M}.server_names[5]: duplicate value "OK.test"`,
      `${M}.server_names[6]: invalid server name "a b": no spaces or control characters`,
      `${M}.transport_protocol: unsupported value "quic": a connection's transport protocol is "raw_buffer", or "tls" when the tls_inspector listener filter finds a ClientHello`,
      `${M}.application_protocols[0]: must not be empty`,
      `${M}.source_type: unsupported value "LOCAL" (expected one of ANY, SAME_IP_OR_LOOPBACK, EXTERNAL)`,
      `${M}.source_ports[0]: expected a port between 1 and 65535, got 0`,
      `${M}.source_ports[1]: expected a port between 1 and 65535, got 70000`,
      `${M}.source_ports[2]: expected a port between 1 and 65535, got "x"`,
      `${M}.source_ports[4]: duplicate port 22`,
      `${M}.address_suffix: field not supported by Remora`,
      `${M}.suffix_len: field not supported by Remora`,
    ],
  );
});

test('duplicate and overlapping matches are errors (Envoy: overlapping matching rules)', () => {
  assert.deepEqual(errors({ filter_chains: [tcp('a'), tcp('b')] }), [
    'l.filter_chains[1]: filter chain matches the same connections as filter_chains[0]: multiple filter chains with overlapping matching rules (both match every connection)',
  ]);
  const chain = (name: string, filter_chain_match: unknown) => ({ ...tcp(name), filter_chain_match });
  assert.deepEqual(
    errors({
      listener_filters: [TLS_INSPECTOR],
      filter_chains: [
        chain('a', { destination_port: 443, server_names: ['a.test', 'b.test'] }),
        chain('b', { destination_port: 443, server_names: ['B.test', 'c.test'] }),
        chain('c', { prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: 8 }] }),
        chain('d', { prefix_ranges: [{ address_prefix: '10.1.1.1', prefix_len: 8 }] }),
        chain('e', { source_type: 'ANY' }),
      ],
    }),
    [
      'l.filter_chains[1]: filter chain matches the same connections as filter_chains[0]: multiple filter chains with overlapping matching rules (both match destination_port "443", server_names "b.test")',
      'l.filter_chains[3]: filter chain matches the same connections as filter_chains[2]: multiple filter chains with overlapping matching rules (both match prefix_ranges "10.0.0.0/8")',
    ],
  );
  // Different specificity is not an overlap: the most specific wins.
  valid({
    listener_filters: [TLS_INSPECTOR],
    filter_chains: [
      chain('a', { server_names: ['a.test'] }),
      chain('b', { server_names: ['*.test'] }),
      chain('c', { transport_protocol: 'tls' }),
      chain('d', { source_type: 'EXTERNAL' }),
      chain('e', {}),
    ],
  });
});

test('a chain that needs what no listener filter finds out could never be chosen', () => {
  const chain = (name: string, filter_chain_match: unknown) => ({ ...tcp(name), filter_chain_match });
  const M = (i: number) => `l.filter_chains[${i}].filter_chain_match`;
  assert.deepEqual(
    errors({
      filter_chains: [
        chain('a', { server_names: ['a.test'] }),
        chain('b', { transport_protocol: 'tls' }),
        chain('c', { application_protocols: ['http/1.1'] }),
        chain('d', { transport_protocol: 'raw_buffer' }),
      ],
    }),
    [
      `${M(0)}.server_names: needs the envoy.filters.listener.tls_inspector listener filter: without it no connection has a server name, so this chain could never be chosen`,
      `${M(1)}.transport_protocol: needs the envoy.filters.listener.tls_inspector listener filter: without it every connection is raw_buffer, so this chain could never be chosen`,
      `${M(2)}.application_protocols: needs the envoy.filters.listener.tls_inspector or envoy.filters.listener.http_inspector listener filter: without one no connection has an application protocol, so this chain could never be chosen`,
    ],
  );
  valid({
    listener_filters: [HTTP_INSPECTOR],
    filter_chains: [chain('c', { application_protocols: ['h2c'] }), tcp('x')],
  });
});

test('default_filter_chain: a full chain, without a match', () => {
  assert.deepEqual(
    errors({ default_filter_chain: { ...tcp('d'), filter_chain_match: { destination_port: 1 }, bogus: 1 } }),
    [
      'l.default_filter_chain.bogus: unknown field "bogus"',
      'l.default_filter_chain.filter_chain_match: has no effect on the default filter chain (it takes the connections no other chain matches)',
    ],
  );
});

test('original_dst: by name or type, alone or with use_original_dst, restores destinations', () => {
  const byName = valid({ listener_filters: [{ name: 'envoy.filters.listener.original_dst' }] });
  assert.equal(byName.originalDst, true);
  assert.equal(byName.useOriginalDst, false);
  assert.deepEqual(byName.listenerFilters, []);
  const implied = valid({ use_original_dst: true });
  assert.equal(implied.originalDst, true);
  assert.equal(implied.useOriginalDst, true);
  const typed = valid({
    listener_filters: [
      {
        name: 'od',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
        },
      },
      HTTP_INSPECTOR,
    ],
    bind_to_port: false,
    traffic_direction: 'OUTBOUND',
  });
  assert.equal(typed.originalDst, true);
  assert.equal(typed.bindToPort, false);
  assert.equal(typed.trafficDirection, 'OUTBOUND');
  assert.equal(typed.listenerFilters.length, 1);
  assert.deepEqual(
    errors({
      listener_filters: [
        {
          name: 'envoy.filters.listener.original_dst',
          filter_disabled: { any_match: true },
        },
        {
          name: 'od',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
            traffic_direction: 'INBOUND',
          },
        },
      ],
      use_original_dst: 'yes',
    }),
    [
      'l.listener_filters[0].filter_disabled: is not supported on original_dst: every accepted connection has its destination restored',
      'l.listener_filters[1].typed_config.traffic_direction: field not supported by Remora',
      'l.listener_filters[1]: envoy.filters.listener.original_dst is already listed',
      'l.use_original_dst: expected a boolean, got string',
    ],
  );
});
