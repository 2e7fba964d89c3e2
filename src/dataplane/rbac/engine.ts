// RBAC rules compiled once per config into predicates, evaluated as Envoy's RBAC engine evaluates them.

import { type IpBytes, parseIp, prefixMatches } from '../../config/cidr.js';
import type {
  CidrRangeConfig,
  RbacPermissionConfig,
  RbacPrincipalConfig,
  RbacRulesConfig,
} from '../../config/model.js';
import type { PeerCertificate } from '../observe/stream_info.js';
import { compileHeaderMatcher, compileStringMatcher, type HeaderLookup } from '../router/matchers.js';

/** What the rules read of a connection; read once per connection (see connection_facts.ts). */
export interface RbacConnection {
  /** The connection's peer (direct_remote_ip, source_ip). */
  readonly directRemoteIp: IpBytes | undefined;
  /** Where it was going (destination_ip, destination_port): the restored original destination, else local. */
  readonly localIp: IpBytes | undefined;
  readonly localPort: number;
  /** The SNI tls_inspector read; "" when none. */
  readonly requestedServerName: string;
  /** TLS was terminated here: Envoy's `connection.ssl()`, which `authenticated` requires. */
  readonly secure: boolean;
  /** The verified client certificate; undefined without one. */
  readonly peer: PeerCertificate | undefined;
}

/** One thing to decide: a connection (network filter) or a request on one (HTTP filter). */
export interface RbacInput {
  readonly connection: RbacConnection;
  /**
   * A request header by lower-case name, several values joined with ","; also `:method`, `:path`,
   * `:authority`, `:scheme`. The network filter has no request: every header is missing.
   */
  readonly header: HeaderLookup;
  /** The request's path without query and fragment; undefined without a request. */
  urlPath(): string | undefined;
  /** The downstream address (remote_ip): the HCM's, which may come from x-forwarded-for. */
  remoteIp(): IpBytes | undefined;
}

type Predicate = (input: RbacInput) => boolean;

interface CompiledPolicy {
  readonly name: string;
  readonly permissions: readonly Predicate[];
  readonly principals: readonly Predicate[];
}

/**
 * One RBAC message (rules or shadow_rules). `match` finds the first policy, in name order, whose permissions and
 * principals both match: what Envoy reports as the effective policy.
 */
export class RbacEngine {
  readonly action: 'ALLOW' | 'DENY';
  private readonly policies: readonly CompiledPolicy[];

  constructor(config: RbacRulesConfig) {
    this.action = config.action;
    this.policies = config.policies.map((p) => ({
      name: p.name,
      permissions: p.permissions.map(compilePermission),
      principals: p.principals.map(compilePrincipal),
    }));
  }

  /** The name of the first policy that matches; undefined when none does. */
  match(input: RbacInput): string | undefined {
    for (const p of this.policies) {
      if (some(p.permissions, input) && some(p.principals, input)) return p.name;
    }
    return undefined;
  }

  /** ALLOW lets through what a policy matched; DENY what none matched. */
  allows(matched: string | undefined): boolean {
    return this.action === 'ALLOW' ? matched !== undefined : matched === undefined;
  }
}

/** How Envoy names a decision's policy in logs and response code details: "none" for no (or an unnamed) policy. */
export function policyLabel(matched: string | undefined): string {
  return matched === undefined || matched === '' ? 'none' : matched;
}

/** %RESPONSE_CODE_DETAILS% of a denial; whitespace in the name becomes "_" so access log fields stay aligned. */
export function deniedDetails(matched: string | undefined): string {
  return `rbac_access_denied_matched_policy[${policyLabel(matched).replace(/[ \t\f\v\n\r]/g, '_')}]`;
}

function some(list: readonly Predicate[], input: RbacInput): boolean {
  for (const p of list) if (p(input)) return true;
  return false;
}

function every(list: readonly Predicate[], input: RbacInput): boolean {
  for (const p of list) if (!p(input)) return false;
  return true;
}

export function compilePermission(p: RbacPermissionConfig): Predicate {
  switch (p.kind) {
    case 'any':
      return () => true;
    case 'and': {
      const rules = p.rules.map(compilePermission);
      return (i) => every(rules, i);
    }
    case 'or': {
      const rules = p.rules.map(compilePermission);
      return (i) => some(rules, i);
    }
    case 'not': {
      const rule = compilePermission(p.rule);
      return (i) => !rule(i);
    }
    case 'header': {
      const m = compileHeaderMatcher(p.header);
      return (i) => m(i.header);
    }
    case 'url_path':
      return pathPredicate(compileStringMatcher(p.path));
    case 'destination_ip': {
      const inRange = rangePredicate(p.range);
      return (i) => inRange(i.connection.localIp);
    }
    case 'destination_port': {
      const port = p.port;
      return (i) => i.connection.localPort === port;
    }
    case 'destination_port_range': {
      const { start, end } = p;
      return (i) => i.connection.localPort >= start && i.connection.localPort < end;
    }
    case 'requested_server_name': {
      const m = compileStringMatcher(p.matcher);
      return (i) => m(i.connection.requestedServerName);
    }
  }
}

export function compilePrincipal(p: RbacPrincipalConfig): Predicate {
  switch (p.kind) {
    case 'any':
      return () => true;
    case 'and': {
      const ids = p.ids.map(compilePrincipal);
      return (i) => every(ids, i);
    }
    case 'or': {
      const ids = p.ids.map(compilePrincipal);
      return (i) => some(ids, i);
    }
    case 'not': {
      const id = compilePrincipal(p.id);
      return (i) => !id(i);
    }
    case 'authenticated': {
      if (p.principalName === undefined) return (i) => i.connection.secure;
      const m = compileStringMatcher(p.principalName);
      return (i) => i.connection.secure && principalNameMatches(i.connection.peer, m);
    }
    case 'direct_remote_ip': {
      const inRange = rangePredicate(p.range);
      return (i) => inRange(i.connection.directRemoteIp);
    }
    case 'remote_ip': {
      const inRange = rangePredicate(p.range);
      return (i) => inRange(i.remoteIp());
    }
    case 'header': {
      const m = compileHeaderMatcher(p.header);
      return (i) => m(i.header);
    }
    case 'url_path':
      return pathPredicate(compileStringMatcher(p.path));
  }
}

/**
 * Envoy's order: any URI SAN, then any DNS SAN, then the subject. Without a certificate the subject is "", which a
 * matcher may still match (a TLS connection whose client sent none).
 */
function principalNameMatches(peer: PeerCertificate | undefined, m: (v: string) => boolean): boolean {
  if (peer === undefined) return m('');
  for (const uri of peer.uriSans) if (m(uri)) return true;
  for (const dns of peer.dnsSans) if (m(dns)) return true;
  return m(peer.subject);
}

/** Without a request (the network filter) there is no path, and a path rule does not match. */
function pathPredicate(m: (v: string) => boolean): Predicate {
  return (i) => {
    const path = i.urlPath();
    return path !== undefined && m(path);
  };
}

function rangePredicate(r: CidrRangeConfig): (ip: IpBytes | undefined) => boolean {
  const base = parseIp(r.addressPrefix);
  // Config validation produced the canonical text: it always parses.
  if (base === undefined) throw new Error(`invalid CIDR range in a validated config: ${r.addressPrefix}`);
  const len = r.prefixLen;
  return (ip) => ip !== undefined && ip.family === base.family && prefixMatches(ip.bytes, base.bytes, len);
}

/** The path of a request target: query and fragment cut off. */
export function pathWithoutQuery(url: string): string {
  let end = url.length;
  const q = url.indexOf('?');
  if (q >= 0) end = q;
  const h = url.indexOf('#');
  if (h >= 0 && h < end) end = h;
  return end === url.length ? url : url.slice(0, end);
}
