// Tests of istio.stats (stats.PluginConfig) translation: as an HTTP filter and as a network filter, its defaults,
// every field, every error with its field path, and the proto that carries it over xDS.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeAny, encodeResource, XDS_TYPE_URLS } from '../xds/protos.js';
import { DEFAULT_TCP_REPORTING_MS } from './istio_stats.js';
import { translateListener } from './listener.js';
import type { FilterChainConfig, HttpFilterConfig, ListenerConfig } from './model.js';
import { formatErrors } from './result.js';
import { TYPE_URLS } from './typed_config.js';

const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': TYPE_URLS.router } };
const ROUTES = {
  virtual_hosts: [
    { name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'web' } }] },
  ],
};
const TCP = {
  name: 'envoy.filters.network.tcp_proxy',
  typed_config: { '@type': TYPE_URLS.tcpProxy, stat_prefix: 'tcp', cluster: 'db' },
};
const RBAC = {
  name: 'envoy.filters.network.rbac',
  typed_config: { '@type': TYPE_URLS.networkRbac, stat_prefix: 'tcp.' },
};

function stats(config: Record<string, unknown> = {}): unknown {
  return { name: 'istio.stats', typed_config: { '@type': TYPE_URLS.istioStats, ...config } };
}

function hcm(httpFilters: unknown[]): unknown {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': TYPE_URLS.httpConnectionManager,
      stat_prefix: 'in',
      route_config: ROUTES,
      http_filters: httpFilters,
    },
  };
}

function listener(filters: unknown[]): unknown {
  return {
    name: 'in',
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    traffic_direction: 'INBOUND',
    filter_chains: [{ filters }],
  };
}

function ok(raw: unknown): ListenerConfig {
  const r = translateListener(raw, 'listener');
  if (!r.ok) assert.fail(formatErrors(r.errors));
  return r.value;
}

function errors(raw: unknown): string {
  const r = translateListener(raw, 'listener');
  assert.equal(r.ok, false, 'expected errors');
  return r.ok ? '' : formatErrors(r.errors);
}

function httpStats(l: ListenerConfig): HttpFilterConfig {
  const f = l.filterChains[0]!.filter;
  assert.equal(f.kind, 'http_connection_manager');
  return f.kind === 'http_connection_manager' ? f.hcm.httpFilters[0]! : assert.fail();
}

const HTTP_PATH = 'listener.filter_chains[0].filters[0].typed_config.http_filters[0].typed_config';

test('an empty stats.PluginConfig, as Istio sends it, takes the defaults', () => {
  const f = httpStats(ok(listener([hcm([stats(), ROUTER])])));
  assert.equal(f.name, 'istio.stats');
  assert.equal(f.typeUrl, 'type.googleapis.com/stats.PluginConfig');
  assert.deepEqual(f.istioStats, {
    reporter: 'UNSPECIFIED',
    disableHostHeaderFallback: false,
    tcpReportingDurationMs: DEFAULT_TCP_REPORTING_MS,
    dropped: [],
    tagsRemoved: {},
  });
});

test('every supported field is read', () => {
  const f = httpStats(
    ok(
      listener([
        hcm([
          stats({
            reporter: 'SERVER_GATEWAY',
            disable_host_header_fallback: true,
            tcp_reporting_duration: '15s',
            graceful_deletion_interval: '300s',
            rotation_interval: '0s',
            metrics: [
              { name: 'request_bytes', drop: true },
              { name: 'requests_total', tags_to_remove: ['source_principal', 'response_flags'] },
              { tags_to_remove: ['destination_cluster'] },
              { dimensions: {} },
            ],
            definitions: [],
          }),
          ROUTER,
        ]),
      ]),
    ),
  );
  const c = f.istioStats!;
  assert.equal(c.reporter, 'SERVER_GATEWAY');
  assert.equal(c.disableHostHeaderFallback, true);
  assert.equal(c.tcpReportingDurationMs, 15_000);
  assert.deepEqual(c.dropped, ['request_bytes']);
  assert.deepEqual(c.tagsRemoved.requests_total, [
    'source_principal',
    'response_flags',
    'destination_cluster',
  ]);
  assert.deepEqual(c.tagsRemoved.tcp_sent_bytes_total, ['destination_cluster']);
});

test('the network filter comes before the terminal filter, among the RBAC filters', () => {
  const chain: FilterChainConfig = ok(listener([RBAC, stats({ tcp_reporting_duration: '0s' }), RBAC, TCP]))
    .filterChains[0]!;
  assert.equal(chain.filter.kind, 'tcp_proxy');
  assert.equal(chain.rbac?.length, 2);
  assert.equal(chain.istioStats?.afterRbac, 1);
  assert.equal(chain.istioStats?.tcpReportingDurationMs, 0);
  assert.equal(ok(listener([stats(), TCP])).filterChains[0]!.istioStats?.afterRbac, 0);
  assert.equal(ok(listener([TCP])).filterChains[0]!.istioStats, undefined);
});

test('errors name their field paths', () => {
  const text = errors(
    listener([
      hcm([
        stats({
          reporter: 'CLIENT',
          disable_host_header_fallback: 'yes',
          tcp_reporting_duration: 'soon',
          rotation_interval: '3600s',
          graceful_deletion_interval: '0.5s',
          metrics: [
            { name: 'istio_requests_total', drop: true },
            { tags_to_remove: ['pod'] },
            { name: 'requests_total', dimensions: { method: 'request.method' } },
            { drop: true },
            { match: 'response.code == 200' },
            { name: 'requests_total', colour: 'blue' },
          ],
          definitions: [{ name: 'custom', value: '1' }],
          debug: true,
        }),
        ROUTER,
      ]),
    ]),
  );
  const expect = [
    `${HTTP_PATH}.reporter: unsupported value "CLIENT" (expected one of UNSPECIFIED, SERVER_GATEWAY)`,
    `${HTTP_PATH}.disable_host_header_fallback: expected a boolean, got string`,
    `${HTTP_PATH}.tcp_reporting_duration:`,
    `${HTTP_PATH}.rotation_interval: metric scope rotation is not supported by Remora`,
    `${HTTP_PATH}.graceful_deletion_interval: must be at least 1s`,
    `${HTTP_PATH}.metrics[0].name: unknown metric "istio_requests_total"`,
    `${HTTP_PATH}.metrics[1].tags_to_remove[0]: unknown label "pod"`,
    `${HTTP_PATH}.metrics[2].dimensions: custom dimensions (CEL expressions) are not supported by Remora (got "method")`,
    `${HTTP_PATH}.metrics[3].drop: drop needs a metric name`,
    `${HTTP_PATH}.metrics[4].match: not supported`,
    `${HTTP_PATH}.metrics[5].colour: unknown field "colour"`,
    `${HTTP_PATH}.definitions: custom metrics (value expressions in CEL) are not supported by Remora`,
    `${HTTP_PATH}.debug: unknown field "debug"`,
  ];
  for (const e of expect) assert.ok(text.includes(e), `missing: ${e}\nin:\n${text}`);
});

test('istio.stats cannot end a chain, nor come twice', () => {
  assert.match(
    errors(listener([hcm([stats(), stats(), ROUTER])])),
    /http_filters\[1\]: only one istio\.stats filter may be set \(also http_filters\[0\]\)/,
  );
  assert.match(
    errors(listener([stats()])),
    /filters\[0\]: a filter chain must end in http_connection_manager or tcp_proxy \(istio\.stats/,
  );
  assert.match(
    errors(listener([stats(), stats(), TCP])),
    /filters\[1\]: a filter chain takes one istio\.stats filter/,
  );
  assert.match(
    errors(listener([TCP, stats(), TCP])),
    /filters\[0\]: tcp_proxy must be the last network filter of its chain \(only envoy\.filters\.network\.rbac and istio\.stats/,
  );
});

test('stats.PluginConfig travels over xDS: encoded in a Listener, decoded back, translated', () => {
  const raw = listener([
    stats({
      reporter: 'SERVER_GATEWAY',
      tcp_reporting_duration: '2s',
      metrics: [{ name: 'request_bytes', drop: true }],
    }),
    TCP,
  ]);
  const any = encodeResource(XDS_TYPE_URLS.listener, raw);
  if (!any.ok) assert.fail(formatErrors(any.errors));
  const json = decodeAny(any.value);
  if (!json.ok) assert.fail(formatErrors(json.errors));
  const chain = ok(json.value).filterChains[0]!;
  assert.equal(chain.istioStats?.reporter, 'SERVER_GATEWAY');
  assert.equal(chain.istioStats?.tcpReportingDurationMs, 2000);
  assert.deepEqual(chain.istioStats?.dropped, ['request_bytes']);
  // A field Istio's proto does not have is refused when encoding, with its path.
  const bad = encodeResource(XDS_TYPE_URLS.listener, listener([stats({ colour: 'blue' }), TCP]));
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.match(formatErrors(bad.errors), /filters\[0\]\.typed_config\.colour/);
});
