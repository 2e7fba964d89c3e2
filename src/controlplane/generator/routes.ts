// Routes of one service on one port: its VirtualService's HTTP routes (matches, weighted destinations with subsets,
// retries, timeout, rewrite) translated to Envoy routes, then the default route to the service.

import type {
  HeaderMatch,
  HttpMatch,
  HttpRetry,
  HttpRoute,
  LoadBalancer,
  RouteDestination,
  StringMatch,
} from '../model/objects.js';
import type { MeshSnapshot, Service } from '../model/snapshot.js';
import { durationJson, proxiedPorts } from './clusters.js';
import { type Json, outboundClusterName } from './names.js';
import { destinationRuleFor, virtualServiceFor } from './scope.js';

/** Istio's retry policy for routes that set none: two retries of requests that never reached the application. */
export const DEFAULT_RETRY_ON = [
  'connect-failure',
  'refused-stream',
  'unavailable',
  'cancelled',
  'retriable-status-codes',
];
export const DEFAULT_RETRY_ATTEMPTS = 2;
export const DEFAULT_RETRIABLE_STATUS_CODES = [503];

/** A route with no timeout of its own has none (Istio's rule): streams and long calls are not cut at 15 s. */
const NO_TIMEOUT = '0s';

interface RouteContext {
  readonly snapshot: MeshSnapshot;
  /** The proxy's namespace: which policies it sees. */
  readonly namespace: string;
  /** The port the request arrived on. */
  readonly port: number;
}

/**
 * The routes of `service` for requests on `port`. With a VirtualService, its HTTP routes in order (a route whose
 * matches all name another `port` is left out), then the default route unless the last route already takes every
 * request: a request no route matches goes to the service, as it would without a VirtualService.
 */
export function serviceRoutes(
  snapshot: MeshSnapshot,
  service: Service,
  port: number,
  namespace: string,
): Json[] {
  const ctx: RouteContext = { snapshot, namespace, port };
  const vs = virtualServiceFor(snapshot, service.hostname, namespace);
  const out: Json[] = [];
  vs?.http.forEach((r, i) => {
    const matches =
      r.match.length === 0 ? [undefined] : r.match.filter((m) => m.port === undefined || m.port === port);
    const name = r.name ?? `${vs.meta.namespace}/${vs.meta.name}.http[${i}]`;
    for (const m of matches) {
      const action = routeAction(ctx, r, m);
      if (action !== undefined) out.push({ name, match: routeMatch(m), route: action });
    }
  });
  const last = out[out.length - 1];
  if (last === undefined || !isCatchAll(last.match as Json)) {
    out.push({ name: 'default', match: { prefix: '/' }, route: defaultAction(ctx, service) });
  }
  return out;
}

/** The route to the whole service on `port`, with Istio's default retries. */
function defaultAction(ctx: RouteContext, service: Service): Json {
  return {
    cluster: outboundClusterName(ctx.port, undefined, service.hostname),
    timeout: NO_TIMEOUT,
    retry_policy: retryPolicy(undefined),
    ...hashPolicy(ctx, service.hostname, undefined),
  };
}

function isCatchAll(match: Json): boolean {
  return Object.keys(match).length === 1 && match.prefix === '/';
}

function routeMatch(m: HttpMatch | undefined): Json {
  const out: Json = {};
  const uri = m?.uri;
  if (uri === undefined) out.prefix = '/';
  else if (uri.kind === 'exact') out.path = uri.value;
  else if (uri.kind === 'prefix') out.prefix = uri.value;
  else out.safe_regex = { regex: uri.value };
  if (m === undefined) return out;
  if (m.ignoreUriCase) out.case_sensitive = false;
  const headers: Json[] = [];
  if (m.method !== undefined) headers.push(headerMatcher({ name: ':method', match: m.method }));
  if (m.authority !== undefined) headers.push(headerMatcher({ name: ':authority', match: m.authority }));
  for (const h of m.headers) headers.push(headerMatcher(h));
  if (headers.length > 0) out.headers = headers;
  if (m.queryParams.length > 0) out.query_parameters = m.queryParams.map(headerMatcher);
  return out;
}

/** A header (or query parameter) matcher: a StringMatcher, or presence when Istio's match is empty. */
function headerMatcher(h: HeaderMatch): Json {
  const sm = h.match === undefined ? undefined : stringMatcher(h.match);
  return sm === undefined ? { name: h.name, present_match: true } : { name: h.name, string_match: sm };
}

function stringMatcher(m: StringMatch): Json | undefined {
  switch (m.kind) {
    case 'exact':
      return { exact: m.value };
    // An empty prefix matches any value: the same as presence (Envoy refuses an empty prefix).
    case 'prefix':
      return m.value === '' ? undefined : { prefix: m.value };
    default:
      return { safe_regex: { regex: m.value } };
  }
}

function routeAction(ctx: RouteContext, r: HttpRoute, m: HttpMatch | undefined): Json | undefined {
  const weights = new Map<string, number>();
  const single = r.route.length === 1;
  for (const d of r.route) {
    // Weights are relative; a destination weighted 0 takes no traffic (with a single one, its weight is ignored).
    const w = single ? 1 : (d.weight ?? 0);
    if (w <= 0) continue;
    const name = destinationCluster(ctx, d);
    weights.set(name, (weights.get(name) ?? 0) + w);
  }
  if (weights.size === 0) return undefined;
  const action: Json =
    weights.size === 1
      ? { cluster: [...weights.keys()][0] }
      : { weighted_clusters: { clusters: [...weights].map(([name, weight]) => ({ name, weight })) } };
  const rw = r.rewrite;
  if (rw?.uri !== undefined && rw.uri !== '') {
    // A prefix (or no) match has its prefix replaced; an exact or regex match has the whole path replaced.
    if (m?.uri?.kind === 'regex') action.regex_rewrite = { pattern: { regex: '^.*$' }, substitution: rw.uri };
    else action.prefix_rewrite = rw.uri;
  }
  if (rw?.authority !== undefined) action.host_rewrite_literal = rw.authority;
  action.timeout = durationJson(r.timeoutMs) ?? NO_TIMEOUT;
  const retry = retryPolicy(r.retries);
  if (retry !== undefined) action.retry_policy = retry;
  const first = r.route.find((d) => single || (d.weight ?? 0) > 0);
  if (first !== undefined)
    Object.assign(action, hashPolicy(ctx, first.destination.fqdn, first.destination.subset));
  return action;
}

/**
 * `outbound|<port>|<subset>|<host>` of a destination. Its port: the one given; else the request's port when the
 * service has it; else the service's only port; else the request's port (a cluster that does not exist: 503).
 */
function destinationCluster(ctx: RouteContext, d: RouteDestination): string {
  const dest = d.destination;
  let port = dest.port;
  if (port === undefined) {
    const svc = ctx.snapshot.service(dest.fqdn);
    const ports = svc === undefined ? [] : proxiedPorts(svc).map((p) => p.port);
    port = ports.includes(ctx.port) ? ctx.port : ports.length === 1 ? ports[0]! : ctx.port;
  }
  return outboundClusterName(port, dest.subset, dest.fqdn);
}

/** A VirtualService's `retries` (attempts 0: none); Istio's default policy when the route has none. */
function retryPolicy(r: HttpRetry | undefined): Json | undefined {
  if (r === undefined) {
    return {
      retry_on: DEFAULT_RETRY_ON.join(','),
      num_retries: DEFAULT_RETRY_ATTEMPTS,
      retriable_status_codes: DEFAULT_RETRIABLE_STATUS_CODES,
    };
  }
  if (r.attempts <= 0) return undefined;
  const codes = r.retryOn === undefined ? DEFAULT_RETRIABLE_STATUS_CODES : r.retriableStatusCodes;
  return {
    retry_on: (r.retryOn ?? DEFAULT_RETRY_ON).join(','),
    num_retries: r.attempts,
    ...(r.perTryTimeoutMs !== undefined && { per_try_timeout: durationJson(r.perTryTimeoutMs) }),
    ...(codes.length > 0 && { retriable_status_codes: codes }),
    ...(r.backoffMs !== undefined && { retry_back_off: { base_interval: durationJson(r.backoffMs) } }),
  };
}

/** A consistent-hash load balancer hashes on what the route says: Istio puts the hash policy on the route. */
function hashPolicy(ctx: RouteContext, host: string, subset: string | undefined): Json {
  const svc = ctx.snapshot.service(host);
  if (svc === undefined) return {};
  const dr = destinationRuleFor(ctx.snapshot, svc, ctx.namespace);
  const sub = subset === undefined ? undefined : dr?.subsets.find((s) => s.name === subset);
  const lb: LoadBalancer | undefined = sub?.trafficPolicy?.loadBalancer ?? dr?.trafficPolicy?.loadBalancer;
  if (lb?.kind !== 'consistentHash') return {};
  const h = lb.hash;
  let policy: Json;
  if (h.kind === 'httpHeaderName') policy = { header: { header_name: h.name } };
  else if (h.kind === 'useSourceIp') policy = { connection_properties: { source_ip: true } };
  else
    policy = {
      cookie: {
        name: h.name,
        ...(h.path !== undefined && { path: h.path }),
        ...(h.ttlMs !== undefined && { ttl: durationJson(h.ttlMs) }),
      },
    };
  return { hash_policy: [policy] };
}
