// A bootstrap using every supported feature, and the model it must translate to (shared by the tests).

import { DEFAULT_ACCESS_LOG_FORMAT } from './access_log.js';
import { DEFAULT_HTTP2 } from './http2.js';
import { DEFAULT_LOAD_ASSIGNMENT_POLICY } from './load_assignment_policy.js';
import type { Bootstrap } from './model.js';
import { TYPE_URLS } from './typed_config.js';

export const socket = (address: string, port_value: number) => ({ socket_address: { address, port_value } });

export function hcmFilter(config: Record<string, unknown>) {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: { '@type': TYPE_URLS.httpConnectionManager, ...config },
  };
}

export const router = { name: 'envoy.filters.http.router', typed_config: { '@type': TYPE_URLS.router } };

export const simpleRoutes = {
  virtual_hosts: [
    { name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'backend' } }] },
  ],
};

export const backend = {
  name: 'backend',
  load_assignment: {
    cluster_name: 'backend',
    endpoints: [{ lb_endpoints: [{ endpoint: { address: socket('10.0.0.1', 80) } }] }],
  },
};

export const FULL = {
  node: { id: 'sidecar~a', cluster: 'web', metadata: { team: 'x', nested: { camelCase: [1, true, null] } } },
  admin: { access_log_path: '/dev/null', address: socket('127.0.0.1', 9901) },
  layered_runtime: {
    layers: [
      { name: 'static', static_layer: {} },
      { name: 'admin', admin_layer: {} },
    ],
  },
  static_resources: {
    listeners: [
      {
        name: 'http',
        address: socket('0.0.0.0', 10000),
        per_connection_buffer_limit_bytes: 32768,
        listener_filters: [
          {
            name: 'tls',
            typed_config: { '@type': TYPE_URLS.tlsInspector, max_client_hello_size: 16384 },
            filter_disabled: { destination_port_range: { start: 3306, end: 3307 } },
          },
          { name: 'envoy.filters.listener.http_inspector' },
        ],
        listener_filters_timeout: '0.5s',
        continue_on_listener_filters_timeout: false,
        metadata: { filter_metadata: { remora: { server_first_ports: [4222] } } },
        default_filter_chain: {
          filters: [
            {
              name: 'tcp',
              typed_config: { '@type': TYPE_URLS.tcpProxy, stat_prefix: 'rest', cluster: 'backend' },
            },
          ],
        },
        filter_chains: [
          {
            name: 'main',
            filter_chain_match: {
              destination_port: 10000,
              prefix_ranges: [{ address_prefix: '10.1.2.3', prefix_len: 16 }],
              server_names: ['*.Example.com'],
              transport_protocol: 'tls',
              application_protocols: ['h2', 'http/1.1'],
              direct_source_prefix_ranges: [{ address_prefix: '2001:db8::1', prefix_len: 32 }],
              source_type: 'EXTERNAL',
              source_prefix_ranges: [{ address_prefix: '::ffff:192.168.7.1', prefix_len: 112 }],
              source_ports: [1234, '5678'],
            },
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
                skip_xff_append: true,
                forward_client_cert_details: 'APPEND_FORWARD',
                set_current_client_cert_details: { subject: true, uri: true },
                generate_request_id: false,
                preserve_external_request_id: true,
                server_name: 'edge',
                server_header_transformation: 'PASS_THROUGH',
                common_http_protocol_options: { idle_timeout: '300s', max_headers_count: 50 },
                http_protocol_options: { accept_http_10: true, default_host_for_http_10: 'legacy.local' },
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
                                  request_headers_to_add: [
                                    { header: { key: 'x-w', value: 'a' }, append: false },
                                  ],
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
                            {
                              header: { key: 'x-r', value: '%DOWNSTREAM_REMOTE_ADDRESS%' },
                              append_action: 'ADD_IF_ABSENT',
                              keep_empty_value: true,
                            },
                          ],
                        },
                        {
                          match: { prefix: '/old' },
                          redirect: {
                            https_redirect: true,
                            prefix_rewrite: '/new',
                            response_code: 'PERMANENT_REDIRECT',
                            strip_query: true,
                          },
                        },
                        {
                          match: { prefix: '/moved' },
                          redirect: {
                            host_redirect: 'x.example.com',
                            port_redirect: 8443,
                            path_redirect: '/p',
                          },
                        },
                        {
                          match: { prefix: '/health' },
                          direct_response: { status: 200, body: { inline_string: 'ok' } },
                        },
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
                  weighted_clusters: {
                    clusters: [
                      { name: 'backend', weight: 1 },
                      { name: 'dns', weight: 3 },
                    ],
                  },
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
        load_assignment: {
          cluster_name: 'dns',
          endpoints: [
            {
              locality: { region: 'eu', zone: 'a' },
              priority: 1,
              load_balancing_weight: 5,
              lb_endpoints: [
                {
                  endpoint: { address: socket('db.internal', 5432), hostname: 'db' },
                  load_balancing_weight: 2,
                  health_status: 'HEALTHY',
                },
              ],
            },
          ],
        },
      },
    ],
  },
};

export const noMutations = {
  requestHeadersToAdd: [],
  requestHeadersToRemove: [],
  responseHeadersToAdd: [],
  responseHeadersToRemove: [],
};
export const text = (template: string) => ({ kind: 'text', template }) as const;
export const defaultBackOff = { baseIntervalMs: 25, maxIntervalMs: 250 };
export const vhRetry = {
  retryOn: ['5xx', 'connect-failure'],
  numRetries: 2,
  perTryTimeoutMs: 0,
  retriableStatusCodes: [],
  backOff: defaultBackOff,
};
export const forward = {
  prefixRewrite: undefined,
  regexRewrite: undefined,
  hostRewriteLiteral: undefined,
  timeoutMs: 15000,
  idleTimeoutMs: 0,
  grpcTimeoutMaxMs: 0,
  grpcTimeoutOffsetMs: 0,
  retryPolicy: vhRetry,
  hashPolicy: [],
  upgradeConfigs: [],
};
export const redirect = {
  scheme: undefined,
  host: undefined,
  port: undefined,
  path: undefined,
  prefixRewrite: undefined,
  responseCode: 301,
  stripQuery: false,
};

export const EXPECTED: Bootstrap = {
  node: { id: 'sidecar~a', cluster: 'web', metadata: { team: 'x', nested: { camelCase: [1, true, null] } } },
  admin: { address: { address: '127.0.0.1', port: 9901 }, accessLogPath: '/dev/null' },
  listeners: [
    {
      name: 'http',
      address: { address: '0.0.0.0', port: 10000 },
      perConnectionBufferLimitBytes: 32768,
      originalDst: false,
      useOriginalDst: false,
      bindToPort: true,
      trafficDirection: 'UNSPECIFIED',
      listenerFilters: [
        {
          kind: 'tls_inspector',
          name: 'tls',
          filterDisabled: { kind: 'destination_port_range', start: 3306, end: 3307 },
          maxClientHelloSize: 16384,
          closeOnParsingErrors: false,
        },
        { kind: 'http_inspector', name: 'envoy.filters.listener.http_inspector', filterDisabled: undefined },
      ],
      listenerFiltersTimeoutMs: 500,
      continueOnListenerFiltersTimeout: false,
      serverFirstPorts: [4222],
      defaultFilterChain: {
        name: 'default_filter_chain',
        match: {
          destinationPort: undefined,
          prefixRanges: [],
          serverNames: [],
          transportProtocol: '',
          applicationProtocols: [],
          directSourcePrefixRanges: [],
          sourceType: 'ANY',
          sourcePrefixRanges: [],
          sourcePorts: [],
        },
        filter: {
          kind: 'tcp_proxy',
          tcpProxy: {
            statPrefix: 'rest',
            clusters: [{ name: 'backend', weight: 1, ...noMutations }],
            totalWeight: 1,
            idleTimeoutMs: 3600000,
            accessLogs: [],
            maxConnectAttempts: 1,
          },
        },
      },
      filterChains: [
        {
          name: 'main',
          match: {
            destinationPort: 10000,
            prefixRanges: [{ addressPrefix: '10.1.0.0', prefixLen: 16 }],
            serverNames: ['*.example.com'],
            transportProtocol: 'tls',
            applicationProtocols: ['h2', 'http/1.1'],
            directSourcePrefixRanges: [{ addressPrefix: '2001:db8:0:0:0:0:0:0', prefixLen: 32 }],
            sourceType: 'EXTERNAL',
            sourcePrefixRanges: [{ addressPrefix: '192.168.0.0', prefixLen: 16 }],
            sourcePorts: [1234, 5678],
          },
          filter: {
            kind: 'http_connection_manager',
            hcm: {
              statPrefix: 'ingress',
              codecType: 'HTTP1',
              http2: DEFAULT_HTTP2,
              httpFilters: [{ name: 'envoy.filters.http.router', typeUrl: TYPE_URLS.router }],
              accessLogs: [
                {
                  name: 'file',
                  sink: { kind: 'file', path: '/tmp/access.log' },
                  format: { kind: 'json', fields: { status: '%RESPONSE_CODE%', 'x.y': { a: 1 } } },
                },
                {
                  name: 'envoy.access_loggers.stderr',
                  sink: { kind: 'stderr' },
                  format: text('%START_TIME%\n'),
                },
              ],
              requestHeadersTimeoutMs: 10000,
              streamIdleTimeoutMs: 60000,
              requestTimeoutMs: 30000,
              idleTimeoutMs: 300000,
              maxRequestHeadersKb: 96,
              maxHeadersCount: 50,
              useRemoteAddress: true,
              skipXffAppend: true,
              generateRequestId: false,
              preserveExternalRequestId: true,
              serverName: 'edge',
              serverHeaderTransformation: 'PASS_THROUGH',
              drainTimeoutMs: 2000,
              delayedCloseTimeoutMs: 0,
              acceptHttp10: true,
              defaultHostForHttp10: 'legacy.local',
              upgradeConfigs: [],
              forwardClientCert: {
                mode: 'APPEND_FORWARD',
                details: { subject: true, cert: false, chain: false, dns: false, uri: true },
              },
              routeConfig: {
                name: 'routes',
                ...noMutations,
                requestHeadersToAdd: [
                  {
                    key: 'x-mesh',
                    value: 'remora',
                    appendAction: 'APPEND_IF_EXISTS_OR_ADD',
                    keepEmptyValue: false,
                  },
                ],
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
                        match: {
                          path: { kind: 'prefix', value: '/v2' },
                          caseSensitive: true,
                          headers: [],
                          queryParameters: [],
                        },
                        action: {
                          kind: 'route',
                          route: {
                            ...forward,
                            clusters: [
                              {
                                name: 'backend',
                                weight: 90,
                                ...noMutations,
                                requestHeadersToAdd: [
                                  {
                                    key: 'x-w',
                                    value: 'a',
                                    appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD',
                                    keepEmptyValue: false,
                                  },
                                ],
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
                        responseHeadersToAdd: [
                          {
                            key: 'x-r',
                            value: '%DOWNSTREAM_REMOTE_ADDRESS%',
                            appendAction: 'ADD_IF_ABSENT',
                            keepEmptyValue: true,
                          },
                        ],
                        match: {
                          path: { kind: 'path', value: '/r' },
                          caseSensitive: true,
                          headers: [
                            {
                              name: 'x-a',
                              spec: {
                                kind: 'string',
                                matcher: { kind: 'exact', value: 'b', ignoreCase: false },
                              },
                              invertMatch: false,
                              treatMissingHeaderAsEmpty: false,
                            },
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
                        match: {
                          path: { kind: 'prefix', value: '/old' },
                          caseSensitive: true,
                          headers: [],
                          queryParameters: [],
                        },
                        action: {
                          kind: 'redirect',
                          redirect: {
                            ...redirect,
                            scheme: 'https',
                            prefixRewrite: '/new',
                            responseCode: 308,
                            stripQuery: true,
                          },
                        },
                      },
                      {
                        name: '',
                        ...noMutations,
                        match: {
                          path: { kind: 'prefix', value: '/moved' },
                          caseSensitive: true,
                          headers: [],
                          queryParameters: [],
                        },
                        action: {
                          kind: 'redirect',
                          redirect: { ...redirect, host: 'x.example.com', port: 8443, path: '/p' },
                        },
                      },
                      {
                        name: '',
                        ...noMutations,
                        match: {
                          path: { kind: 'prefix', value: '/health' },
                          caseSensitive: true,
                          headers: [],
                          queryParameters: [],
                        },
                        action: { kind: 'direct_response', status: 200, body: 'ok' },
                      },
                      {
                        name: '',
                        ...noMutations,
                        match: {
                          path: { kind: 'prefix', value: '/gone' },
                          caseSensitive: true,
                          headers: [],
                          queryParameters: [],
                        },
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
      originalDst: false,
      useOriginalDst: false,
      bindToPort: true,
      trafficDirection: 'UNSPECIFIED',
      listenerFilters: [],
      listenerFiltersTimeoutMs: 15_000,
      continueOnListenerFiltersTimeout: false,
      serverFirstPorts: [25, 3306, 5432, 6379, 11211, 27017],
      defaultFilterChain: undefined,
      filterChains: [
        {
          name: 'filter_chain_0',
          match: {
            destinationPort: undefined,
            prefixRanges: [],
            serverNames: [],
            transportProtocol: '',
            applicationProtocols: [],
            directSourcePrefixRanges: [],
            sourceType: 'ANY',
            sourcePrefixRanges: [],
            sourcePorts: [],
          },
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
              accessLogs: [
                { name: 'out', sink: { kind: 'stdout' }, format: text(DEFAULT_ACCESS_LOG_FORMAT) },
              ],
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
      localities: [
        {
          priority: 0,
          weight: undefined,
          endpoints: [
            { address: { address: '10.0.0.1', port: 80 }, weight: 1, hostname: undefined, health: 'HEALTHY' },
          ],
        },
      ],
      loadAssignmentPolicy: DEFAULT_LOAD_ASSIGNMENT_POLICY,
      circuitBreakers: { maxConnections: 10, maxPendingRequests: 20, maxRequests: 30, maxRetries: 4 },
      dnsRefreshRateMs: 5000,
      dnsLookupFamily: 'AUTO',
      ringHash: { minimumRingSize: 64, maximumRingSize: 4096 },
      maglev: { tableSize: 65537 },
      leastRequest: { choiceCount: 2 },
      upstreamIdleTimeoutMs: 60000,
      maxRequestsPerConnection: 100,
      perConnectionBufferLimitBytes: 65536,
      upstreamProtocol: 'HTTP1',
      upstreamBindAddresses: [],
      http2: DEFAULT_HTTP2,
    },
    {
      name: 'canary',
      type: 'STATIC',
      connectTimeoutMs: 5000,
      lbPolicy: 'MAGLEV',
      localities: [],
      loadAssignmentPolicy: DEFAULT_LOAD_ASSIGNMENT_POLICY,
      circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
      dnsRefreshRateMs: 5000,
      dnsLookupFamily: 'AUTO',
      ringHash: { minimumRingSize: 1024, maximumRingSize: 8388608 },
      maglev: { tableSize: 251 },
      leastRequest: { choiceCount: 2 },
      upstreamIdleTimeoutMs: 3600000,
      maxRequestsPerConnection: 0,
      perConnectionBufferLimitBytes: 1048576,
      upstreamProtocol: 'HTTP1',
      upstreamBindAddresses: [],
      http2: DEFAULT_HTTP2,
    },
    {
      name: 'dns',
      type: 'STRICT_DNS',
      connectTimeoutMs: 5000,
      lbPolicy: 'LEAST_REQUEST',
      localities: [
        {
          priority: 1,
          weight: 5,
          endpoints: [
            { address: { address: 'db.internal', port: 5432 }, weight: 2, hostname: 'db', health: 'HEALTHY' },
          ],
        },
      ],
      loadAssignmentPolicy: DEFAULT_LOAD_ASSIGNMENT_POLICY,
      circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
      dnsRefreshRateMs: 10000,
      dnsLookupFamily: 'V4_ONLY',
      ringHash: { minimumRingSize: 1024, maximumRingSize: 8388608 },
      maglev: { tableSize: 65537 },
      leastRequest: { choiceCount: 3 },
      upstreamIdleTimeoutMs: 3600000,
      maxRequestsPerConnection: 0,
      perConnectionBufferLimitBytes: 1048576,
      upstreamProtocol: 'HTTP1',
      upstreamBindAddresses: [],
      http2: DEFAULT_HTTP2,
    },
  ],
};
