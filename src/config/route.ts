// RouteConfiguration, VirtualHost, Route and RouteMatch: the HTTP route table.

import { headerMutations } from './headers.js';
import { headerMatcher, queryParameterMatcher, regexMatcher } from './matchers.js';
import type {
  HeaderMatcherConfig,
  PathMatchConfig,
  QueryParameterMatcherConfig,
  RetryPolicyConfig,
  RouteActionConfig,
  RouteConfig,
  RouteEntryConfig,
  RouteMatchConfig,
  VirtualHostConfig,
} from './model.js';
import { Ctx, Fields, quote, relativePath } from './reader.js';
import type { ValidationResult } from './result.js';
import { retryPolicy } from './retry.js';
import { directResponse, forwardAction, redirectAction } from './route_action.js';

/** Envoy's default for max_direct_response_body_size_bytes. */
const DEFAULT_MAX_DIRECT_RESPONSE_BODY = 4096;

/** A RouteConfiguration resource (e.g. from RDS). Cluster names are not checked: the clusters may come later. */
export function translateRouteConfiguration(raw: unknown, path: string): ValidationResult<RouteConfig> {
  const ctx = new Ctx();
  const value = routeConfiguration(ctx, raw, path, { checkClusters: false });
  return ctx.failed || value === undefined ? { ok: false, errors: ctx.errors() } : { ok: true, value };
}

/**
 * A RouteConfiguration. With `checkClusters` (a static route table), the clusters it names are recorded in
 * `ctx.clusterRefs` for the bootstrap to check, unless `validate_clusters` is false.
 */
export function routeConfiguration(
  ctx: Ctx,
  raw: unknown,
  path: string,
  opts: { checkClusters: boolean },
): RouteConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const refsBefore = ctx.clusterRefs.length;
  const name = f.string('name') ?? '';
  const maxBody = f.int('max_direct_response_body_size_bytes') ?? DEFAULT_MAX_DIRECT_RESPONSE_BODY;
  const virtualHosts: VirtualHostConfig[] = [];
  const names = new Map<string, string>();
  const domains = new Map<string, string>();
  for (const item of f.list('virtual_hosts')) {
    const vh = virtualHost(ctx, item.value, item.path, maxBody);
    if (vh === undefined) continue;
    virtualHosts.push(vh);
    const sameName = names.get(vh.name);
    if (sameName !== undefined)
      ctx.error(
        `${item.path}.name`,
        `duplicate virtual host name ${quote(vh.name)} (also ${relativePath(sameName, item.path)})`,
      );
    else names.set(vh.name, item.path);
    vh.domains.forEach((d, i) => {
      const other = domains.get(d);
      if (other !== undefined)
        ctx.error(
          `${item.path}.domains[${i}]`,
          `duplicate domain ${quote(d)} (also in ${relativePath(other, item.path)})`,
        );
      else domains.set(d, item.path);
    });
  }
  const mutations = headerMutations(f);
  const validate = f.bool('validate_clusters');
  f.unsupported(
    [
      'vhds',
      'internal_only_headers',
      'most_specific_header_mutations_wins',
      'cluster_specifier_plugins',
      'request_mirror_policies',
      'ignore_port_in_host_matching',
      'ignore_path_parameters_in_path_matching',
      'typed_per_filter_config',
      'metadata',
    ],
    { most_specific_header_mutations_wins: false, ignore_port_in_host_matching: false },
  );
  f.finish();
  if (!opts.checkClusters || validate === false) ctx.clusterRefs.length = refsBefore;
  return { name, virtualHosts, ...mutations };
}

function virtualHost(ctx: Ctx, raw: unknown, path: string, maxBody: number): VirtualHostConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const name = f.string('name', { required: true });
  const domains: string[] = [];
  for (const item of f.strings('domains', { nonEmpty: true, nonEmptyItems: true })) {
    const d = domainOf(ctx, item.value as string, item.path);
    if (d !== undefined) domains.push(d);
  }
  const rp = f.take('retry_policy');
  const retry = rp === undefined ? undefined : retryPolicy(ctx, rp, f.pathOf('retry_policy'));
  const routes: RouteEntryConfig[] = [];
  for (const item of f.list('routes')) {
    const r = route(ctx, item.value, item.path, retry, maxBody);
    if (r !== undefined) routes.push(r);
  }
  const mutations = headerMutations(f);
  f.unsupported(
    [
      'matcher',
      'require_tls',
      'virtual_clusters',
      'rate_limits',
      'cors',
      'typed_per_filter_config',
      'include_request_attempt_count',
      'include_attempt_count_in_response',
      'retry_policy_typed_config',
      'hedge_policy',
      'include_is_timeout_retry_header',
      'per_request_buffer_limit_bytes',
      'request_mirror_policies',
      'metadata',
      'request_body_buffer_limit',
    ],
    { require_tls: 'NONE', include_request_attempt_count: false, include_attempt_count_in_response: false },
  );
  f.finish();
  if (name === undefined) return undefined;
  return { name, domains, routes, retryPolicy: retry, ...mutations };
}

/** A virtual host domain, lower-cased; a `*` wildcard may only be the whole domain, its first or last char. */
function domainOf(ctx: Ctx, domain: string, path: string): string | undefined {
  const d = domain.toLowerCase();
  const star = d.indexOf('*');
  if (star >= 0 && (d.indexOf('*', star + 1) >= 0 || (star !== 0 && star !== d.length - 1))) {
    ctx.error(
      path,
      `invalid domain ${quote(domain)}: a wildcard "*" may only be the whole domain, its first or last character`,
    );
    return undefined;
  }
  if (/[\s\0-\x1f\x7f/]/.test(d)) {
    ctx.error(path, `invalid domain ${quote(domain)}`);
    return undefined;
  }
  return d;
}

function route(
  ctx: Ctx,
  raw: unknown,
  path: string,
  vhRetry: RetryPolicyConfig | undefined,
  maxBody: number,
): RouteEntryConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const name = f.string('name') ?? '';
  const m = f.take('match');
  if (m === undefined) f.error('match', 'missing required field');
  const match = m === undefined ? undefined : routeMatch(ctx, m, f.pathOf('match'));
  const which = f.oneOf(['route', 'redirect', 'direct_response', 'filter_action', 'non_forwarding_action'], {
    required: true,
  });
  const action = actionOf(f, which, vhRetry, maxBody);
  const mutations = headerMutations(f);
  f.unsupported([
    'filter_action',
    'non_forwarding_action',
    'metadata',
    'decorator',
    'typed_per_filter_config',
    'tracing',
    'per_request_buffer_limit_bytes',
    'stat_prefix',
    'request_body_buffer_limit',
  ]);
  f.finish();
  if (match === undefined || action === undefined) return undefined;
  return { name, match, action, ...mutations };
}

function actionOf(
  f: Fields,
  which: string | undefined,
  vhRetry: RetryPolicyConfig | undefined,
  maxBody: number,
): RouteActionConfig | undefined {
  const r = f.take('route');
  const redirect = f.take('redirect');
  const direct = f.take('direct_response');
  switch (which) {
    case 'route': {
      const route = forwardAction(f.ctx, r, f.pathOf('route'), vhRetry);
      return route && { kind: 'route', route };
    }
    case 'redirect': {
      const action = redirectAction(f.ctx, redirect, f.pathOf('redirect'));
      return action && { kind: 'redirect', redirect: action };
    }
    case 'direct_response': {
      const d = directResponse(f.ctx, direct, f.pathOf('direct_response'), maxBody);
      return d && { kind: 'direct_response', status: d.status, body: d.body };
    }
    default:
      return undefined;
  }
}

const PATH_SPECIFIERS = [
  'prefix',
  'path',
  'safe_regex',
  'path_separated_prefix',
  'connect_matcher',
  'path_match_policy',
];

function routeMatch(ctx: Ctx, raw: unknown, path: string): RouteMatchConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const which = f.oneOf(PATH_SPECIFIERS, { required: true });
  let pathMatch: PathMatchConfig | undefined;
  const prefix = f.string('prefix');
  const exact = f.string('path');
  const separated = f.string('path_separated_prefix');
  const re = f.take('safe_regex');
  if (which === 'prefix' && prefix !== undefined) pathMatch = { kind: 'prefix', value: prefix };
  else if (which === 'path' && exact !== undefined) pathMatch = { kind: 'path', value: exact };
  else if (which === 'safe_regex') {
    const regex = regexMatcher(ctx, re, f.pathOf('safe_regex'));
    if (regex !== undefined) pathMatch = { kind: 'safe_regex', regex };
  } else if (which === 'path_separated_prefix' && separated !== undefined) {
    if (/^[^?#]+[^?#/]$/.test(separated) && separated.startsWith('/')) {
      pathMatch = { kind: 'path_separated_prefix', value: separated };
    } else {
      f.error(
        'path_separated_prefix',
        `invalid value ${quote(separated)}: must start with "/", not end with "/" and contain no "?" or "#"`,
      );
    }
  }
  const caseSensitive = f.bool('case_sensitive') ?? true;
  const headers: HeaderMatcherConfig[] = [];
  for (const item of f.list('headers')) {
    const h = headerMatcher(ctx, item.value, item.path);
    if (h !== undefined) headers.push(h);
  }
  const queryParameters: QueryParameterMatcherConfig[] = [];
  for (const item of f.list('query_parameters')) {
    const q = queryParameterMatcher(ctx, item.value, item.path);
    if (q !== undefined) queryParameters.push(q);
  }
  f.unsupported([
    'connect_matcher',
    'path_match_policy',
    'runtime_fraction',
    'grpc',
    'tls_context',
    'dynamic_metadata',
    'filter_state',
  ]);
  f.finish();
  if (pathMatch === undefined) return undefined;
  return { path: pathMatch, caseSensitive, headers, queryParameters };
}
