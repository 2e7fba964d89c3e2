// AuthorizationPolicies -> Envoy RBAC filters for a workload's inbound side, translated as Istio translates them.

import type {
  AuthorizationPolicyObject,
  AuthzCondition,
  AuthzOperation,
  AuthzRule,
  AuthzSource,
} from '../model/objects.js';
import { authorizationPoliciesFor } from '../model/security.js';
import type { MeshSnapshot } from '../model/snapshot.js';
import type { ProxyGroup } from './identity.js';
import type { Json } from './names.js';

const RBAC_HTTP = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const RBAC_NETWORK = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';

/** The RBAC filters a workload's inbound chains carry: DENY first, then ALLOW (none when no policy applies). */
export interface InboundAuthz {
  /** HTTP filters, before the router. */
  readonly http: readonly Json[];
  /** Network filters, before tcp_proxy (TCP chains only: an HTTP chain is judged by its HTTP filters). */
  readonly network: readonly Json[];
}

export const NO_AUTHZ: InboundAuthz = { http: [], network: [] };

/**
 * The filters for the policies that apply to one workload. DENY policies make one RBAC filter with action DENY,
 * ALLOW policies one with action ALLOW (a request no ALLOW rule matches is denied — also when the ALLOW policies
 * have no rule at all: that is Istio's deny-all). Each rule is a policy named `ns[<ns>]-policy[<name>]-rule[<i>]`.
 * On TCP chains, as in Istio, an ALLOW rule that needs HTTP (methods, paths, hosts, headers) never matches, and a
 * DENY rule is applied without its HTTP-only parts (denying more rather than less).
 */
export function inboundAuthz(policies: readonly AuthorizationPolicyObject[]): InboundAuthz {
  if (policies.length === 0) return NO_AUTHZ;
  const http: Json[] = [];
  const network: Json[] = [];
  for (const action of ['DENY', 'ALLOW'] as const) {
    const chosen = policies.filter((p) => p.action === action);
    if (chosen.length === 0) continue;
    const httpPolicies: Record<string, Json> = {};
    const tcpPolicies: Record<string, Json> = {};
    for (const p of chosen)
      p.rules.forEach((rule, i) => {
        const name = `ns[${p.meta.namespace}]-policy[${p.meta.name}]-rule[${i}]`;
        httpPolicies[name] = rulePolicy(rule, 'http');
        const tcp = tcpRule(rule, action);
        if (tcp !== undefined) tcpPolicies[name] = rulePolicy(tcp, 'tcp');
      });
    http.push({
      name: 'envoy.filters.http.rbac',
      typed_config: { '@type': RBAC_HTTP, rules: rbacRules(action, httpPolicies) },
    });
    network.push({
      name: 'envoy.filters.network.rbac',
      typed_config: {
        '@type': RBAC_NETWORK,
        stat_prefix: 'tcp.',
        rules: rbacRules(action, tcpPolicies),
      },
    });
  }
  return { http, network };
}

/** The filters of the policies that apply to the group's workloads (its namespace and labels). */
export function authzFor(snapshot: MeshSnapshot, proxy: ProxyGroup): InboundAuthz {
  return inboundAuthz(
    authorizationPoliciesFor(snapshot.authorizationPolicies, proxy.namespace, proxy.labels),
  );
}

/** Written as protobuf's JSON writes it (ALLOW, the enum's zero, and an empty map left out), so it reads back equal. */
function rbacRules(action: 'ALLOW' | 'DENY', policies: Record<string, Json>): Json {
  return {
    ...(action === 'DENY' && { action }),
    ...(Object.keys(policies).length > 0 && { policies }),
  };
}

const HTTP_ONLY_CONDITION = /^request\./;

function httpOnly(op: AuthzOperation): boolean {
  return [op.hosts, op.notHosts, op.methods, op.notMethods, op.paths, op.notPaths].some(
    (v) => v !== undefined,
  );
}

/** The rule as it applies to a TCP connection; undefined when it can never match one. */
function tcpRule(rule: AuthzRule, action: 'ALLOW' | 'DENY'): AuthzRule | undefined {
  const needsHttp = rule.to.some(httpOnly) || rule.when.some((c) => HTTP_ONLY_CONDITION.test(c.key));
  if (!needsHttp) return rule;
  if (action === 'ALLOW') return undefined;
  return {
    from: rule.from,
    to: rule.to.map((op) => ({ ports: op.ports, notPorts: op.notPorts })),
    when: rule.when.filter((c) => !HTTP_ONLY_CONDITION.test(c.key)),
  };
}

/** RBAC Policy: permissions (what is asked) and principals (who asks), each a list any of which may match. */
function rulePolicy(rule: AuthzRule, kind: 'http' | 'tcp'): Json {
  const perms: Json[] = [];
  const ids: Json[] = [];
  if (rule.to.length > 0)
    perms.push(
      or(
        rule.to.map((op) => operation(op, kind)),
        'permission',
      ),
    );
  if (rule.from.length > 0) ids.push(or(rule.from.map(source), 'principal'));
  for (const c of rule.when) {
    const m = condition(c);
    if (m.side === 'permission') perms.push(m.rule);
    else ids.push(m.rule);
  }
  return {
    permissions: [and(perms, 'permission')],
    principals: [and(ids, 'principal')],
  };
}

type Side = 'permission' | 'principal';

function any(): Json {
  return { any: true };
}

function and(rules: Json[], side: Side): Json {
  if (rules.length === 0) return any();
  if (rules.length === 1) return rules[0]!;
  return side === 'permission' ? { and_rules: { rules } } : { and_ids: { ids: rules } };
}

function or(rules: Json[], side: Side): Json {
  if (rules.length === 1) return rules[0]!;
  return side === 'permission' ? { or_rules: { rules } } : { or_ids: { ids: rules } };
}

function not(rule: Json, side: Side): Json {
  return side === 'permission' ? { not_rule: rule } : { not_id: rule };
}

/** Values (OR) and not-values (none may match), ANDed; undefined when neither constrains. */
function field(
  side: Side,
  values: readonly string[] | undefined,
  notValues: readonly string[] | undefined,
  one: (v: string) => Json,
): Json | undefined {
  const parts: Json[] = [];
  if (values !== undefined) parts.push(or(values.map(one), side));
  if (notValues !== undefined) parts.push(not(or(notValues.map(one), side), side));
  return parts.length === 0 ? undefined : and(parts, side);
}

/** Istio's string match: `*` any (present), `prefix*`, `*suffix`, else exact. */
function stringMatch(v: string, opts: { ignoreCase?: boolean; prefix?: string } = {}): Json {
  const pre = opts.prefix ?? '';
  const ic = opts.ignoreCase ? { ignore_case: true } : {};
  if (v === '*') return { safe_regex: { regex: '.+' } };
  if (v.endsWith('*')) return { prefix: pre + v.slice(0, -1), ...ic };
  if (v.startsWith('*')) return { suffix: v.slice(1), ...ic };
  return { exact: pre + v, ...ic };
}

function cidrRange(v: string): Json {
  const slash = v.indexOf('/');
  const ip = slash < 0 ? v : v.slice(0, slash);
  const len = slash < 0 ? (ip.includes(':') ? 128 : 32) : Number(v.slice(slash + 1));
  return { address_prefix: ip, prefix_len: len };
}

function principalName(v: string): Json {
  if (v === '*') return { authenticated: { principal_name: { safe_regex: { regex: '.+' } } } };
  // Istio's principals omit the scheme: `cluster.local/ns/default/sa/web` is `spiffe://cluster.local/ns/...`.
  if (v.startsWith('*')) return { authenticated: { principal_name: { suffix: v.slice(1) } } };
  return { authenticated: { principal_name: stringMatch(v, { prefix: 'spiffe://' }) } };
}

function namespacePrincipal(v: string): Json {
  const ns = v === '*' ? '[^/]+' : escapeRegex(v).replace(/^\\\*|\\\*$/g, '[^/]*');
  return { authenticated: { principal_name: { safe_regex: { regex: `spiffe://[^/]+/ns/${ns}/sa/.+` } } } };
}

function escapeRegex(v: string): string {
  return v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function header(name: string, v: string, ignoreCase = false): Json {
  return { header: { name, string_match: stringMatch(v, { ignoreCase }) } };
}

function source(s: AuthzSource): Json {
  const parts = [
    field('principal', s.principals, s.notPrincipals, principalName),
    field('principal', s.namespaces, s.notNamespaces, namespacePrincipal),
    field('principal', s.ipBlocks, s.notIpBlocks, (v) => ({ direct_remote_ip: cidrRange(v) })),
    field('principal', s.remoteIpBlocks, s.notRemoteIpBlocks, (v) => ({ remote_ip: cidrRange(v) })),
  ].filter((p): p is Json => p !== undefined);
  return and(parts, 'principal');
}

function path(v: string): Json {
  return { url_path: { path: stringMatch(v) } };
}

function operation(op: AuthzOperation, kind: 'http' | 'tcp'): Json {
  const parts = [
    field('permission', op.ports, op.notPorts, (v) => ({ destination_port: Number(v) })),
    ...(kind === 'http'
      ? [
          field('permission', op.hosts, op.notHosts, (v) => header(':authority', v, true)),
          field('permission', op.methods, op.notMethods, (v) => header(':method', v)),
          field('permission', op.paths, op.notPaths, path),
        ]
      : []),
  ].filter((p): p is Json => p !== undefined);
  return and(parts, 'permission');
}

/** A `when` condition: on the request (a permission) or on who sends it (a principal). */
function condition(c: AuthzCondition): { side: Side; rule: Json } {
  const h = /^request\.headers\[(.+)\]$/.exec(c.key);
  const perm = (one: (v: string) => Json) => ({
    side: 'permission' as const,
    rule: field('permission', c.values, c.notValues, one)!,
  });
  const id = (one: (v: string) => Json) => ({
    side: 'principal' as const,
    rule: field('principal', c.values, c.notValues, one)!,
  });
  if (h !== null) return perm((v) => header(h[1]!.toLowerCase(), v));
  switch (c.key) {
    case 'source.ip':
      return id((v) => ({ direct_remote_ip: cidrRange(v) }));
    case 'remote.ip':
      return id((v) => ({ remote_ip: cidrRange(v) }));
    case 'source.namespace':
      return id(namespacePrincipal);
    case 'source.principal':
      return id(principalName);
    case 'destination.ip':
      return perm((v) => ({ destination_ip: cidrRange(v) }));
    case 'destination.port':
      return perm((v) => ({ destination_port: Number(v) }));
    case 'connection.sni':
      return perm((v) => ({ requested_server_name: stringMatch(v) }));
    case 'request.method':
      return perm((v) => header(':method', v));
    default:
      // The manifest reader admits no other key.
      throw new Error(`unexpected AuthorizationPolicy condition key ${c.key}`);
  }
}
