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
  // Envoy's newUri: host_redirect replaces the whole authority; otherwise the request's port stays unless
  // port_redirect is set or the scheme changes away from that port's default scheme.
  const outScheme = r.scheme ?? scheme;
  const port = r.port !== undefined ? `:${r.port}` : '';
  let host = r.host ?? authority;
  if (r.host === undefined) {
    const m = /^(\[[^\]]*\]|[^:]*)(:\d*)?$/.exec(authority);
    const oldPort = m?.[2];
    if (m && oldPort !== undefined) {
      const defaultPort =
        (scheme === 'http' && oldPort === ':80') || (scheme === 'https' && oldPort === ':443');
      if (port !== '' || (outScheme !== scheme && defaultPort)) host = m[1]!;
    }
  }
  let [path, query] = splitQuery(url);
  let keepQuery = false;
  if (r.path !== undefined) {
    // A query in path_redirect replaces the request's and is kept even with strip_query.
    const [p, q] = splitQuery(r.path);
    path = p;
    if (q) {
      query = q;
      keepQuery = true;
    }
  } else if (r.prefixRewrite !== undefined) {
    const m = route.config.match.path;
    const matched = m.kind === 'prefix' || m.kind === 'path_separated_prefix' ? m.value.length : path.length;
    path = r.prefixRewrite + path.slice(matched);
  }
  if (r.stripQuery && !keepQuery) query = '';
  return `${outScheme}://${host}${port}${path}${query}`;
}
