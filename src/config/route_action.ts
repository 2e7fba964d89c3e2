// What a matched route does: forward (RouteAction), redirect (RedirectAction) or answer (DirectResponseAction).

import { durationField } from './durations.js';
import { headerMutations, isHeaderName, NO_HEADER_MUTATIONS } from './headers.js';
import { regexMatcher } from './matchers.js';
import type {
  ForwardActionConfig,
  HashPolicyConfig,
  RedirectActionConfig,
  RetryPolicyConfig,
  WeightedClusterConfig,
} from './model.js';
import { type Ctx, Fields, quote } from './reader.js';
import { retryPolicy } from './retry.js';
import { upgradeConfigs } from './upgrade.js';

const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;

/** A RouteAction. `inherited` is the virtual host's retry policy, used when the route has none. */
export function forwardAction(
  ctx: Ctx,
  raw: unknown,
  path: string,
  inherited: RetryPolicyConfig | undefined,
): ForwardActionConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const target = f.oneOf(
    [
      'cluster',
      'cluster_header',
      'weighted_clusters',
      'cluster_specifier_plugin',
      'inline_cluster_specifier_plugin',
    ],
    { required: true },
  );
  let clusters: WeightedClusterConfig[] | undefined;
  const cluster = f.string('cluster', { nonEmpty: true });
  if (target === 'cluster' && cluster !== undefined) {
    ctx.clusterRefs.push({ name: cluster, path: f.pathOf('cluster') });
    clusters = [{ name: cluster, weight: 1, ...NO_HEADER_MUTATIONS }];
  }
  const weighted = f.object('weighted_clusters');
  if (target === 'weighted_clusters' && weighted !== undefined) clusters = weightedClusters(weighted);
  f.unsupported(['cluster_header', 'cluster_specifier_plugin', 'inline_cluster_specifier_plugin']);

  if (f.has('prefix_rewrite') && f.has('regex_rewrite')) {
    ctx.error(path, 'prefix_rewrite and regex_rewrite may not both be set');
  }
  // proto3: an empty string is the same as unset.
  const prefixRewrite = f.string('prefix_rewrite') || undefined;
  const regexRewrite = regexRewriteOf(f.object('regex_rewrite'));
  const hostRewriteLiteral = f.string('host_rewrite_literal') || undefined;
  const timeoutMs = durationField(f, 'timeout') ?? DEFAULT_ROUTE_TIMEOUT_MS;
  const idleTimeoutMs = durationField(f, 'idle_timeout') ?? 0;
  const grpc = grpcTimeoutOf(f);
  const rp = f.take('retry_policy');
  const own = rp === undefined ? undefined : retryPolicy(ctx, rp, f.pathOf('retry_policy'));
  const hashPolicy: HashPolicyConfig[] = [];
  for (const item of f.list('hash_policy')) {
    const h = hashPolicyOf(ctx, item.value, item.path);
    if (h !== undefined) hashPolicy.push(h);
  }
  const upgrades = upgradeConfigs(f, 'route');
  f.unsupported(ROUTE_ACTION_NOT_SUPPORTED, { auto_host_rewrite: false, include_vh_rate_limits: false });
  f.finish();
  if (clusters === undefined || clusters.length === 0) return undefined;
  return {
    clusters,
    totalWeight: clusters.reduce((sum, c) => sum + c.weight, 0),
    prefixRewrite,
    regexRewrite,
    hostRewriteLiteral,
    timeoutMs,
    idleTimeoutMs,
    grpcTimeoutMaxMs: grpc.maxMs,
    grpcTimeoutOffsetMs: grpc.offsetMs,
    retryPolicy: own ?? inherited,
    hashPolicy,
    upgradeConfigs: upgrades,
  };
}

const ROUTE_ACTION_NOT_SUPPORTED = [
  'cluster_not_found_response_code',
  'metadata_match',
  'path_rewrite_policy',
  'auto_host_rewrite',
  'host_rewrite_header',
  'host_rewrite_path_regex',
  'append_x_forwarded_host',
  'early_data_policy',
  'retry_policy_typed_config',
  'request_mirror_policies',
  'priority',
  'rate_limits',
  'include_vh_rate_limits',
  'cors',
  'internal_redirect_policy',
  'internal_redirect_action',
  'max_internal_redirects',
  'hedge_policy',
];

/**
 * How the grpc-timeout header bounds the route: max_stream_duration.grpc_timeout_header_max/offset, or the older
 * max_grpc_timeout/grpc_timeout_offset. Remora honours grpc-timeout even when none is set (cap 0 = none), as
 * Istio configures Envoy; Envoy alone would ignore the header then.
 */
function grpcTimeoutOf(f: Fields): { maxMs: number; offsetMs: number } {
  let maxMs = durationField(f, 'max_grpc_timeout') ?? 0;
  let offsetMs = durationField(f, 'grpc_timeout_offset') ?? 0;
  const msd = f.object('max_stream_duration');
  if (msd !== undefined) {
    const max = durationField(msd, 'grpc_timeout_header_max');
    const offset = durationField(msd, 'grpc_timeout_header_offset');
    if (max !== undefined) maxMs = max;
    if (offset !== undefined) offsetMs = offset;
    msd.unsupported(['max_stream_duration']);
    msd.finish();
  }
  return { maxMs, offsetMs };
}

function weightedClusters(f: Fields): WeightedClusterConfig[] | undefined {
  const out: WeightedClusterConfig[] = [];
  let failed = false;
  for (const item of f.list('clusters', { nonEmpty: true })) {
    const c = clusterWeight(f.ctx, item.value, item.path);
    if (c === undefined) failed = true;
    else out.push(c);
  }
  const total = f.int('total_weight');
  f.unsupported(['runtime_key_prefix', 'header_name', 'random_value_specifier'], { runtime_key_prefix: '' });
  f.finish();
  if (failed) return undefined;
  const sum = out.reduce((s, c) => s + c.weight, 0);
  if (out.length > 0 && sum === 0) {
    f.ctx.error(f.pathOf('clusters'), 'the sum of the weights must be greater than 0');
    return undefined;
  }
  if (total !== undefined && total !== sum) {
    f.error('total_weight', `must equal the sum of the cluster weights (${sum}), got ${total}`);
    return undefined;
  }
  return out;
}

function clusterWeight(ctx: Ctx, raw: unknown, path: string): WeightedClusterConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const name = f.string('name', { required: true });
  if (name !== undefined) ctx.clusterRefs.push({ name, path: f.pathOf('name') });
  const weight = f.int('weight') ?? 0;
  const mutations = headerMutations(f);
  f.unsupported(['cluster_header', 'metadata_match', 'typed_per_filter_config', 'host_rewrite_literal']);
  f.finish();
  return name === undefined ? undefined : { name, weight, ...mutations };
}

function regexRewriteOf(f: Fields | undefined): ForwardActionConfig['regexRewrite'] {
  if (f === undefined) return undefined;
  const p = f.take('pattern');
  if (p === undefined) f.error('pattern', 'missing required field');
  const pattern = p === undefined ? undefined : regexMatcher(f.ctx, p, f.pathOf('pattern'));
  const substitution = f.string('substitution') ?? '';
  f.finish();
  return pattern === undefined ? undefined : { pattern, substitution };
}

const HASH_POLICIES = ['header', 'cookie', 'connection_properties', 'query_parameter', 'filter_state'];

function hashPolicyOf(ctx: Ctx, raw: unknown, path: string): HashPolicyConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const which = f.oneOf(HASH_POLICIES, { required: true });
  const terminal = f.bool('terminal') ?? false;
  const header = f.object('header');
  const cookie = f.object('cookie');
  const conn = f.object('connection_properties');
  const query = f.object('query_parameter');
  f.unsupported(['filter_state']);
  f.finish();
  let out: HashPolicyConfig | undefined;
  if (which === 'header' && header !== undefined) {
    const name = header.string('header_name', { required: true });
    header.unsupported(['regex_rewrite']);
    header.finish();
    if (name !== undefined && !isHeaderName(name.toLowerCase()) && !name.startsWith(':')) {
      header.error('header_name', `invalid header name ${quote(name)}`);
    } else if (name !== undefined) {
      out = { kind: 'header', headerName: name.toLowerCase(), terminal };
    }
  } else if (which === 'cookie' && cookie !== undefined) {
    const name = cookie.string('name', { required: true });
    const ttlMs = durationField(cookie, 'ttl');
    const cookiePath = cookie.string('path');
    cookie.unsupported(['attributes']);
    cookie.finish();
    if (name !== undefined) out = { kind: 'cookie', name, ttlMs, path: cookiePath, terminal };
  } else if (which === 'connection_properties' && conn !== undefined) {
    const sourceIp = conn.bool('source_ip');
    conn.finish();
    if (sourceIp === true) out = { kind: 'source_ip', terminal };
    else conn.error('source_ip', 'must be true (the only connection property Remora hashes on)');
  } else if (which === 'query_parameter' && query !== undefined) {
    const name = query.string('name', { required: true });
    query.finish();
    if (name !== undefined) out = { kind: 'query_parameter', name, terminal };
  }
  return out;
}

const REDIRECT_CODES: Readonly<Record<string, number>> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};

export function redirectAction(ctx: Ctx, raw: unknown, path: string): RedirectActionConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  f.oneOf(['https_redirect', 'scheme_redirect']);
  f.oneOf(['path_redirect', 'prefix_rewrite', 'regex_rewrite']);
  const https = f.bool('https_redirect');
  const scheme = f.string('scheme_redirect', { nonEmpty: true });
  const host = f.string('host_redirect');
  const port = f.int('port_redirect', { max: 65535 });
  const pathRedirect = f.string('path_redirect') || undefined;
  const prefixRewrite = f.string('prefix_rewrite') || undefined;
  f.unsupported(['regex_rewrite']);
  const code = f.enumOf('response_code', Object.keys(REDIRECT_CODES));
  const stripQuery = f.bool('strip_query') ?? false;
  f.finish();
  if (scheme !== undefined && !/^[a-zA-Z][a-zA-Z0-9+.-]*$/.test(scheme)) {
    f.error('scheme_redirect', `invalid scheme ${quote(scheme)}`);
  }
  if (pathRedirect !== undefined && !pathRedirect.startsWith('/'))
    f.error('path_redirect', 'must start with "/"');
  return {
    scheme: https ? 'https' : scheme,
    host: host || undefined,
    port: port === 0 ? undefined : port,
    path: pathRedirect,
    prefixRewrite,
    responseCode: code === undefined ? 301 : (REDIRECT_CODES[code] ?? 301),
    stripQuery,
  };
}

export function directResponse(
  ctx: Ctx,
  raw: unknown,
  path: string,
  maxBodyBytes: number,
): { status: number; body: string | undefined } | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const status = f.int('status', { min: 200, max: 599, required: true });
  const source = f.object('body');
  f.finish();
  let body: string | undefined;
  if (source !== undefined) {
    const others = ['filename', 'inline_bytes', 'environment_variable', 'watched_directory'];
    body = source.string('inline_string', { required: !others.some((k) => source.has(k)) });
    source.unsupported(others);
    source.finish();
    if (body !== undefined && Buffer.byteLength(body) > maxBodyBytes) {
      source.error(
        'inline_string',
        `body is larger than ${maxBodyBytes} bytes (max_direct_response_body_size_bytes)`,
      );
      body = undefined;
    }
  }
  return status === undefined ? undefined : { status, body };
}
