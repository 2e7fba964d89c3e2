// Unit tests of HTTP/2 configuration: the HCM's codec_type and http2_protocol_options, and a cluster's upstream protocol.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { translateBootstrap, translateCluster } from './bootstrap.js';
import { backend, hcmFilter, router, simpleRoutes, socket } from './full_config.fixture.js';
import { DEFAULT_HTTP2 } from './http2.js';
import type { Bootstrap, ClusterConfig, HcmConfig } from './model.js';
import { formatErrors } from './result.js';

const H = 'static_resources.listeners[0].filter_chains[0].filters[0].typed_config';
const HPO = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

function withHcm(extra: Record<string, unknown>): unknown {
  const hcm = { stat_prefix: 'h', http_filters: [router], route_config: simpleRoutes, ...extra };
  return {
    static_resources: {
      listeners: [
        { name: 'l', address: socket('0.0.0.0', 8080), filter_chains: [{ filters: [hcmFilter(hcm)] }] },
      ],
      clusters: [backend],
    },
  };
}

function hcm(extra: Record<string, unknown>): HcmConfig {
  const r = translateBootstrap(withHcm(extra));
  if (!r.ok) assert.fail(formatErrors(r.errors));
  const f = (r.value as Bootstrap).listeners[0]!.filterChains[0]!.filter;
  return f.kind === 'http_connection_manager' ? f.hcm : assert.fail('not an HCM');
}

function hcmErrors(extra: Record<string, unknown>): string[] {
  const r = translateBootstrap(withHcm(extra));
  if (r.ok) assert.fail('expected errors');
  return formatErrors(r.errors).split('\n');
}

/** HttpProtocolOptions as typed_extension_protocol_options holds it. */
function protocolOptions(fields: Record<string, unknown>): Record<string, unknown> {
  return { [HPO]: { '@type': `type.googleapis.com/${HPO}`, ...fields } };
}

function cluster(extra: Record<string, unknown>): ClusterConfig {
  const r = translateCluster({ ...backend, ...extra }, 'c');
  if (!r.ok) assert.fail(formatErrors(r.errors));
  return r.value;
}

function clusterErrors(extra: Record<string, unknown>): string[] {
  const r = translateCluster({ ...backend, ...extra }, 'c');
  if (r.ok) assert.fail('expected errors');
  return formatErrors(r.errors).split('\n');
}

test('HCM defaults: codec AUTO and the default HTTP/2 options', () => {
  const h = hcm({});
  assert.equal(h.codecType, 'AUTO');
  assert.deepEqual(h.http2, DEFAULT_HTTP2);
});

test('HCM codec_type HTTP2 and http2_protocol_options are read, defaults fill the rest', () => {
  const h = hcm({
    codec_type: 'HTTP2',
    http2_protocol_options: {
      max_concurrent_streams: 5,
      initial_stream_window_size: 65_536,
      hpack_table_size: 0,
    },
  });
  assert.equal(h.codecType, 'HTTP2');
  assert.deepEqual(h.http2, {
    ...DEFAULT_HTTP2,
    maxConcurrentStreams: 5,
    initialStreamWindowSize: 65_536,
    hpackTableSize: 0,
  });
});

test('HCM http2_protocol_options: out-of-range windows and streams are errors with their paths', () => {
  assert.deepEqual(
    hcmErrors({
      http2_protocol_options: {
        initial_stream_window_size: 10,
        initial_connection_window_size: 2_147_483_648,
        max_concurrent_streams: 0,
      },
    }).map((e) => e.replace(/:.*/, '')),
    [
      `${H}.http2_protocol_options.max_concurrent_streams`,
      `${H}.http2_protocol_options.initial_stream_window_size`,
      `${H}.http2_protocol_options.initial_connection_window_size`,
    ],
  );
});

test('HCM http2_protocol_options: unknown and unsupported fields are errors; "unset" values are accepted', () => {
  const errors = hcmErrors({
    http2_protocol_options: { max_concurent_streams: 5, allow_connect: true, connection_keepalive: {} },
  });
  assert.equal(errors.length, 3, errors.join('\n'));
  assert.match(errors.join('\n'), /http2_protocol_options\.max_concurent_streams: unknown field/);
  assert.match(errors.join('\n'), /http2_protocol_options\.allow_connect: field not supported by Remora/);
  assert.match(
    errors.join('\n'),
    /http2_protocol_options\.connection_keepalive: field not supported by Remora/,
  );
  assert.equal(
    hcm({ http2_protocol_options: { allow_connect: false } }).http2.maxConcurrentStreams,
    2_147_483_647,
  );
});

test('HCM codec_type HTTP3 is not supported; an unknown codec is an error', () => {
  assert.deepEqual(hcmErrors({ codec_type: 'HTTP3' }), [
    `${H}.codec_type: value "HTTP3" is not supported by Remora yet (supported: AUTO, HTTP1, HTTP2)`,
  ]);
  assert.ok(hcmErrors({ codec_type: 'SPDY' })[0]!.startsWith(`${H}.codec_type: unsupported value "SPDY"`));
});

test('cluster protocol: HTTP/1.1 by default', () => {
  const c = cluster({});
  assert.equal(c.upstreamProtocol, 'HTTP1');
  assert.deepEqual(c.http2, DEFAULT_HTTP2);
});

test('cluster explicit_http_config: http2_protocol_options selects HTTP/2 with its options', () => {
  const c = cluster({
    typed_extension_protocol_options: protocolOptions({
      explicit_http_config: { http2_protocol_options: { max_concurrent_streams: 10 } },
    }),
  });
  assert.equal(c.upstreamProtocol, 'HTTP2');
  assert.equal(c.http2.maxConcurrentStreams, 10);
  const h1 = cluster({
    typed_extension_protocol_options: protocolOptions({
      explicit_http_config: { http_protocol_options: {} },
    }),
  });
  assert.equal(h1.upstreamProtocol, 'HTTP1');
});

test('cluster use_downstream_protocol_config follows the downstream; the legacy http2_protocol_options is HTTP/2', () => {
  const c = cluster({
    typed_extension_protocol_options: protocolOptions({ use_downstream_protocol_config: {} }),
  });
  assert.equal(c.upstreamProtocol, 'DOWNSTREAM');
  const legacy = cluster({ http2_protocol_options: { max_concurrent_streams: 7 } });
  assert.equal(legacy.upstreamProtocol, 'HTTP2');
  assert.equal(legacy.http2.maxConcurrentStreams, 7);
});

test('cluster HttpProtocolOptions: bad values, unknown keys and other extensions are errors with paths', () => {
  const T = `c.typed_extension_protocol_options.${HPO}`;
  assert.deepEqual(
    clusterErrors({
      typed_extension_protocol_options: protocolOptions({
        explicit_http_config: { http2_protocol_options: { initial_stream_window_size: 10 } },
        bogus: 1,
      }),
    }),
    [
      `${T}.explicit_http_config.http2_protocol_options.initial_stream_window_size: must be between 65535 and 2147483647, got 10`,
      `${T}.bogus: unknown field "bogus"`,
    ],
  );
  assert.deepEqual(
    clusterErrors({ typed_extension_protocol_options: { x: { '@type': 'type.googleapis.com/foo.Bar' } } }),
    [
      'c.typed_extension_protocol_options.x.@type: unknown protocol options type "type.googleapis.com/foo.Bar"',
    ],
  );
  assert.deepEqual(clusterErrors({ typed_extension_protocol_options: protocolOptions({}) }), [
    `${T}: one of explicit_http_config, use_downstream_protocol_config, auto_config is required`,
  ]);
  assert.deepEqual(
    clusterErrors({
      typed_extension_protocol_options: protocolOptions({
        explicit_http_config: { http3_protocol_options: {} },
      }),
    }),
    [`${T}.explicit_http_config.http3_protocol_options: field not supported by Remora`],
  );
  assert.deepEqual(
    clusterErrors({
      typed_extension_protocol_options: protocolOptions({
        explicit_http_config: { http_protocol_options: {}, http2_protocol_options: {} },
      }),
    }),
    [
      `${T}.explicit_http_config: only one of http_protocol_options, http2_protocol_options, http3_protocol_options may be set (got http_protocol_options, http2_protocol_options)`,
    ],
  );
});

test('cluster: the protocol and common options may be given once, in typed_extension_protocol_options', () => {
  assert.deepEqual(
    clusterErrors({
      http2_protocol_options: {},
      typed_extension_protocol_options: protocolOptions({ use_downstream_protocol_config: {} }),
    }),
    ['c.http2_protocol_options: set the protocol in typed_extension_protocol_options only (both are given)'],
  );
  assert.deepEqual(
    clusterErrors({
      common_http_protocol_options: {},
      typed_extension_protocol_options: protocolOptions({
        use_downstream_protocol_config: {},
        common_http_protocol_options: { idle_timeout: '1s' },
      }),
    }),
    [
      'c.common_http_protocol_options: set common_http_protocol_options in typed_extension_protocol_options only (both are given)',
    ],
  );
  const c = cluster({
    typed_extension_protocol_options: protocolOptions({
      use_downstream_protocol_config: {},
      common_http_protocol_options: { idle_timeout: '1s' },
    }),
  });
  assert.equal(c.upstreamIdleTimeoutMs, 1000);
});
