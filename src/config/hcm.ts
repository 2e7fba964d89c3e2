// The HTTP connection manager network filter (HttpConnectionManager): codec, timeouts, HTTP filters, routes.

import { accessLogs } from './access_log.js';
import { alpnFilter } from './alpn_filter.js';
import { forwardClientCertConfig } from './client_cert_details.js';
import { adsConfigSource } from './config_source.js';
import { durationField } from './durations.js';
import { http2Options } from './http2.js';
import { istioStats as istioStatsConfig } from './istio_stats.js';
import type { HcmConfig, HttpFilterConfig, RdsConfig, ServerHeaderTransformation } from './model.js';
import { httpRbac } from './rbac.js';
import { type Ctx, Fields, quote, relativePath } from './reader.js';
import { routeConfiguration } from './route.js';
import { TYPE_URLS, typedConfig, wrongType } from './typed_config.js';
import { upgradeConfigs } from './upgrade.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/** Names under which Envoy finds the router when a filter has no typed_config. */
const ROUTER_NAMES = ['envoy.filters.http.router', 'envoy.router'];

/** Translates the fields of an HttpConnectionManager typed_config. */
export function httpConnectionManager(f: Fields): HcmConfig | undefined {
  const ctx = f.ctx;
  const statPrefix = f.string('stat_prefix', { required: true });
  const codecType = f.enumOf('codec_type', ['AUTO', 'HTTP1', 'HTTP2'] as const, ['HTTP3']) ?? 'AUTO';
  const http2 = http2Options(f.object('http2_protocol_options'));
  f.oneOf(['route_config', 'rds', 'scoped_routes'], { required: true });
  const rc = f.take('route_config');
  const routeConfig =
    rc === undefined
      ? undefined
      : routeConfiguration(ctx, rc, f.pathOf('route_config'), { checkClusters: true });
  const rds = rdsConfig(f.object('rds'));
  f.unsupported(['scoped_routes']);
  const httpFilters = httpFilterChain(f);
  const common = commonHttpProtocolOptions(f.object('common_http_protocol_options'));
  const h1 = f.object('http_protocol_options');
  let acceptHttp10 = false;
  let defaultHostForHttp10: string | undefined;
  if (h1 !== undefined) {
    acceptHttp10 = h1.bool('accept_http_10') ?? false;
    defaultHostForHttp10 = h1.string('default_host_for_http_10') || undefined;
    h1.unsupported(HTTP1_OPTIONS, {
      allow_absolute_url: false,
      enable_trailers: false,
    });
    h1.finish();
  }
  const hcm = {
    statPrefix,
    codecType,
    http2,
    routeConfig,
    httpFilters,
    accessLogs: accessLogs(f),
    requestHeadersTimeoutMs: durationField(f, 'request_headers_timeout') ?? 0,
    streamIdleTimeoutMs: durationField(f, 'stream_idle_timeout') ?? 5 * MINUTE_MS,
    requestTimeoutMs: durationField(f, 'request_timeout') ?? 0,
    idleTimeoutMs: common.idleTimeoutMs,
    maxRequestHeadersKb: f.int('max_request_headers_kb', { min: 1, max: 8192 }) ?? 60,
    maxHeadersCount: common.maxHeadersCount,
    useRemoteAddress: f.bool('use_remote_address') ?? false,
    skipXffAppend: f.bool('skip_xff_append') ?? false,
    generateRequestId: f.bool('generate_request_id') ?? true,
    preserveExternalRequestId: f.bool('preserve_external_request_id') ?? false,
    serverName: f.string('server_name') || 'remora',
    serverHeaderTransformation:
      f.enumOf<ServerHeaderTransformation>('server_header_transformation', [
        'OVERWRITE',
        'APPEND_IF_ABSENT',
        'PASS_THROUGH',
      ]) ?? 'OVERWRITE',
    drainTimeoutMs: durationField(f, 'drain_timeout') ?? 5000,
    delayedCloseTimeoutMs: durationField(f, 'delayed_close_timeout') ?? 1000,
    acceptHttp10,
    defaultHostForHttp10,
    upgradeConfigs: upgradeConfigs(f, 'hcm'),
    forwardClientCert: forwardClientCertConfig(f),
  };
  f.unsupported(HCM_NOT_SUPPORTED, HCM_DEFAULTS);
  f.finish();
  const { statPrefix: sp, routeConfig: route, httpFilters: filters } = hcm;
  if (sp === undefined || (route === undefined && rds === undefined) || filters === undefined)
    return undefined;
  return rds === undefined
    ? { ...hcm, statPrefix: sp, httpFilters: filters }
    : { ...hcm, statPrefix: sp, httpFilters: filters, rds };
}

/** rds: the route table by name, from RDS over ADS. */
function rdsConfig(f: Fields | undefined): RdsConfig | undefined {
  if (f === undefined) return undefined;
  const routeConfigName = f.string('route_config_name', { required: true });
  const configSource = adsConfigSource(f.object('config_source', { required: true }));
  f.finish();
  if (routeConfigName === undefined || configSource === undefined) return undefined;
  return { routeConfigName, configSource };
}

/**
 * http_filters: RBAC filters and at most one istio.alpn and one istio.stats, in order, then the router, which must be
 * present and last.
 */
function httpFilterChain(f: Fields): HttpFilterConfig[] | undefined {
  const items = f.list('http_filters');
  const out: HttpFilterConfig[] = [];
  let failed = false;
  // Filters that may appear once, and where the last one was.
  const onceAt = new Map<string, string>();
  const once = (name: string, path: string): void => {
    const at = onceAt.get(name);
    if (at !== undefined) {
      f.ctx.error(path, `only one ${name} filter may be set (also ${relativePath(at, path)})`);
      failed = true;
    }
    onceAt.set(name, path);
  };
  items.forEach((item, i) => {
    const filter = httpFilter(f.ctx, item.value, item.path);
    if (filter === undefined) {
      failed = true;
      return;
    }
    // Istio's filter sets its ALPN once per request (read-only filter state): a second one would fail each request.
    if (filter.alpn !== undefined) once('istio.alpn', item.path);
    // A second one would count every request twice.
    if (filter.istioStats !== undefined) once('istio.stats', item.path);
    const isRouter = filter.typeUrl === TYPE_URLS.router;
    if (isRouter && i !== items.length - 1) {
      f.ctx.error(item.path, 'the router filter must be the last HTTP filter');
      failed = true;
    } else if (!isRouter && i === items.length - 1) {
      f.ctx.error(
        item.path,
        `the last HTTP filter must be the router (${TYPE_URLS.router}): it is what sends requests on`,
      );
      failed = true;
    }
    out.push(filter);
  });
  if (items.length === 0) {
    f.ctx.error(
      f.pathOf('http_filters'),
      `the router filter (${TYPE_URLS.router}) is required as the last HTTP filter`,
    );
    return undefined;
  }
  return failed ? undefined : out;
}

function httpFilter(ctx: Ctx, raw: unknown, path: string): HttpFilterConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const name = f.string('name', { required: true });
  const hasTyped = f.has('typed_config');
  const tc = typedConfig(f, 'typed_config', { required: false });
  f.unsupported(['config_discovery', 'is_optional', 'disabled'], { is_optional: false, disabled: false });
  f.finish();
  if (name === undefined) return undefined;
  if (!hasTyped) {
    if (ROUTER_NAMES.includes(name)) return { name, typeUrl: TYPE_URLS.router };
    f.error('name', `HTTP filter ${quote(name)} needs a typed_config (only the router may omit it)`);
    return undefined;
  }
  if (tc === undefined) return undefined;
  if (tc.typeUrl === TYPE_URLS.httpRbac) {
    const rbac = httpRbac(tc.fields);
    return rbac && { name, typeUrl: tc.typeUrl, rbac };
  }
  if (tc.typeUrl === TYPE_URLS.istioStats) {
    const istioStats = istioStatsConfig(tc.fields);
    return istioStats && { name, typeUrl: tc.typeUrl, istioStats };
  }
  if (tc.typeUrl === TYPE_URLS.istioAlpn) {
    const alpn = alpnFilter(tc.fields);
    return alpn && { name, typeUrl: tc.typeUrl, alpn };
  }
  if (tc.typeUrl !== TYPE_URLS.router) {
    wrongType(tc, 'envoy.extensions.filters.http.', 'HTTP filter');
    return undefined;
  }
  tc.fields.unsupported([
    'dynamic_stats',
    'start_child_span',
    'upstream_log',
    'upstream_log_options',
    'suppress_envoy_headers',
    'strict_check_headers',
    'respect_expected_rq_timeout',
    'suppress_grpc_request_failure_code_stats',
    'upstream_http_filters',
  ]);
  tc.fields.finish();
  return { name, typeUrl: tc.typeUrl };
}

function commonHttpProtocolOptions(f: Fields | undefined): {
  idleTimeoutMs: number;
  maxHeadersCount: number;
} {
  if (f === undefined) return { idleTimeoutMs: HOUR_MS, maxHeadersCount: 100 };
  const idleTimeoutMs = durationField(f, 'idle_timeout') ?? HOUR_MS;
  const maxHeadersCount = f.int('max_headers_count', { min: 1 }) ?? 100;
  f.unsupported([
    'max_connection_duration',
    'max_response_headers_kb',
    'max_stream_duration',
    'headers_with_underscores_action',
    'max_requests_per_connection',
  ]);
  f.finish();
  return { idleTimeoutMs, maxHeadersCount };
}

/** Http1ProtocolOptions fields Remora does not implement (the two HTTP/1.0 ones are read separately). */
export const HTTP1_OPTIONS = [
  'allow_absolute_url',
  'header_key_format',
  'enable_trailers',
  'allow_chunked_length',
  'override_stream_error_on_invalid_http_message',
  'send_fully_qualified_url',
  'use_balsa_parser',
  'allow_custom_methods',
  'ignore_http_11_upgrade',
];

const HCM_NOT_SUPPORTED = [
  'xff_num_trusted_hops',
  'add_user_agent',
  'tracing',
  'http3_protocol_options',
  'scheme_header_transformation',
  'access_log_flush_interval',
  'flush_access_log_on_new_request',
  'access_log_options',
  'original_ip_detection_extensions',
  'early_header_mutation_extensions',
  'internal_address_config',
  'via',
  'always_set_request_id_in_response',
  'proxy_100_continue',
  'represent_ipv4_remote_address_as_ipv4_mapped_ipv6',
  'normalize_path',
  'merge_slashes',
  'path_with_escaped_slashes_action',
  'request_id_extension',
  'local_reply_config',
  'strip_matching_host_port',
  'strip_any_host_port',
  'stream_error_on_invalid_http_message',
  'path_normalization_options',
  'strip_trailing_host_dot',
  'proxy_status_config',
  'typed_header_validation_config',
  'append_x_forwarded_port',
  'append_local_overload',
  'add_proxy_protocol_connection_state',
];

/** Values of unsupported fields that mean the same as unset, accepted so common configs load unchanged. */
const HCM_DEFAULTS: Readonly<Record<string, unknown>> = {
  add_user_agent: false,
  normalize_path: false,
  merge_slashes: false,
  always_set_request_id_in_response: false,
  proxy_100_continue: false,
  path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
  strip_matching_host_port: false,
  strip_trailing_host_dot: false,
  append_x_forwarded_port: false,
  xff_num_trusted_hops: 0,
};
