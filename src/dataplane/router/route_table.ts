// A RouteConfiguration compiled once per config: virtual-host lookup by domain, then first matching route.

import type {
  ForwardActionConfig,
  RouteActionConfig,
  RouteConfig,
  RouteEntryConfig,
  VirtualHostConfig,
} from '../../config/model.js';
import { HeaderMutator } from '../http/header_mutation.js';
import { compileHeaderMatcher, compileQueryMatcher, compileRegex, type HeaderLookup } from './matchers.js';

/** What route matching reads of a request. */
export interface RouteRequest {
  readonly method: string;
  /** Path with query, as received. */
  readonly path: string;
  readonly authority: string;
  readonly scheme: string;
  readonly header: HeaderLookup;
}

export interface CompiledRoute {
  readonly name: string;
  readonly config: RouteEntryConfig;
  readonly action: RouteActionConfig;
  /** Header mutations to apply, most specific first: route, virtual host, route configuration. */
  readonly mutators: readonly HeaderMutator[];
  readonly regexRewrite: { readonly re: RegExp; readonly substitution: string } | undefined;
  matches(req: RouteRequest, pathOnly: string, query: () => URLSearchParams): boolean;
}

export interface CompiledVirtualHost {
  readonly name: string;
  readonly config: VirtualHostConfig;
  readonly routes: readonly CompiledRoute[];
}

export interface RouteMatch {
  readonly vhost: CompiledVirtualHost;
  readonly route: CompiledRoute;
}

export class RouteTable {
  private readonly exact = new Map<string, CompiledVirtualHost>();
  /** `*.example.com` style: the suffix after `*`, longest first. */
  private readonly suffixes: [string, CompiledVirtualHost][] = [];
  /** `example.*` style: the prefix before `*`, longest first. */
  private readonly prefixes: [string, CompiledVirtualHost][] = [];
  private catchAll: CompiledVirtualHost | undefined;

  constructor(readonly config: RouteConfig) {
    const global = new HeaderMutator(config);
    for (const vh of config.virtualHosts) {
      const vhMut = new HeaderMutator(vh);
      const compiled: CompiledVirtualHost = {
        name: vh.name,
        config: vh,
        routes: vh.routes.map((r) => compileRoute(r, [vhMut, global])),
      };
      for (const d of vh.domains) {
        const domain = d.toLowerCase();
        if (domain === '*') this.catchAll = compiled;
        else if (domain.startsWith('*')) this.suffixes.push([domain.slice(1), compiled]);
        else if (domain.endsWith('*')) this.prefixes.push([domain.slice(0, -1), compiled]);
        else this.exact.set(domain, compiled);
      }
    }
    this.suffixes.sort((a, b) => b[0].length - a[0].length);
    this.prefixes.sort((a, b) => b[0].length - a[0].length);
  }

  /**
   * Envoy's order: exact, longest suffix wildcard, longest prefix wildcard, then `*`. A host with a port that
   * matches no domain as written is tried again without its port before falling back to `*`.
   */
  virtualHost(authority: string): CompiledVirtualHost | undefined {
    const host = authority.toLowerCase();
    const found = this.lookup(host);
    if (found) return found;
    const noPort = stripPort(host);
    if (noPort !== host) {
      const again = this.lookup(noPort);
      if (again) return again;
    }
    return this.catchAll;
  }

  private lookup(host: string): CompiledVirtualHost | undefined {
    const e = this.exact.get(host);
    if (e) return e;
    for (const [suffix, vh] of this.suffixes)
      if (host.length > suffix.length && host.endsWith(suffix)) return vh;
    for (const [prefix, vh] of this.prefixes)
      if (host.length > prefix.length && host.startsWith(prefix)) return vh;
    return undefined;
  }

  route(req: RouteRequest): RouteMatch | undefined {
    const vhost = this.virtualHost(req.authority);
    if (!vhost) return undefined;
    const q = req.path.indexOf('?');
    const pathOnly = q < 0 ? req.path : req.path.slice(0, q);
    let params: URLSearchParams | undefined;
    const query = () => {
      params ??= new URLSearchParams(q < 0 ? '' : req.path.slice(q + 1));
      return params;
    };
    for (const route of vhost.routes) if (route.matches(req, pathOnly, query)) return { vhost, route };
    return undefined;
  }
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(0, end + 1) : host;
  }
  const i = host.lastIndexOf(':');
  return i > 0 && host.indexOf(':') === i ? host.slice(0, i) : host;
}

function compilePath(r: RouteEntryConfig): (path: string) => boolean {
  const p = r.match.path;
  const cs = r.match.caseSensitive;
  switch (p.kind) {
    case 'prefix': {
      if (p.value === '' || p.value === '/') return p.value === '' ? () => true : (x) => x.startsWith('/');
      const want = cs ? p.value : p.value.toLowerCase();
      return cs ? (x) => x.startsWith(want) : (x) => x.toLowerCase().startsWith(want);
    }
    case 'path': {
      const want = cs ? p.value : p.value.toLowerCase();
      return cs ? (x) => x === want : (x) => x.toLowerCase() === want;
    }
    case 'safe_regex': {
      const re = compileRegex(p.regex, !cs);
      return (x) => re.test(x);
    }
    case 'path_separated_prefix': {
      const want = cs ? p.value : p.value.toLowerCase();
      return (x) => {
        const v = cs ? x : x.toLowerCase();
        return v === want || (v.startsWith(want) && v.charCodeAt(want.length) === 47) /* / */;
      };
    }
  }
}

function compileRoute(r: RouteEntryConfig, outer: HeaderMutator[]): CompiledRoute {
  const path = compilePath(r);
  const headers = r.match.headers.map(compileHeaderMatcher);
  const queries = r.match.queryParameters.map(compileQueryMatcher);
  const own = new HeaderMutator(r);
  const mutators = [own, ...outer].filter((m) => !m.empty);
  const fwd: ForwardActionConfig | undefined = r.action.kind === 'route' ? r.action.route : undefined;
  const regexRewrite = fwd?.regexRewrite
    ? {
        re: new RegExp(fwd.regexRewrite.pattern, 'g'),
        substitution: toJsSubstitution(fwd.regexRewrite.substitution),
      }
    : undefined;
  return {
    name: r.name,
    config: r,
    action: r.action,
    mutators,
    regexRewrite,
    matches(req, pathOnly, query) {
      if (!path(r.match.path.kind === 'prefix' ? req.path : pathOnly)) return false;
      for (const h of headers) {
        if (!h((name) => pseudo(req, name))) return false;
      }
      if (queries.length > 0) {
        const q = query();
        for (const m of queries) if (!m(q)) return false;
      }
      return true;
    },
  };
}

function pseudo(req: RouteRequest, name: string): string | undefined {
  if (name.charCodeAt(0) !== 58 /* : */) return req.header(name);
  switch (name) {
    case ':method':
      return req.method;
    case ':path':
      return req.path;
    case ':authority':
      return req.authority;
    case ':scheme':
      return req.scheme;
    default:
      return undefined;
  }
}

/** RE2 substitutions write groups as \1; JavaScript's replace wants $1. */
function toJsSubstitution(s: string): string {
  return s.replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1');
}
