// Istio VirtualService (mesh routes over HTTP): the supported subset, everything else rejected with its path.

import { checkRegex } from '../../config/matchers.js';
import { quote } from '../../config/reader.js';
import { RETRY_ON } from '../../config/retry.js';
import { isHostPattern, resolveHost } from '../model/hosts.js';
import type {
  Destination,
  HeaderMatch,
  HttpMatch,
  HttpRetry,
  HttpRewrite,
  HttpRoute,
  Origin,
  RouteDestination,
  StringMatch,
  VirtualServiceObject,
} from '../model/objects.js';
import { durationField, exportToOf, type Metadata } from './common.js';
import { Obj } from './reader.js';

const ROUTE_NOT_YET: Readonly<Record<string, string>> = {
  redirect: 'redirect',
  directResponse: 'direct response',
  delegate: 'delegation',
  fault: 'fault injection',
  mirror: 'mirroring',
  mirrors: 'mirroring',
  mirrorPercentage: 'mirroring',
  mirrorPercent: 'mirroring',
  mirror_percent: 'mirroring',
  corsPolicy: 'CORS',
  headers: 'header manipulation',
};

const MATCH_NOT_YET: Readonly<Record<string, string>> = {
  scheme: 'matching on the scheme',
  sourceLabels: 'matching on the source workload',
  sourceNamespace: 'matching on the source namespace',
  gateways: 'per-gateway matches',
  withoutHeaders: 'matching on absent headers',
  statPrefix: 'per-route stat prefixes',
};

/** Istio's `StringMatch`: one of exact, prefix, regex (RE2 syntax, whole-string match). */
function stringMatch(
  parent: Obj,
  name: string,
  opts: { allowEmpty?: boolean } = {},
): StringMatch | undefined {
  const o = parent.object(name);
  if (o === undefined) return undefined;
  return stringMatchOf(o, opts);
}

function stringMatchOf(o: Obj, opts: { allowEmpty?: boolean } = {}): StringMatch | undefined {
  const kind = o.oneOf(['exact', 'prefix', 'regex'], { required: !opts.allowEmpty }) as
    | StringMatch['kind']
    | undefined;
  const exact = o.string('exact');
  const prefix = o.string('prefix');
  const regex = o.string('regex');
  o.finish();
  if (kind === undefined) return undefined;
  const value = kind === 'exact' ? exact : kind === 'prefix' ? prefix : regex;
  if (value === undefined) return undefined;
  if (kind === 'regex' && !checkRegex(o.ctx, value, o.pathOf('regex'))) return undefined;
  return { kind, value };
}

/** `headers` / `queryParams`: a map of name to StringMatch; an empty match means "present". */
function namedMatches(o: Obj, field: string, lowerCaseNames: boolean): HeaderMatch[] {
  const out: HeaderMatch[] = [];
  for (const e of o.entries(field)) {
    if (lowerCaseNames && (e.key !== e.key.toLowerCase() || !/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(e.key))) {
      o.ctx.error(
        e.path,
        `header names must be lower-case tokens (e.g. "x-request-id"), got ${quote(e.key)}`,
      );
      continue;
    }
    const m = Obj.of(o.ctx, e.value, e.path);
    if (m === undefined) continue;
    out.push({ name: e.key, match: stringMatchOf(m, { allowEmpty: true }) });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function httpMatch(o: Obj): HttpMatch {
  const name = o.string('name', { nonEmpty: true });
  const uri = stringMatch(o, 'uri');
  const method = stringMatch(o, 'method');
  const authority = stringMatch(o, 'authority');
  const headers = namedMatches(o, 'headers', true);
  const queryParams = namedMatches(o, 'queryParams', false);
  const ignoreUriCase = o.bool('ignoreUriCase') ?? false;
  const port = o.int('port', { min: 1, max: 65535 });
  o.notYet(Object.keys(MATCH_NOT_YET), MATCH_NOT_YET);
  o.finish();
  return { name, uri, method, authority, headers, queryParams, ignoreUriCase, port };
}

function destination(o: Obj, namespace: string): Destination | undefined {
  const host = o.string('host', { required: true });
  if (host !== undefined && (!isHostPattern(host) || host.includes('*')))
    o.error('host', `${quote(host)} is not a service host name (wildcards are not allowed in a destination)`);
  const subset = o.string('subset', { nonEmpty: true });
  let port: number | undefined;
  const p = o.object('port');
  if (p !== undefined) {
    port = p.int('number', { required: true, min: 1, max: 65535 });
    p.finish();
  }
  o.finish();
  if (host === undefined) return undefined;
  return { host, fqdn: resolveHost(host, namespace), subset, port };
}

function routeDestinations(route: Obj, namespace: string): RouteDestination[] {
  const out: RouteDestination[] = [];
  const items = route.list('route', { nonEmpty: true });
  let total = 0;
  for (const item of items) {
    const o = Obj.of(route.ctx, item.value, item.path);
    if (o === undefined) continue;
    const d = o.object('destination', { required: true });
    const dest = d && destination(d, namespace);
    const weight = o.int('weight');
    o.notYet(['headers'], { headers: 'header manipulation' });
    o.finish();
    total += weight ?? 0;
    if (dest !== undefined) out.push({ destination: dest, weight });
  }
  if (items.length > 1 && total === 0 && out.length === items.length)
    route.error(
      'route',
      "the destinations' weights are all 0 (or not given): give each the share of traffic it gets",
    );
  return out;
}

function retries(o: Obj): HttpRetry {
  const attempts = o.int('attempts') ?? 0;
  const perTryTimeoutMs = durationField(o, 'perTryTimeout', { min: 1 });
  const backoffMs = durationField(o, 'backoff', { min: 1 });
  let retryOn: string[] | undefined;
  const retriableStatusCodes: number[] = [];
  const text = o.string('retryOn');
  if (text !== undefined) {
    retryOn = [];
    for (const raw of text.split(',')) {
      const cond = raw.trim();
      if (cond === '') continue;
      if (/^[0-9]+$/.test(cond)) {
        const code = Number(cond);
        if (code < 100 || code > 599) o.error('retryOn', `status code ${cond} is not between 100 and 599`);
        else retriableStatusCodes.push(code);
      } else if ((RETRY_ON as readonly string[]).includes(cond)) {
        retryOn.push(cond);
      } else {
        o.error(
          'retryOn',
          `unknown retry condition ${quote(cond)} (expected HTTP status codes or any of ${RETRY_ON.join(', ')})`,
        );
      }
    }
    // As Istio does: status codes alone imply the condition that makes Envoy look at them.
    if (retriableStatusCodes.length > 0 && !retryOn.includes('retriable-status-codes'))
      retryOn.push('retriable-status-codes');
  }
  o.notYet(['retryRemoteLocalities', 'retryIgnorePreviousHosts'], {
    retryRemoteLocalities: 'retrying in other localities',
    retryIgnorePreviousHosts: 'avoiding previously tried hosts',
  });
  o.finish();
  return { attempts, perTryTimeoutMs, retryOn, retriableStatusCodes, backoffMs };
}

function rewrite(o: Obj): HttpRewrite {
  const uri = o.string('uri');
  const authority = o.string('authority', { nonEmpty: true });
  o.notYet(['uriRegexRewrite'], { uriRegexRewrite: 'regex rewrites' });
  o.finish();
  return { uri, authority };
}

function httpRoute(o: Obj, namespace: string): HttpRoute {
  const name = o.string('name', { nonEmpty: true });
  const match: HttpMatch[] = [];
  for (const item of o.list('match')) {
    const m = Obj.of(o.ctx, item.value, item.path);
    if (m !== undefined) match.push(httpMatch(m));
  }
  const route = routeDestinations(o, namespace);
  const r = o.object('retries');
  const timeoutMs = durationField(o, 'timeout');
  const w = o.object('rewrite');
  o.notYet(Object.keys(ROUTE_NOT_YET), ROUTE_NOT_YET);
  o.finish();
  return {
    name,
    match,
    route,
    retries: r && retries(r),
    timeoutMs,
    rewrite: w && rewrite(w),
  };
}

export function virtualServiceOf(top: Obj, md: Metadata, origin: Origin): VirtualServiceObject | undefined {
  const spec = top.object('spec', { required: true });
  top.ignore(['status']);
  if (spec === undefined) return undefined;
  const ns = md.meta.namespace;
  const hosts: { host: string; fqdn: string }[] = [];
  for (const item of spec.strings('hosts', { nonEmpty: true })) {
    const h = item.value as string;
    if (!isHostPattern(h)) spec.ctx.error(item.path, `${quote(h)} is not a host name, "*.suffix" or "*"`);
    else hosts.push({ host: h, fqdn: resolveHost(h, ns) });
  }
  for (const item of spec.strings('gateways')) {
    if (item.value !== 'mesh')
      spec.ctx.error(
        item.path,
        `gateway ${quote(item.value as string)}: routes for gateways are not supported by Remora yet (only "mesh")`,
      );
  }
  const exportTo = exportToOf(spec);
  const http: HttpRoute[] = [];
  for (const item of spec.list('http')) {
    const o = Obj.of(spec.ctx, item.value, item.path);
    if (o !== undefined) http.push(httpRoute(o, ns));
  }
  spec.notYet(['tcp', 'tls'], { tcp: 'TCP routes', tls: 'TLS routes' });
  spec.finish();
  return { kind: 'VirtualService', meta: md.meta, origin, hosts, exportTo, http };
}
