// Cluster: an upstream service — discovery type, load balancing, circuit breakers, connection settings.

import { adsConfigSource } from './config_source.js';
import { durationField } from './durations.js';
import { loadAssignment } from './endpoints.js';
import { HTTP1_OPTIONS } from './hcm.js';
import { DEFAULT_HTTP2, http2Options } from './http2.js';
import { DEFAULT_LOAD_ASSIGNMENT_POLICY } from './load_assignment_policy.js';
import type {
  CircuitBreakerThresholds,
  ClusterConfig,
  DnsLookupFamily,
  EdsClusterConfig,
  Http2Options,
  LbPolicy,
  OriginalDstClusterConfig,
} from './model.js';
import { originalDstCluster, rejectOriginalDstFields } from './original_dst_cluster.js';
import { Ctx, Fields, fieldPath, isPlainObject, quote, relativePath, typeOf } from './reader.js';
import type { ValidationResult } from './result.js';
import { upstreamTransportSocket } from './tls.js';
import { transportSocketMatches } from './transport_socket_matches.js';
import { openAny, TYPE_URLS, wrongType } from './typed_config.js';
import { upstreamBindAddresses } from './upstream_bind.js';

const HOUR_MS = 3_600_000;
const DEFAULT_BUFFER_LIMIT_BYTES = 1024 * 1024;
const LB_POLICIES: readonly LbPolicy[] = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'];
const DNS_FAMILIES: readonly DnsLookupFamily[] = ['AUTO', 'V4_ONLY', 'V6_ONLY', 'V4_PREFERRED', 'ALL'];
const MAX_RING_SIZE = 8_388_608;

export const DEFAULT_THRESHOLDS: CircuitBreakerThresholds = {
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
};

/** A Cluster resource (e.g. from CDS). */
export function translateCluster(raw: unknown, path: string): ValidationResult<ClusterConfig> {
  const ctx = new Ctx();
  const value = cluster(ctx, raw, path);
  return ctx.failed || value === undefined ? { ok: false, errors: ctx.errors() } : { ok: true, value };
}

export function cluster(ctx: Ctx, raw: unknown, path: string): ClusterConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const name = f.string('name', { required: true });
  const type =
    f.enumOf('type', ['STATIC', 'STRICT_DNS', 'ORIGINAL_DST', 'EDS'] as const, ['LOGICAL_DNS']) ?? 'STATIC';
  const connectTimeoutMs = durationField(f, 'connect_timeout', { positive: true }) ?? 5000;
  const lbPolicy = lbPolicyOf(f, type);
  const la = f.take('load_assignment');
  if (la !== undefined && type === 'ORIGINAL_DST') {
    f.error(
      'load_assignment',
      'an ORIGINAL_DST cluster has no configured endpoints: its hosts come from connections',
    );
  }
  if (la !== undefined && type === 'EDS') {
    f.error('load_assignment', 'an EDS cluster has no configured endpoints: its hosts come from EDS');
  }
  const assigned =
    la === undefined || type === 'ORIGINAL_DST' || type === 'EDS'
      ? { localities: [], policy: DEFAULT_LOAD_ASSIGNMENT_POLICY }
      : loadAssignment(ctx, la, f.pathOf('load_assignment'), type);
  const eds = edsClusterConfig(f, type, name);
  let originalDst: OriginalDstClusterConfig | undefined;
  if (type === 'ORIGINAL_DST') originalDst = originalDstCluster(f);
  else rejectOriginalDstFields(f);
  const bindAddresses = upstreamBindAddresses(f);
  const circuitBreakers = circuitBreakersOf(f.object('circuit_breakers'));
  const dnsRefreshRateMs = durationField(f, 'dns_refresh_rate', { positive: true }) ?? 5000;
  const dnsLookupFamily = f.enumOf('dns_lookup_family', DNS_FAMILIES) ?? 'AUTO';
  const ringHash = ringHashConfig(f.object('ring_hash_lb_config'));
  const maglev = maglevConfig(f.object('maglev_lb_config'));
  const leastRequest = leastRequestConfig(f.object('least_request_lb_config'));
  const common = upstreamHttpOptions(f.object('common_http_protocol_options'));
  const legacyMaxRequests = f.int('max_requests_per_connection');
  if (legacyMaxRequests !== undefined && common.maxRequestsPerConnection !== undefined) {
    f.error(
      'max_requests_per_connection',
      'set only common_http_protocol_options.max_requests_per_connection',
    );
  }
  const perConnectionBufferLimitBytes =
    f.int('per_connection_buffer_limit_bytes') ?? DEFAULT_BUFFER_LIMIT_BYTES;
  const protocol = upstreamProtocolOf(f);
  if (protocol.common !== undefined) {
    if (f.has('common_http_protocol_options'))
      f.error(
        'common_http_protocol_options',
        'set common_http_protocol_options in typed_extension_protocol_options only (both are given)',
      );
    else Object.assign(common, protocol.common);
  }
  const tls = upstreamTransportSocket(f);
  const matches = transportSocketMatches(f);
  f.unsupported(CLUSTER_NOT_SUPPORTED, {
    close_connections_on_host_health_failure: false,
    ignore_health_on_host_removal: false,
    connection_pool_per_downstream_connection: false,
    use_tcp_for_dns_lookups: false,
    respect_dns_ttl: false,
    protocol_selection: 'USE_CONFIGURED_PROTOCOL',
  });
  f.finish();
  if (name === undefined || assigned === undefined || circuitBreakers === undefined) return undefined;
  if (type === 'EDS' && eds === undefined) return undefined;
  if (ringHash === undefined || maglev === undefined || leastRequest === undefined) return undefined;
  if (matches === undefined) return undefined;
  return {
    name,
    type,
    connectTimeoutMs,
    lbPolicy,
    localities: assigned.localities,
    loadAssignmentPolicy: assigned.policy,
    circuitBreakers,
    dnsRefreshRateMs,
    dnsLookupFamily,
    ringHash,
    maglev,
    leastRequest,
    upstreamIdleTimeoutMs: common.idleTimeoutMs,
    maxRequestsPerConnection: common.maxRequestsPerConnection ?? legacyMaxRequests ?? 0,
    perConnectionBufferLimitBytes,
    upstreamProtocol: protocol.kind,
    http2: protocol.http2,
    upstreamBindAddresses: bindAddresses,
    ...(originalDst && { originalDst }),
    ...(eds && { eds }),
    ...(tls && { tls }),
    ...(matches.length > 0 && { transportSocketMatches: matches }),
  };
}

/** eds_cluster_config: required by an EDS cluster (its endpoints come over ADS), an error on any other. */
function edsClusterConfig(
  f: Fields,
  type: ClusterConfig['type'],
  name: string | undefined,
): EdsClusterConfig | undefined {
  const e = f.object('eds_cluster_config', { required: type === 'EDS' });
  if (e === undefined) return undefined;
  if (type !== 'EDS') {
    f.error('eds_cluster_config', 'only an EDS cluster takes eds_cluster_config');
    return undefined;
  }
  const serviceName = e.string('service_name') || name;
  const configSource = adsConfigSource(e.object('eds_config', { required: true }));
  e.finish();
  if (serviceName === undefined || configSource === undefined) return undefined;
  return { serviceName, configSource };
}

/** An ORIGINAL_DST cluster's load balancer is the cluster itself (CLUSTER_PROVIDED); no other cluster has one. */
function lbPolicyOf(f: Fields, type: ClusterConfig['type']): ClusterConfig['lbPolicy'] {
  if (type !== 'ORIGINAL_DST')
    return (
      f.enumOf('lb_policy', LB_POLICIES, ['CLUSTER_PROVIDED', 'LOAD_BALANCING_POLICY_CONFIG']) ??
      'ROUND_ROBIN'
    );
  const p = f.enumOf('lb_policy', [...LB_POLICIES, 'CLUSTER_PROVIDED'] as const);
  if (p !== undefined && p !== 'CLUSTER_PROVIDED' && p !== 'ROUND_ROBIN') {
    f.error(
      'lb_policy',
      `${quote(p)} is not valid for an ORIGINAL_DST cluster: only CLUSTER_PROVIDED (the host is where the connection was going)`,
    );
  }
  return 'CLUSTER_PROVIDED';
}

interface UpstreamProtocol {
  kind: ClusterConfig['upstreamProtocol'];
  http2: Http2Options;
  common: ReturnType<typeof upstreamHttpOptions> | undefined;
}

/**
 * The protocol toward the hosts: typed_extension_protocol_options' HttpProtocolOptions (explicit_http_config or
 * use_downstream_protocol_config), or the deprecated cluster-level http2_protocol_options.
 */
function upstreamProtocolOf(f: Fields): UpstreamProtocol {
  const out: UpstreamProtocol = { kind: 'HTTP1', http2: DEFAULT_HTTP2, common: undefined };
  const legacy = f.object('http2_protocol_options');
  if (legacy !== undefined) {
    out.kind = 'HTTP2';
    out.http2 = http2Options(legacy);
  }
  const raw = f.take('typed_extension_protocol_options');
  if (raw === undefined) return out;
  const path = f.pathOf('typed_extension_protocol_options');
  if (!isPlainObject(raw)) {
    f.ctx.error(path, `expected an object (a map of extension name to typed config), got ${typeOf(raw)}`);
    return out;
  }
  for (const [key, value] of Object.entries(raw)) {
    const any = Fields.of(f.ctx, value, fieldPath(path, key));
    const tc = any && openAny(any);
    if (tc === undefined) continue;
    if (tc.typeUrl !== TYPE_URLS.upstreamHttpProtocolOptions) {
      wrongType(tc, 'envoy.extensions.upstreams.', 'protocol options');
      continue;
    }
    if (legacy !== undefined) {
      f.error(
        'http2_protocol_options',
        'set the protocol in typed_extension_protocol_options only (both are given)',
      );
    }
    const o = tc.fields;
    const which = o.oneOf(['explicit_http_config', 'use_downstream_protocol_config', 'auto_config'], {
      required: true,
    });
    out.common = upstreamHttpOptions(o.object('common_http_protocol_options'));
    o.unsupported([
      'upstream_http_protocol_options',
      'http_filters',
      'header_validation_config',
      'auto_config',
    ]);
    if (which === 'explicit_http_config') {
      const e = o.object('explicit_http_config')!;
      const chosen = e.oneOf(['http_protocol_options', 'http2_protocol_options', 'http3_protocol_options'], {
        required: true,
      });
      http1OptionsAccepted(e.object('http_protocol_options'));
      const h2 = e.object('http2_protocol_options');
      e.unsupported(['http3_protocol_options']);
      e.finish();
      if (chosen === 'http2_protocol_options') {
        out.kind = 'HTTP2';
        out.http2 = http2Options(h2);
      } else out.kind = 'HTTP1';
    } else if (which === 'use_downstream_protocol_config') {
      const d = o.object('use_downstream_protocol_config')!;
      http1OptionsAccepted(d.object('http_protocol_options'));
      out.http2 = http2Options(d.object('http2_protocol_options'));
      d.unsupported(['http3_protocol_options']);
      d.finish();
      out.kind = 'DOWNSTREAM';
    }
    o.finish();
  }
  return out;
}

/** Upstream Http1ProtocolOptions: only the defaults are accepted (nothing in it changes Remora's HTTP/1.1 client). */
function http1OptionsAccepted(f: Fields | undefined): void {
  if (f === undefined) return;
  f.unsupported(['accept_http_10', 'default_host_for_http_10', ...HTTP1_OPTIONS], {
    enable_trailers: false,
    accept_http_10: false,
    allow_absolute_url: false,
  });
  f.finish();
}

const CLUSTER_NOT_SUPPORTED = [
  'respect_dns_ttl',
  'alt_stat_name',
  'cluster_type',
  'health_checks',
  'upstream_http_protocol_options',
  'http_protocol_options',
  'dns_jitter',
  'dns_failure_refresh_rate',
  'dns_resolvers',
  'use_tcp_for_dns_lookups',
  'dns_resolution_config',
  'typed_dns_resolver_config',
  'wait_for_warm_on_init',
  'outlier_detection',
  'lb_subset_config',
  'round_robin_lb_config',
  'common_lb_config',
  'metadata',
  'protocol_selection',
  'upstream_connection_options',
  'close_connections_on_host_health_failure',
  'ignore_health_on_host_removal',
  'filters',
  'load_balancing_policy',
  'lrs_server',
  'lrs_report_endpoint_metrics',
  'track_timeout_budgets',
  'upstream_config',
  'track_cluster_stats',
  'preconnect_policy',
  'connection_pool_per_downstream_connection',
  'hosts',
];

function circuitBreakersOf(f: Fields | undefined): CircuitBreakerThresholds | undefined {
  if (f === undefined) return DEFAULT_THRESHOLDS;
  let result: CircuitBreakerThresholds | undefined = DEFAULT_THRESHOLDS;
  const seen = new Set<string>();
  for (const item of f.list('thresholds')) {
    const t = Fields.of(f.ctx, item.value, item.path);
    if (t === undefined) continue;
    const priority = t.enumOf('priority', ['DEFAULT', 'HIGH'] as const) ?? 'DEFAULT';
    const parsed: CircuitBreakerThresholds = {
      maxConnections: t.int('max_connections') ?? DEFAULT_THRESHOLDS.maxConnections,
      maxPendingRequests: t.int('max_pending_requests') ?? DEFAULT_THRESHOLDS.maxPendingRequests,
      maxRequests: t.int('max_requests') ?? DEFAULT_THRESHOLDS.maxRequests,
      maxRetries: t.int('max_retries') ?? DEFAULT_THRESHOLDS.maxRetries,
    };
    t.unsupported(['retry_budget', 'track_remaining', 'max_connection_pools'], { track_remaining: false });
    t.finish();
    if (seen.has(priority)) t.error('priority', `duplicate thresholds for priority ${priority}`);
    seen.add(priority);
    // The model holds the DEFAULT priority's thresholds; HIGH is validated but has no effect yet.
    if (priority === 'DEFAULT') result = parsed;
  }
  f.unsupported(['per_host_thresholds']);
  f.finish();
  return result;
}

function ringHashConfig(f: Fields | undefined): ClusterConfig['ringHash'] | undefined {
  if (f === undefined) return { minimumRingSize: 1024, maximumRingSize: MAX_RING_SIZE };
  const min = f.int('minimum_ring_size', { min: 1, max: MAX_RING_SIZE }) ?? 1024;
  const max = f.int('maximum_ring_size', { min: 1, max: MAX_RING_SIZE }) ?? MAX_RING_SIZE;
  // XX_HASH is the default and the hash Remora uses; MURMUR_HASH_2 is not implemented.
  f.enumOf('hash_function', ['XX_HASH'], ['MURMUR_HASH_2']);
  f.finish();
  if (min > max) {
    f.error('minimum_ring_size', `must not exceed maximum_ring_size (${max})`);
    return undefined;
  }
  return { minimumRingSize: min, maximumRingSize: max };
}

function maglevConfig(f: Fields | undefined): ClusterConfig['maglev'] | undefined {
  if (f === undefined) return { tableSize: 65537 };
  const size = f.int('table_size', { min: 1, max: 5_000_010 });
  f.finish();
  if (size === undefined) return f.has('table_size') ? undefined : { tableSize: 65537 };
  if (!isPrime(size)) {
    f.error('table_size', `must be a prime number, got ${size}`);
    return undefined;
  }
  return { tableSize: size };
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

function leastRequestConfig(f: Fields | undefined): ClusterConfig['leastRequest'] | undefined {
  if (f === undefined) return { choiceCount: 2 };
  const choiceCount = f.int('choice_count', { min: 2 }) ?? 2;
  f.unsupported(['active_request_bias', 'slow_start_config', 'locality_lb_config', 'selection_method']);
  f.finish();
  return { choiceCount };
}

function upstreamHttpOptions(f: Fields | undefined): {
  idleTimeoutMs: number;
  maxRequestsPerConnection: number | undefined;
} {
  if (f === undefined) return { idleTimeoutMs: HOUR_MS, maxRequestsPerConnection: undefined };
  const idleTimeoutMs = durationField(f, 'idle_timeout') ?? HOUR_MS;
  const maxRequestsPerConnection = f.int('max_requests_per_connection');
  f.unsupported([
    'max_connection_duration',
    'max_headers_count',
    'max_response_headers_kb',
    'max_stream_duration',
    'headers_with_underscores_action',
  ]);
  f.finish();
  return { idleTimeoutMs, maxRequestsPerConnection };
}

/** Cluster names must be unique; the duplicate is reported at the later one. */
export function checkClusterNames(ctx: Ctx, clusters: readonly { name: string; path: string }[]): void {
  const seen = new Map<string, string>();
  for (const c of clusters) {
    const other = seen.get(c.name);
    if (other !== undefined)
      ctx.error(
        `${c.path}.name`,
        `duplicate cluster name ${quote(c.name)} (also ${relativePath(other, c.path)})`,
      );
    else seen.set(c.name, c.path);
  }
}
