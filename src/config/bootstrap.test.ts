// Tests of translateBootstrap: a full config to the model, defaults, every error with its path, camelCase input.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_ACCESS_LOG_FORMAT } from './access_log.js';
import { summarize, translateBootstrap } from './bootstrap.js';
import type { Bootstrap, HcmConfig } from './model.js';
import { formatErrors } from './result.js';
import { TYPE_URLS } from './typed_config.js';

function valid(raw: unknown): Bootstrap {
  const r = translateBootstrap(raw);
  if (!r.ok) assert.fail(formatErrors(r.errors));
  return r.value;
}

function errors(raw: unknown): string[] {
  const r = translateBootstrap(raw);
  if (r.ok) assert.fail('expected errors');
  return formatErrors(r.errors).split('\n');
}

const socket = (address: string, port_value: number) => ({ socket_address: { address, port_value } });

function hcmFilter(config: Record<string, unknown>) {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: { '@type': TYPE_URLS.httpConnectionManager, ...config },
  };
}

const router = { name: 'envoy.filters.http.router', typed_config: { '@type': TYPE_URLS.router } };

const simpleRoutes = {
  virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'backend' } }] }],
};

const backend = {
  name: 'backend',
  load_assignment: { cluster_name: 'backend', endpoints: [{ lb_endpoints: [{ endpoint: { address: socket('10.0.0.1', 80) } }] }] },
};

function withHcm(config: Record<string, unknown>): unknown {
  return {
    static_resources: {
      listeners: [{ name: 'l', address: socket('0.0.0.0', 8080), filter_chains: [{ filters: [hcmFilter(config)] }] }],
      clusters: [backend],
    },
  };
}

function hcmOf(b: Bootstrap): HcmConfig {
  const f = b.listeners[0]!.filterChains[0]!.filter;
  assert.equal(f.kind, 'http_connection_manager');
  return f.kind === 'http_connection_manager' ? f.hcm : assert.fail();
}

const FULL = {
  node: { id: 'sidecar~a', cluster: 'web', metadata: { team: 'x', nested: { camelCase: [1, true, null] } } },
  admin: { access_log_path: '/dev/null', address: socket('127.0.0.1', 9901) },
  layered_runtime: { layers: [{ name: 'static', static_layer: {} }, { name: 'admin', admin_layer: {} }] },
  static_resources: {
    listeners: [
      {
        name: 'http',
        address: socket('0.0.0.0', 10000),
        per_connection_buffer_limit_bytes: 32768,
        filter_chains: [
          {
            name: 'main',
            filter_chain_match: { destination_port: 10000 },
            filters: [
              hcmFilter({
                stat_prefix: 'ingress',
                codec_type: 'HTTP1',
                stream_idle_timeout: '60s',
                request_timeout: '30s',
                request_headers_timeout: '10s',
                drain_timeout: '2s',
                delayed_close_timeout: '0s',
                max_request_headers_kb: 96,
                use_remote_address: true,
                xff_num_trusted_hops: 1,
                skip_xff_append: true,
                generate_request_id: false,
                preserve_external_request_id: true,
                server_name: 'edge',
                server_header_transformation: 'PASS_THROUGH',
                common_http_protocol_options: { idle_timeout: '300s', max_headers_count: 50 },
                http_protocol_options: {},
                access_log: [
                  {
                    name: 'file',
                    typed_config: {
                      '@type': TYPE_URLS.fileAccessLog,
                      path: '/tmp/access.log',
                      log_format: { json_format: { status: '%RESPONSE_CODE%', 'x.y': { a: 1 } } },
                    },
                  },
                  {
                    typed_config: {
                      '@type': TYPE_URLS.stderrAccessLog,
                      log_format: { text_format_source: { inline_string: '%START_TIME%\n' } },
                    },
                  },
                ],
                route_config: {
                  name: 'routes',
                  request_headers_to_add: [{ header: { key: 'X-Mesh', value: 'remora' } }],
                  response_headers_to_remove: ['Server'],
                  virtual_hosts: [
                    {
                      name: 'api',
                      domains: ['API.example.com', 'api.example.com:10000'],
                      retry_policy: { retry_on: '5xx, connect-failure', num_retries: 2 },
                      request_headers_to_remove: ['x-internal'],
                      routes: [
                        {
                          name: 'weighted',
                          match: { prefix: '/v2' },
                          route: {
                            weighted_clusters: {
                              clusters: [
                                {
                                  name: 'backend',
                                  weight: 90,
                                  request_headers_to_add: [{ header: { key: 'x-w', value: 'a' }, append: false }],
                                },
                                { name: 'canary', weight: 10 },
                              ],
                              total_weight: 100,
                            },
                            prefix_rewrite: '/',
                            host_rewrite_literal: 'backend.local',
                            timeout: '0s',
                            idle_timeout: '20s',
                            hash_policy: [
                              { header: { header_name: 'X-User' } },
                              { cookie: { name: 'sid', ttl: '3600s', path: '/' }, terminal: true },
                              { connection_properties: { source_ip: true } },
                              { query_parameter: { name: 'u' } },
                            ],
                          },
                        },
                        {
                          match: { path: '/r', headers: [{ name: 'x-a', exact_match: 'b' }] },
                          route: {
                            cluster: 'backend',
                            regex_rewrite: { pattern: { regex: '^/r' }, substitution: '/s' },
                            retry_policy: {
                              retry_on: 'retriable-status-codes',
                              retriable_status_codes: [503],
                              per_try_timeout: '1s',
                              retry_back_off: { base_interval: '0.1s' },
                            },
                          },
                          response_headers_to_add: [
                            { header: { key: 'x-r', value: '%DOWNSTREAM_REMOTE_ADDRESS%' }, append_action: 'ADD_IF_ABSENT', keep_empty_value: true },
                          ],
                        },
                        { match: { prefix: '/old' }, redirect: { https_redirect: true, prefix_rewrite: '/new', response_code: 'PERMANENT_REDIRECT', strip_query: true } },
                        { match: { prefix: '/moved' }, redirect: { host_redirect: 'x.example.com', port_redirect: 8443, path_redirect: '/p' } },
                        { match: { prefix: '/health' }, direct_response: { status: 200, body: { inline_string: 'ok' } } },
                        { match: { prefix: '/gone' }, direct_response: { status: 410 } },
                      ],
                    },
                  ],
                },
                http_filters: [router],
              }),
            ],
          },
        ],
      },
      {
        address: socket('127.0.0.1', 15001),
        filter_chains: [
          {
            filters: [
              {
                name: 'tcp',
                typed_config: {
                  '@type': TYPE_URLS.tcpProxy,
                  stat_prefix: 'tcp',
                  weighted_clusters: { clusters: [{ name: 'backend', weight: 1 }, { name: 'dns', weight: 3 }] },
                  idle_timeout: '0s',
                  max_connect_attempts: 3,
                  access_log: [{ name: 'out', typed_config: { '@type': TYPE_URLS.stdoutAccessLog } }],
                },
              },
            ],
          },
        ],
      },
    ],
    clusters: [
      {
        ...backend,
        connect_timeout: '0.25s',
        lb_policy: 'RING_HASH',
        ring_hash_lb_config: { minimum_ring_size: 64, maximum_ring_size: 4096, hash_function: 'XX_HASH' },
        circuit_breakers: {
          thresholds: [
            { priority: 'HIGH', max_connections: 1 },
            { max_connections: 10, max_pending_requests: 20, max_requests: 30, max_retries: 4 },
          ],
        },
        common_http_protocol_options: { idle_timeout: '60s', max_requests_per_connection: 100 },
        per_connection_buffer_limit_bytes: 65536,
      },
      { name: 'canary', type: 'STATIC', lb_policy: 'MAGLEV', maglev_lb_config: { table_size: 251 } },
      {
        name: 'dns',
        type: 'STRICT_DNS',
        lb_policy: 'LEAST_REQUEST',
        least_request_lb_config: { choice_count: 3 },
        dns_refresh_rate: '10s',
        dns_lookup_family: 'V4_ONLY',
        respect_dns_ttl: true,
        load_assignment: {
          cluster_name: 'dns',
          endpoints: [
            {
              locality: { region: 'eu', zone: 'a' },
              priority: 1,
              load_balancing_weight: 5,
              lb_endpoints: [
                { endpoint: { address: socket('db.internal', 5432), hostname: 'db' }, load_balancing_weight: 2, health_status: 'HEALTHY' },
              ],
            },
          ],
        },
      },
    ],
  },
};

const noMutations = { requestHeadersToAdd: [], requestHeadersToRemove: [], responseHeadersToAdd: [], responseHeadersToRemove: [] };
const text = (template: string) => ({ kind: 'text', template }) as const;
const defaultBackOff = { baseIntervalMs: 25, maxIntervalMs: 250 };
const vhRetry = { retryOn: ['5xx', 'connect-failure'], numRetries: 2, perTryTimeoutMs: 0, retriableStatusCodes: [], backOff: defaultBackOff };
const forward = {
  prefixRewrite: undefined,
  regexRewrite: undefined,
  hostRewriteLiteral: undefined,
  timeoutMs: 15000,
  idleTimeoutMs: 0,
  retryPolicy: vhRetry,
  hashPolicy: [],
};
const redirect = { scheme: undefined, host: undefined, port: undefined, path: undefined, prefixRewrite: undefined, responseCode: 301, stripQuery: false };

const EXPECTED: Bootstrap = {
  node: { id: 'sidecar~a', cluster: 'web', metadata: { team: 'x', nested: { camelCase: [1, true, null] } } },
  admin: { address: { address: '127.0.0.1', port: 9901 }, accessLogPath: '/dev/null' },
  listeners: [
    {
      name: 'http',
      address: { address: '0.0.0.0', port: 10000 },
      perConnectionBufferLimitBytes: 32768,
      filterChains: [
        {
          name: 'main',
          match: { destinationPort: 10000 },
          filter: {
            kind: 'http_connection_manager',
            hcm: {
              statPrefix: 'ingress',
              codecType: 'HTTP1',
              httpFilters: [{ name: 'envoy.filters.http.router', typeUrl: TYPE_URLS.router }],
              accessLogs: [
                { name: 'file', sink: { kind: 'file', path: '/tmp/access.log' }, format: { kind: 'json', fields: { status: '%RESPONSE_CODE%', 'x.y': { a: 1 } } } },
                { name: 'envoy.access_loggers.stderr', sink: { kind: 'stderr' }, format: text('%START_TIME%\n') },
              ],
              requestHeadersTimeoutMs: 10000,
              streamIdleTimeoutMs: 60000,
              requestTimeoutMs: 30000,
              idleTimeoutMs: 300000,
              maxRequestHeadersKb: 96,
              maxHeadersCount: 50,
              useRemoteAddress: true,
              xffNumTrustedHops: 1,
              skipXffAppend: true,
              generateRequestId: false,
              preserveExternalRequestId: true,
              serverName: 'edge',
              serverHeaderTransformation: 'PASS_THROUGH',
              drainTimeoutMs: 2000,
              delayedCloseTimeoutMs: 0,
              routeConfig: {
                name: 'routes',
                ...noMutations,
                requestHeadersToAdd: [{ key: 'x-mesh', value: 'remora', appendAction: 'APPEND_IF_EXISTS_OR_ADD', keepEmptyValue: false }],
                responseHeadersToRemove: ['server'],
                virtualHosts: [
                  {
                    name: 'api',
                    domains: ['api.example.com', 'api.example.com:10000'],
                    retryPolicy: vhRetry,
                    ...noMutations,
                    requestHeadersToRemove: ['x-internal'],
                    routes: [
                      {
                        name: 'weighted',
                        ...noMutations,
                        match: { path: { kind: 'prefix', value: '/v2' }, caseSensitive: true, headers: [], queryParameters: [] },
                        action: {
                          kind: 'route',
                          route: {
                            ...forward,
                            clusters: [
                              {
                                name: 'backend',
                                weight: 90,
                                ...noMutations,
                                requestHeadersToAdd: [{ key: 'x-w', value: 'a', appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD', keepEmptyValue: false }],
                              },
                              { name: 'canary', weight: 10, ...noMutations },
                            ],
                            totalWeight: 100,
                            prefixRewrite: '/',
                            hostRewriteLiteral: 'backend.local',
                            timeoutMs: 0,
                            idleTimeoutMs: 20000,
                            hashPolicy: [
                              { kind: 'header', headerName: 'x-user', terminal: false },
                              { kind: 'cookie', name: 'sid', ttlMs: 3600000, path: '/', terminal: true },
                              { kind: 'source_ip', terminal: false },
                              { kind: 'query_parameter', name: 'u', terminal: false },
                            ],
                          },
                        },
                      },
                      {
                        name: '',
                        ...noMutations,
                        responseHeadersToAdd: [{ key: 'x-r', value: '%DOWNSTREAM_REMOTE_ADDRESS%', appendAction: 'ADD_IF_ABSENT', keepEmptyValue: true }],
                        match: {
                          path: { kind: 'path', value: '/r' },
                          caseSensitive: true,
                          headers: [
                            { name: 'x-a', spec: { kind: 'string', matcher: { kind: 'exact', value: 'b', ignoreCase: false } }, invertMatch: false, treatMissingHeaderAsEmpty: false },
                          ],
                          queryParameters: [],
                        },
                        action: {
                          kind: 'route',
                          route: {
                            ...forward,
                            clusters: [{ name: 'backend', weight: 1, ...noMutations }],
                            totalWeight: 1,
                            regexRewrite: { pattern: '^/r', substitution: '/s' },
                            retryPolicy: {
                              retryOn: ['retriable-status-codes'],
                              numRetries: 1,
                              perTryTimeoutMs: 1000,
                              retriableStatusCodes: [503],
                              backOff: { baseIntervalMs: 100, maxIntervalMs: 1000 },
                            },
                          },
                        },
                      },
                      {
                        name: '',
                        ...noMutations,
                        match: { path: { kind: 'prefix', value: '/old' }, caseSensitive: true, headers: [], queryParameters: [] },
                        action: { kind: 'redirect', redirect: { ...redirect, scheme: 'https', prefixRewrite: '/new', responseCode: 308, stripQuery: true } },
                      },
                      {
                        name: '',
                        ...noMutations,
                        match: { path: { kind: 'prefix', value: '/moved' }, caseSensitive: true, headers: [], queryParameters: [] },
                        action: { kind: 'redirect', redirect: { ...redirect, host: 'x.example.com', port: 8443, path: '/p' } },
                      },
                      {
                        name: '',
                        ...noMutations,
                        match: { path: { kind: 'prefix', value: '/health' }, caseSensitive: true, headers: [], queryParameters: [] },
                        action: { kind: 'direct_response', status: 200, body: 'ok' },
                      },
                      {
                        name: '',
                        ...noMutations,
                        match: { path: { kind: 'prefix', value: '/gone' }, caseSensitive: true, headers: [], queryParameters: [] },
                        action: { kind: 'direct_response', status: 410, body: undefined },
                      },
                    ],
                  },
                ],
              },
            },
          },
        },
      ],
    },
    {
      name: 'listener_1',
      address: { address: '127.0.0.1', port: 15001 },
      perConnectionBufferLimitBytes: 1048576,
      filterChains: [
        {
          name: 'filter_chain_0',
          match: { destinationPort: undefined },
          filter: {
            kind: 'tcp_proxy',
            tcpProxy: {
              statPrefix: 'tcp',
              clusters: [
                { name: 'backend', weight: 1, ...noMutations },
                { name: 'dns', weight: 3, ...noMutations },
              ],
              totalWeight: 4,
              idleTimeoutMs: 0,
              accessLogs: [{ name: 'out', sink: { kind: 'stdout' }, format: text(DEFAULT_ACCESS_LOG_FORMAT) }],
              maxConnectAttempts: 3,
            },
          },
        },
      ],
    },
  ],
  clusters: [
    {
      name: 'backend',
      type: 'STATIC',
      connectTimeoutMs: 250,
      lbPolicy: 'RING_HASH',
      localities: [{ priority: 0, weight: undefined, endpoints: [{ address: { address: '10.0.0.1', port: 80 }, weight: 1, hostname: undefined }] }],
      circuitBreakers: { maxConnections: 10, maxPendingRequests: 20, maxRequests: 30, maxRetries: 4 },
      dnsRefreshRateMs: 5000,
      dnsLookupFamily: 'AUTO',
      respectDnsTtl: false,
      ringHash: { minimumRingSize: 64, maximumRingSize: 4096 },
      maglev: { tableSize: 65537 },
      leastRequest: { choiceCount: 2 },
      upstreamIdleTimeoutMs: 60000,
      maxRequestsPerConnection: 100,
      perConnectionBufferLimitBytes: 65536,
    },
    {
      name: 'canary',
      type: 'STATIC',
      connectTimeoutMs: 5000,
      lbPolicy: 'MAGLEV',
      localities: [],
      circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
      dnsRefreshRateMs: 5000,
      dnsLookupFamily: 'AUTO',
      respectDnsTtl: false,
      ringHash: { minimumRingSize: 1024, maximumRingSize: 8388608 },
      maglev: { tableSize: 251 },
      leastRequest: { choiceCount: 2 },
      upstreamIdleTimeoutMs: 3600000,
      maxRequestsPerConnection: 0,
      perConnectionBufferLimitBytes: 1048576,
    },
    {
      name: 'dns',
      type: 'STRICT_DNS',
      connectTimeoutMs: 5000,
      lbPolicy: 'LEAST_REQUEST',
      localities: [
        { priority: 1, weight: 5, endpoints: [{ address: { address: 'db.internal', port: 5432 }, weight: 2, hostname: 'db' }] },
      ],
      circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
      dnsRefreshRateMs: 10000,
      dnsLookupFamily: 'V4_ONLY',
      respectDnsTtl: true,
      ringHash: { minimumRingSize: 1024, maximumRingSize: 8388608 },
      maglev: { tableSize: 65537 },
      leastRequest: { choiceCount: 3 },
      upstreamIdleTimeoutMs: 3600000,
      maxRequestsPerConnection: 0,
      perConnectionBufferLimitBytes: 1048576,
    },
  ],
};

test('a full config translates to the expected model', () => {
  assert.deepEqual(valid(FULL), EXPECTED);
  assert.equal(summarize(valid(FULL)), 'valid: 2 listeners, 3 clusters, 6 routes (node "sidecar~a")');
});

test('camelCase (proto3 JSON names) is accepted; metadata and json_format keys are kept as written', () => {
  const camel = JSON.parse(
    JSON.stringify(FULL).replace(/"([a-z0-9]+(?:_[a-z0-9]+)+)":/g, (_m, k: string) => `"${k.replace(/_([a-z0-9])/g, (_x, c: string) => c.toUpperCase())}":`),
  );
  assert.ok(camel.staticResources.listeners[0].perConnectionBufferLimitBytes);
  assert.deepEqual(valid(camel), EXPECTED);
  // metadata keys are never renamed.
  const b = valid({ node: { id: 'n', metadata: { some_key: 1, otherKey: 2 } } });
  assert.deepEqual(b.node.metadata, { some_key: 1, otherKey: 2 });
});

test('errors use the field name as written', () => {
  assert.deepEqual(errors({ staticResources: { clusters: [{ name: 'c', lbPolicy: 'FOO', lbPolcy: 1 }] } }), [
    'staticResources.clusters[0].lbPolicy: unsupported value "FOO" (expected one of ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV)',
    'staticResources.clusters[0].lbPolcy: unknown field "lbPolcy"',
  ]);
  assert.deepEqual(errors({ node: { id: 'a', Id: 'b', cluster: 'c' }, admin: { access_log_path: 'x', accessLogPath: 'y' } }), [
    'node.Id: unknown field "Id"',
    'admin.accessLogPath: duplicate field "accessLogPath" (also given as "access_log_path")',
  ]);
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
    xffNumTrustedHops: 0,
    skipXffAppend: false,
    generateRequestId: true,
    preserveExternalRequestId: false,
    serverName: 'remora',
    serverHeaderTransformation: 'OVERWRITE',
    drainTimeoutMs: 5000,
    delayedCloseTimeoutMs: 1000,
  });
  const route = routeConfig.virtualHosts[0]!.routes[0]!.action;
  assert.deepEqual(route, {
    kind: 'route',
    route: { ...forward, retryPolicy: undefined, clusters: [{ name: 'backend', weight: 1, ...noMutations }], totalWeight: 1 },
  });
  // The router may be given by name alone, as older Envoy configs do.
  const byName = valid(withHcm({ stat_prefix: 'h', route_config: simpleRoutes, http_filters: [{ name: 'envoy.filters.http.router' }] }));
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
          listener_filters: [{ name: 'envoy.filters.listener.tls_inspector' }],
          filter_chains: [
            {
              filters: [
                hcmFilter({
                  stat_prefix: 7,
                  codec_type: 'HTTP2',
                  rds: { route_config_name: 'x' },
                  stream_idle_timeout: '100ms',
                  upgrade_configs: [{ upgrade_type: 'websocket' }],
                  route_config: {
                    virtual_hosts: [
                      {
                        name: 'v',
                        domains: ['a.com', 'a*b'],
                        require_tls: 'ALL',
                        routes: [
                          { match: { prefix: '/' }, route: { cluster: 'nope' } },
                          { match: { prefix: '/a' }, route: { cluster: 'c0', prefix_rewrite: '/', regex_rewrite: { pattern: { regex: 'x' }, substitution: '' } } },
                          { match: { prefix: '/b' }, route: { cluster: 'c0', retry_policy: { retry_on: '5xx,bogus', retry_back_off: { base_interval: '1s', max_interval: '0.5s' } } } },
                          { match: { prefix: '/c' }, direct_response: { status: 200 }, decorator: { operation: 'x' } },
                          { match: { prefix: '/d' }, route: { weighted_clusters: { clusters: [{ name: 'c0', weight: 1 }], total_weight: 2 } } },
                          { match: { prefix: '/e' }, route: { cluster: 'c0' }, request_headers_to_add: [{ header: { key: ':path', value: '/' } }] },
                        ],
                      },
                      { name: 'w', domains: ['A.com'] },
                    ],
                  },
                  http_filters: [{ name: 'cors', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' } }, router],
                }),
              ],
            },
          ],
        },
        { name: 'l', address: socket('0.0.0.0', 80), filter_chains: [{ filters: [{ name: 'x', typed_config: { '@type': 'type.googleapis.com/acme.Foo' } }] }] },
      ],
      clusters: [
        { name: 'c0', type: 'EDS', lb_polcy: 'ROUND_ROBIN' },
        { name: 'c1', lb_policy: 'FOO', connect_timeout: 5, health_checks: [{}], hosts: [] },
        {
          name: 'c2',
          lb_policy: 'CLUSTER_PROVIDED',
          load_assignment: { cluster_name: 'c2', endpoints: [{ lb_endpoints: [{ endpoint: { address: socket('db.example.com', 5432) } }] }] },
        },
        { name: 'c0', maglev_lb_config: { table_size: 65536 } },
        'not an object',
      ],
    },
  };
  assert.deepEqual(errors(raw), [
    'admin.address.socket_address.port_value: must be between 0 and 65535, got 70000',
    'admin.address.socket_address.address: must be an IP address, got "localhost"',
    'dynamic_resources: field not supported by Remora',
    'stats_config: field not supported by Remora',
    `${H}.stat_prefix: expected a string, got number`,
    `${H}.codec_type: value "HTTP2" is not supported by Remora yet (supported: AUTO, HTTP1)`,
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
    `${H}.rds: field not supported by Remora`,
    `${H}.http_filters[0].typed_config.@type: HTTP filter type "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors" is not supported by Remora yet`,
    `${H}.stream_idle_timeout: invalid duration "100ms": the unit must be seconds with an "s" suffix, e.g. "0.100s" for 100ms`,
    `${H}.upgrade_configs: field not supported by Remora`,
    `${L}.listener_filters: field not supported by Remora`,
    'static_resources.listeners[1].filter_chains[0].filters[0].typed_config.@type: unknown network filter type "type.googleapis.com/acme.Foo"',
    'static_resources.listeners[1].name: duplicate listener name "l" (also listeners[0])',
    'static_resources.listeners[1].address: duplicate listener address 0.0.0.0:80 (also listeners[0])',
    'static_resources.clusters[0].type: value "EDS" is not supported by Remora yet (supported: STATIC, STRICT_DNS)',
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
  routes.virtual_hosts = [{ ...simpleRoutes.virtual_hosts[0]!, routes: [{ match: { prefix: '/' }, route: { cluster: 'later' } }] }];
  valid(withHcm({ stat_prefix: 'h', route_config: routes, http_filters: [router] }));
});

test('the router must be present and last', () => {
  const H = 'static_resources.listeners[0].filter_chains[0].filters[0].typed_config';
  assert.deepEqual(errors(withHcm({ stat_prefix: 'h', route_config: simpleRoutes })), [
    `${H}.http_filters: the router filter (${TYPE_URLS.router}) is required as the last HTTP filter`,
  ]);
  assert.deepEqual(errors(withHcm({ stat_prefix: 'h', route_config: simpleRoutes, http_filters: [router, router] })), [
    `${H}.http_filters[0]: the router filter must be the last HTTP filter`,
  ]);
});

test('access_log filter, typed_config errors and unsupported top-level keys', () => {
  const H = 'static_resources.listeners[0].filter_chains[0].filters[0].typed_config';
  const logs = [
    { name: 'a', filter: { status_code_filter: {} }, typed_config: { '@type': TYPE_URLS.stdoutAccessLog } },
    { name: 5, typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig' } },
    { name: 'c' },
    { name: 'd', typed_config: { '@type': TYPE_URLS.fileAccessLog } },
    { name: 'e', typed_config: { '@type': 'nonsense' } },
  ];
  assert.deepEqual(errors(withHcm({ stat_prefix: 'h', route_config: simpleRoutes, http_filters: [router], access_log: logs })), [
    `${H}.access_log[0].filter: field not supported by Remora`,
    `${H}.access_log[1].name: expected a string, got number`,
    `${H}.access_log[1].typed_config.@type: access logger type "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig" is not supported by Remora yet`,
    `${H}.access_log[2].typed_config: missing required field`,
    `${H}.access_log[3].typed_config.path: missing required field`,
    `${H}.access_log[4].typed_config.@type: malformed type URL "nonsense"`,
  ]);
});

test('layered_runtime with empty layers is accepted; runtime values are not', () => {
  valid({ layered_runtime: { layers: [{ name: 's', static_layer: {} }, { name: 'a', admin_layer: {} }] } });
  assert.deepEqual(errors({ layered_runtime: { layers: [{ name: 's', static_layer: { 'overload.x': 1 } }, { name: 'r', rtds_layer: {} }] } }), [
    'layered_runtime.layers[0].static_layer: runtime values are not supported by Remora yet (only an empty static_layer is accepted)',
    'layered_runtime.layers[1].rtds_layer: field not supported by Remora',
  ]);
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
  const proto = JSON.parse('{"__proto__": {"polluted": true}, "node": {"id": "a", "metadata": {"__proto__": {"x": 1}}}}');
  assert.deepEqual(errors(proto), ['__proto__: unknown field "__proto__"']);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
