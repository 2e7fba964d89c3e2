// Tests of translateBootstrap: a full config to the model, defaults, every error with its path, camelCase input.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bootstrapErrors as errors, validBootstrap as valid } from './bootstrap.fixture.js';
import { summarize, translateBootstrap } from './bootstrap.js';
import { SANITIZE_CLIENT_CERT } from './client_cert_details.js';
import {
  backend,
  EXPECTED,
  FULL,
  forward,
  hcmFilter,
  noMutations,
  router,
  simpleRoutes,
  socket,
} from './full_config.fixture.js';
import { DEFAULT_HTTP2 } from './http2.js';
import type { Bootstrap, HcmConfig } from './model.js';
import { TYPE_URLS } from './typed_config.js';

function withHcm(config: Record<string, unknown>): unknown {
  return {
    static_resources: {
      listeners: [
        { name: 'l', address: socket('0.0.0.0', 8080), filter_chains: [{ filters: [hcmFilter(config)] }] },
      ],
      clusters: [backend],
    },
  };
}

function hcmOf(b: Bootstrap): HcmConfig {
  const f = b.listeners[0]!.filterChains[0]!.filter;
  assert.equal(f.kind, 'http_connection_manager');
  return f.kind === 'http_connection_manager' ? f.hcm : assert.fail();
}

test('a full config translates to the expected model', () => {
  assert.deepEqual(valid(FULL), EXPECTED);
  assert.equal(summarize(valid(FULL)), 'valid: 2 listeners, 3 clusters, 6 routes (node "sidecar~a")');
});

test('camelCase (proto3 JSON names) is accepted; metadata and json_format keys are kept as written', () => {
  const camel = JSON.parse(
    JSON.stringify(FULL).replace(
      /"([a-z0-9]+(?:_[a-z0-9]+)+)":/g,
      (_m, k: string) => `"${k.replace(/_([a-z0-9])/g, (_x, c: string) => c.toUpperCase())}":`,
    ),
  );
  assert.ok(camel.staticResources.listeners[0].perConnectionBufferLimitBytes);
  assert.deepEqual(valid(camel), EXPECTED);
  // metadata keys are never renamed.
  const b = valid({ node: { id: 'n', metadata: { some_key: 1, otherKey: 2 } } });
  assert.deepEqual(b.node.metadata, { some_key: 1, otherKey: 2 });
  const log = {
    typedConfig: {
      '@type': TYPE_URLS.stdoutAccessLog,
      logFormat: { jsonFormat: { response_code: '%RESPONSE_CODE%', upstreamHost: '%UPSTREAM_HOST%' } },
    },
  };
  const hcm = hcmOf(
    valid(withHcm({ statPrefix: 'h', routeConfig: simpleRoutes, httpFilters: [router], accessLog: [log] })),
  );
  assert.deepEqual(hcm.accessLogs[0]!.format, {
    kind: 'json',
    fields: { response_code: '%RESPONSE_CODE%', upstreamHost: '%UPSTREAM_HOST%' },
  });
});

test('errors use the field name as written', () => {
  assert.deepEqual(errors({ staticResources: { clusters: [{ name: 'c', lbPolicy: 'FOO', lbPolcy: 1 }] } }), [
    'staticResources.clusters[0].lbPolicy: unsupported value "FOO" (expected one of ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV)',
    'staticResources.clusters[0].lbPolcy: unknown field "lbPolcy"',
  ]);
  assert.deepEqual(
    errors({ node: { id: 'a', Id: 'b', cluster: 'c' }, admin: { access_log_path: 'x', accessLogPath: 'y' } }),
    [
      'node.Id: unknown field "Id"',
      'admin.accessLogPath: duplicate field "accessLogPath" (also given as "access_log_path")',
    ],
  );
});

test('an empty bootstrap is valid and gets the defaults', () => {
  const b = valid({});
  assert.deepEqual(b, {
    node: { id: '', cluster: '', metadata: {} },
    admin: { address: { address: '127.0.0.1', port: 15000 }, accessLogPath: undefined },
    listeners: [],
    clusters: [],
  });
  assert.equal(summarize(b), 'valid: 0 listeners, 0 clusters, 0 routes (node "")');
});

test('HCM defaults', () => {
  const hcm = hcmOf(valid(withHcm({ stat_prefix: 'h', route_config: simpleRoutes, http_filters: [router] })));
  const { routeConfig, ...rest } = hcm;
  assert.deepEqual(rest, {
    statPrefix: 'h',
    codecType: 'AUTO',
    httpFilters: [{ name: 'envoy.filters.http.router', typeUrl: TYPE_URLS.router }],
    accessLogs: [],
    requestHeadersTimeoutMs: 0,
    streamIdleTimeoutMs: 300000,
    requestTimeoutMs: 0,
    idleTimeoutMs: 3600000,
    maxRequestHeadersKb: 60,
    maxHeadersCount: 100,
    useRemoteAddress: false,
    skipXffAppend: false,
    generateRequestId: true,
    preserveExternalRequestId: false,
    serverName: 'remora',
    serverHeaderTransformation: 'OVERWRITE',
    drainTimeoutMs: 5000,
    http2: DEFAULT_HTTP2,
    delayedCloseTimeoutMs: 1000,
    acceptHttp10: false,
    defaultHostForHttp10: undefined,
    upgradeConfigs: [],
    forwardClientCert: SANITIZE_CLIENT_CERT,
  });
  const route = routeConfig!.virtualHosts[0]!.routes[0]!.action;
  assert.deepEqual(route, {
    kind: 'route',
    route: {
      ...forward,
      retryPolicy: undefined,
      clusters: [{ name: 'backend', weight: 1, ...noMutations }],
      totalWeight: 1,
    },
  });
  // The router may be given by name alone, as older Envoy configs do.
  const byName = valid(
    withHcm({
      stat_prefix: 'h',
      route_config: simpleRoutes,
      http_filters: [{ name: 'envoy.filters.http.router' }],
    }),
  );
  assert.equal(hcmOf(byName).httpFilters[0]!.typeUrl, TYPE_URLS.router);
});

test('a config with many mistakes reports all of them with exact paths', () => {
  const L = 'static_resources.listeners[0]';
  const H = `${L}.filter_chains[0].filters[0].typed_config`;
  const R = `${H}.route_config.virtual_hosts[0].routes`;
  const raw = {
    admin: { address: socket('localhost', 70000) },
    dynamic_resources: { ads_config: {} },
    stats_config: {},
    static_resources: {
      listeners: [
        {
          name: 'l',
          address: socket('0.0.0.0', 80),
          listener_filters: [{ name: 'envoy.filters.listener.proxy_protocol' }],
          filter_chains: [
            {
              filters: [
                hcmFilter({
                  stat_prefix: 7,
                  codec_type: 'HTTP3',
                  rds: { route_config_name: 'x' },
                  stream_idle_timeout: '100ms',
                  upgrade_configs: [{ upgrade_type: 'websocket', filters: [{ name: 'x' }] }],
                  route_config: {
                    virtual_hosts: [
                      {
                        name: 'v',
                        domains: ['a.com', 'a*b'],
                        require_tls: 'ALL',
                        routes: [
                          { match: { prefix: '/' }, route: { cluster: 'nope' } },
                          {
                            match: { prefix: '/a' },
                            route: {
                              cluster: 'c0',
                              prefix_rewrite: '/',
                              regex_rewrite: { pattern: { regex: 'x' }, substitution: '' },
                            },
                          },
                          {
                            match: { prefix: '/b' },
                            route: {
                              cluster: 'c0',
                              retry_policy: {
                                retry_on: '5xx,bogus',
                                retry_back_off: { base_interval: '1s', max_interval: '0.5s' },
                              },
                            },
                          },
                          {
                            match: { prefix: '/c' },
                            direct_response: { status: 200 },
                            decorator: { operation: 'x' },
                          },
                          {
                            match: { prefix: '/d' },
                            route: {
                              weighted_clusters: { clusters: [{ name: 'c0', weight: 1 }], total_weight: 2 },
                            },
                          },
                          {
                            match: { prefix: '/e' },
                            route: { cluster: 'c0' },
                            request_headers_to_add: [{ header: { key: ':path', value: '/' } }],
                          },
                        ],
                      },
                      { name: 'w', domains: ['A.com'] },
                    ],
                  },
                  http_filters: [
                    {
                      name: 'cors',
                      typed_config: {
                        '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors',
                      },
                    },
                    router,
                  ],
                }),
              ],
            },
          ],
        },
        {
          name: 'l',
          address: socket('0.0.0.0', 80),
          filter_chains: [
            { filters: [{ name: 'x', typed_config: { '@type': 'type.googleapis.com/acme.Foo' } }] },
          ],
        },
      ],
      clusters: [
        { name: 'c0', type: 'LOGICAL_DNS', lb_polcy: 'ROUND_ROBIN' },
        { name: 'c1', lb_policy: 'FOO', connect_timeout: 5, health_checks: [{}], hosts: [] },
        {
          name: 'c2',
          lb_policy: 'CLUSTER_PROVIDED',
          load_assignment: {
            cluster_name: 'c2',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: socket('db.example.com', 5432) } }] }],
          },
        },
        { name: 'c0', maglev_lb_config: { table_size: 65536 } },
        'not an object',
      ],
    },
  };
  assert.deepEqual(errors(raw), [
    'admin.address.socket_address.port_value: must be between 0 and 65535, got 70000',
    'admin.address.socket_address.address: must be an IP address, got "localhost"',
    'dynamic_resources.ads_config.api_type: missing required field (GRPC or DELTA_GRPC)',
    'dynamic_resources.ads_config.grpc_services: missing required field',
    'stats_config: field not supported by Remora',
    `${H}.stat_prefix: expected a string, got number`,
    `${H}.codec_type: value "HTTP3" is not supported by Remora yet (supported: AUTO, HTTP1, HTTP2)`,
    `${H}: only one of route_config, rds, scoped_routes may be set (got route_config, rds)`,
    `${H}.route_config.virtual_hosts[0].domains[1]: invalid domain "a*b": a wildcard "*" may only be the whole domain, its first or last character`,
    `${R}[1].route: prefix_rewrite and regex_rewrite may not both be set`,
    `${R}[2].route.retry_policy.retry_on: unknown retry condition "bogus" (expected any of 5xx, gateway-error, reset, reset-before-request, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)`,
    `${R}[2].route.retry_policy.retry_back_off.max_interval: must be greater than or equal to base_interval`,
    `${R}[3].decorator: field not supported by Remora`,
    `${R}[4].route.weighted_clusters.total_weight: must equal the sum of the cluster weights (1), got 2`,
    `${R}[5].request_headers_to_add[0].header.key: header ":path" may not be modified (pseudo-headers and host are reserved)`,
    `${H}.route_config.virtual_hosts[0].require_tls: field not supported by Remora`,
    `${H}.route_config.virtual_hosts[1].domains[0]: duplicate domain "a.com" (also in virtual_hosts[0])`,
    `${H}.rds.config_source: missing required field`,
    `${H}.http_filters[0].typed_config.@type: HTTP filter type "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors" is not supported by Remora yet`,
    `${H}.stream_idle_timeout: invalid duration "100ms": the unit must be seconds with an "s" suffix, e.g. "0.100s" for 100ms`,
    `${H}.upgrade_configs[0].filters: field not supported by Remora`,
    `${L}.listener_filters[0].name: listener filter "envoy.filters.listener.proxy_protocol" is not supported by Remora yet (supported: envoy.filters.listener.tls_inspector, envoy.filters.listener.http_inspector, envoy.filters.listener.original_dst)`,
    'static_resources.listeners[1].filter_chains[0].filters[0].typed_config.@type: unknown network filter type "type.googleapis.com/acme.Foo"',
    'static_resources.listeners[1].name: duplicate listener name "l" (also listeners[0])',
    'static_resources.listeners[1].address: duplicate listener address 0.0.0.0:80 (also listeners[0])',
    'static_resources.clusters[0].type: value "LOGICAL_DNS" is not supported by Remora yet (supported: STATIC, STRICT_DNS, ORIGINAL_DST, EDS)',
    'static_resources.clusters[0].lb_polcy: unknown field "lb_polcy"',
    'static_resources.clusters[1].connect_timeout: expected a duration such as "5s" or {seconds, nanos}, got number',
    'static_resources.clusters[1].lb_policy: unsupported value "FOO" (expected one of ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV)',
    'static_resources.clusters[1].health_checks: field not supported by Remora',
    'static_resources.clusters[2].lb_policy: value "CLUSTER_PROVIDED" is not supported by Remora yet (supported: ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV)',
    'static_resources.clusters[2].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: a STATIC cluster needs IP addresses; use type STRICT_DNS to resolve hostnames',
    'static_resources.clusters[3].maglev_lb_config.table_size: must be a prime number, got 65536',
    'static_resources.clusters[4]: expected an object, got string',
    'static_resources.clusters[3].name: duplicate cluster name "c0" (also clusters[0])',
    `${R}[0].route.cluster: unknown cluster "nope"`,
  ]);
});

test('validate_clusters: false skips the cluster check', () => {
  const routes = { ...simpleRoutes, validate_clusters: false };
  routes.virtual_hosts = [
    { ...simpleRoutes.virtual_hosts[0]!, routes: [{ match: { prefix: '/' }, route: { cluster: 'later' } }] },
  ];
  valid(withHcm({ stat_prefix: 'h', route_config: routes, http_filters: [router] }));
});

test('the router must be present and last', () => {
  const H = 'static_resources.listeners[0].filter_chains[0].filters[0].typed_config';
  assert.deepEqual(errors(withHcm({ stat_prefix: 'h', route_config: simpleRoutes })), [
    `${H}.http_filters: the router filter (${TYPE_URLS.router}) is required as the last HTTP filter`,
  ]);
  assert.deepEqual(
    errors(withHcm({ stat_prefix: 'h', route_config: simpleRoutes, http_filters: [router, router] })),
    [`${H}.http_filters[0]: the router filter must be the last HTTP filter`],
  );
});

test('access_log filter, typed_config errors and unsupported top-level keys', () => {
  const H = 'static_resources.listeners[0].filter_chains[0].filters[0].typed_config';
  const logs = [
    { name: 'a', filter: { status_code_filter: {} }, typed_config: { '@type': TYPE_URLS.stdoutAccessLog } },
    {
      name: 5,
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig',
      },
    },
    { name: 'c' },
    { name: 'd', typed_config: { '@type': TYPE_URLS.fileAccessLog } },
    { name: 'e', typed_config: { '@type': 'nonsense' } },
  ];
  assert.deepEqual(
    errors(
      withHcm({ stat_prefix: 'h', route_config: simpleRoutes, http_filters: [router], access_log: logs }),
    ),
    [
      `${H}.access_log[0].filter: field not supported by Remora`,
      `${H}.access_log[1].name: expected a string, got number`,
      `${H}.access_log[1].typed_config.@type: access logger type "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig" is not supported by Remora yet`,
      `${H}.access_log[2].typed_config: missing required field`,
      `${H}.access_log[3].typed_config.path: missing required field`,
      `${H}.access_log[4].typed_config.@type: malformed type URL "nonsense"`,
    ],
  );
});

test('layered_runtime with empty layers is accepted; runtime values are not', () => {
  valid({
    layered_runtime: {
      layers: [
        { name: 's', static_layer: {} },
        { name: 'a', admin_layer: {} },
      ],
    },
  });
  assert.deepEqual(
    errors({
      layered_runtime: {
        layers: [
          { name: 's', static_layer: { 'overload.x': 1 } },
          { name: 'r', rtds_layer: {} },
        ],
      },
    }),
    [
      'layered_runtime.layers[0].static_layer: runtime values are not supported by Remora yet (only an empty static_layer is accepted)',
      'layered_runtime.layers[1].rtds_layer: field not supported by Remora',
    ],
  );
});

test('hostile input never throws', () => {
  let deep: unknown = {};
  for (let i = 0; i < 100_000; i++) deep = { metadata: deep };
  assert.equal(translateBootstrap({ node: { id: 'x', metadata: deep } }).ok, false);
  assert.equal(translateBootstrap({ node: deep }).ok, false);
  for (const raw of [null, 5, 'x', [], [1, 2], true, undefined]) {
    const r = translateBootstrap(raw);
    assert.equal(r.ok, false);
  }
  assert.deepEqual(errors([]), ['(root): expected an object, got array']);
  const many = { static_resources: { clusters: Array.from({ length: 5000 }, () => 1) } };
  const r = errors(many);
  assert.equal(r.length, 1001);
  assert.equal(r[1000], '(root): 4000 more errors not shown');
  const proto = JSON.parse(
    '{"__proto__": {"polluted": true}, "node": {"id": "a", "metadata": {"__proto__": {"x": 1}}}}',
  );
  assert.deepEqual(errors(proto), ['__proto__: unknown field "__proto__"']);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
