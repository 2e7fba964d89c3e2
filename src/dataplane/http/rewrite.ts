// Path rewrites (prefix_rewrite, regex_rewrite) and redirect Location building, per Envoy's RouteAction rules.

import type { ForwardActionConfig, RedirectActionConfig } from '../../config/model.js';
import type { CompiledRoute } from '../router/route_table.js';

function splitQuery(url: string): [string, string] {
  const q = url.indexOf('?');
  return q < 0 ? [url, ''] : [url.slice(0, q), url.slice(q)];
}

/** The upstream path: the matched prefix (or whole path) swapped, or the regex substitution applied. */
export function rewritePath(route: CompiledRoute, fwd: ForwardActionConfig, url: string): string {
  if (fwd.prefixRewrite !== undefined) {
    const m = route.config.match.path;
    if (m.kind === 'prefix' || m.kind === 'path_separated_prefix')
      return fwd.prefixRewrite + url.slice(m.value.length);
    const [, query] = splitQuery(url);
    return fwd.prefixRewrite + query;
  }
  if (route.regexRewrite) {
    const [path, query] = splitQuery(url);
    route.regexRewrite.re.lastIndex = 0;
    return path.replace(route.regexRewrite.re, route.regexRewrite.substitution) + query;
  }
  return url;
}

export function buildRedirect(
  r: RedirectActionConfig,
  route: CompiledRoute,
  url: string,
  authority: string,
  scheme: string,
): string {
  const outScheme = r.scheme ?? scheme;
  let host = authority;
  let port = '';
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(authority);
  if (m) {
    host = m[1]!;
    port = m[2] ?? '';
  }
  if (r.host !== undefined) {
    const hm = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(r.host);
    host = hm ? hm[1]! : r.host;
    if (hm?.[2]) port = hm[2];
  }
  if (r.port !== undefined) port = String(r.port);
  else if (r.scheme !== undefined && r.scheme !== scheme) port = ''; // a scheme change drops the old port
  if ((outScheme === 'http' && port === '80') || (outScheme === 'https' && port === '443')) port = '';
  let [path, query] = splitQuery(url);
  if (r.path !== undefined) {
    const [p, q] = splitQuery(r.path);
    path = p;
    if (q) query = q;
  } else if (r.prefixRewrite !== undefined) {
    const m = route.config.match.path;
    const matched = m.kind === 'prefix' || m.kind === 'path_separated_prefix' ? m.value.length : path.length;
    path = r.prefixRewrite + path.slice(matched);
  }
  if (r.stripQuery) query = '';
  return `${outScheme}://${host}${port ? `:${port}` : ''}${path}${query}`;
}
