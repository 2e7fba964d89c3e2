// RBAC (envoy.config.rbac.v3.RBAC) and the two filters that enforce it: envoy.filters.http.rbac and
// envoy.filters.network.rbac. Policies are sorted here into the order Envoy evaluates them in.

import { cidrRange } from './filter_chain_match.js';
import { headerMatcher, stringMatcher } from './matchers.js';
import type {
  HttpRbacConfig,
  NetworkRbacConfig,
  RbacPermissionConfig,
  RbacPolicyConfig,
  RbacPrincipalConfig,
  RbacRulesConfig,
  StringMatcherConfig,
} from './model.js';
import { type Ctx, Fields, isPlainObject, quote, typeOf } from './reader.js';

/** Deeper and/or/not nesting is refused: evaluation recurses, and remote config must not exhaust the stack. */
export const MAX_RBAC_DEPTH = 64;

const MATCHER_API =
  'the matcher API (xds.type.matcher.v3.Matcher) is not supported by Remora: write the policies in rules';

/** The typed_config of envoy.filters.http.rbac. */
export function httpRbac(f: Fields): HttpRbacConfig | undefined {
  const rules = rulesField(f, 'rules');
  const shadowRules = rulesField(f, 'shadow_rules');
  const rulesStatPrefix = f.string('rules_stat_prefix') ?? '';
  const shadowRulesStatPrefix = f.string('shadow_rules_stat_prefix') ?? '';
  const trackPerRuleStats = f.bool('track_per_rule_stats') ?? false;
  rejectMatchers(f);
  f.finish();
  if (rules === FAILED || shadowRules === FAILED) return undefined;
  return { rules, shadowRules, rulesStatPrefix, shadowRulesStatPrefix, trackPerRuleStats };
}

/** The typed_config of envoy.filters.network.rbac; `name` is the filter's name in the chain. */
export function networkRbac(f: Fields, name: string): NetworkRbacConfig | undefined {
  const statPrefix = f.string('stat_prefix', { required: true });
  const rules = rulesField(f, 'rules');
  const shadowRules = rulesField(f, 'shadow_rules');
  const shadowRulesStatPrefix = f.string('shadow_rules_stat_prefix') ?? '';
  const enforcementType =
    f.enumOf('enforcement_type', ['ONE_TIME_ON_FIRST_BYTE', 'CONTINUOUS'] as const) ??
    'ONE_TIME_ON_FIRST_BYTE';
  rejectMatchers(f);
  // delay_deny (newer Envoy): a denied connection is held open for a while before it is closed.
  f.unsupported(['delay_deny']);
  f.finish();
  if (statPrefix === undefined || rules === FAILED || shadowRules === FAILED) return undefined;
  return { name, statPrefix, rules, shadowRules, shadowRulesStatPrefix, enforcementType };
}

function rejectMatchers(f: Fields): void {
  for (const name of ['matcher', 'shadow_matcher']) {
    if (f.has(name)) f.error(name, MATCHER_API);
    f.take(name);
  }
}

const FAILED = Symbol('failed');

/** An RBAC message field: undefined when absent (nothing enforced), FAILED when it has errors. */
function rulesField(f: Fields, name: string): RbacRulesConfig | undefined | typeof FAILED {
  if (!f.has(name)) {
    f.take(name);
    return undefined;
  }
  const r = f.object(name);
  return (r && rbacRules(r)) ?? FAILED;
}

/** envoy.config.rbac.v3.RBAC. `{}` is valid: ALLOW with no policy, which denies everything. */
export function rbacRules(f: Fields): RbacRulesConfig | undefined {
  const action = f.enumOf('action', ['ALLOW', 'DENY', 'LOG'] as const) ?? 'ALLOW';
  if (action === 'LOG') {
    f.error(
      'action',
      'LOG is not supported by Remora: it only sets the access_log_hint dynamic metadata, which Remora has no access log filter to read (ALLOW and DENY are supported)',
    );
  }
  const policies = policyMap(f);
  // Envoy marks them not implemented: they would promise audit logs that are never written.
  f.unsupported(['audit_logging_options']);
  f.finish();
  if (policies === undefined || action === 'LOG') return undefined;
  return { action, policies };
}

function policyMap(f: Fields): RbacPolicyConfig[] | undefined {
  const raw = f.take('policies');
  if (raw === undefined) return [];
  const path = f.pathOf('policies');
  if (!isPlainObject(raw)) {
    f.ctx.error(path, `expected an object (a map of policy name to Policy), got ${typeOf(raw)}`);
    return undefined;
  }
  const out: RbacPolicyConfig[] = [];
  let failed = false;
  for (const [name, value] of Object.entries(raw)) {
    const p = policy(f.ctx, value, `${path}[${quote(name)}]`, name);
    if (p === undefined) failed = true;
    else out.push(p);
  }
  // Envoy keeps them in a std::map: evaluated by name, byte-wise; the first that matches decides.
  out.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  return failed ? undefined : out;
}

function policy(ctx: Ctx, raw: unknown, path: string, name: string): RbacPolicyConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const permissions = listOf(f, 'permissions', (v, p) => permission(ctx, v, p, 1));
  const principals = listOf(f, 'principals', (v, p) => principal(ctx, v, p, 1));
  for (const cel of ['condition', 'checked_condition']) {
    if (f.has(cel)) f.error(cel, 'CEL conditions are not supported by Remora');
    f.take(cel);
  }
  f.finish();
  if (permissions === undefined || principals === undefined) return undefined;
  return { name, permissions, principals };
}

/** A repeated field that needs at least one item; undefined when it or any item has an error. */
function listOf<T>(
  f: Fields,
  name: string,
  item: (value: unknown, path: string) => T | undefined,
): T[] | undefined {
  const items = f.list(name, { nonEmpty: true });
  if (items.length === 0) return undefined;
  const out: T[] = [];
  for (const i of items) {
    const v = item(i.value, i.path);
    if (v === undefined) return drain(items.slice(out.length + 1), item);
    out.push(v);
  }
  return out;
}

/** Translates the items after a failed one too, so that every error is reported. */
function drain<T>(
  rest: { value: unknown; path: string }[],
  item: (v: unknown, p: string) => T | undefined,
): undefined {
  for (const i of rest) item(i.value, i.path);
  return undefined;
}

function tooDeep(ctx: Ctx, path: string, depth: number): boolean {
  if (depth <= MAX_RBAC_DEPTH) return false;
  ctx.error(path, `nested deeper than ${MAX_RBAC_DEPTH} levels`);
  return true;
}

const PERMISSION_RULES = [
  'and_rules',
  'or_rules',
  'any',
  'header',
  'url_path',
  'destination_ip',
  'destination_port',
  'destination_port_range',
  'metadata',
  'not_rule',
  'requested_server_name',
  'matcher',
  'uri_template',
] as const;

/** A Permission: exactly one rule of its oneof. */
export function permission(
  ctx: Ctx,
  raw: unknown,
  path: string,
  depth: number,
): RbacPermissionConfig | undefined {
  if (tooDeep(ctx, path, depth)) return undefined;
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const which = f.oneOf(PERMISSION_RULES, { required: true });
  let out: RbacPermissionConfig | undefined;
  switch (which) {
    case 'and_rules':
    case 'or_rules': {
      const rules = set(f, which, 'rules', (v, p) => permission(ctx, v, p, depth + 1));
      out = rules && { kind: which === 'and_rules' ? 'and' : 'or', rules };
      break;
    }
    case 'any':
    case 'header':
    case 'url_path':
    case 'metadata':
      out = sharedRule(ctx, f, which);
      break;
    case 'destination_ip': {
      const range = cidrRange(ctx, { value: f.take(which), path: f.pathOf(which) });
      out = range && { kind: 'destination_ip', range };
      break;
    }
    case 'destination_port': {
      const port = f.int(which, { max: 65535 });
      out = port === undefined ? undefined : { kind: 'destination_port', port };
      break;
    }
    case 'destination_port_range':
      out = portRange(f);
      break;
    case 'not_rule': {
      const rule = permission(ctx, f.take(which), f.pathOf(which), depth + 1);
      out = rule && { kind: 'not', rule };
      break;
    }
    case 'requested_server_name': {
      const matcher = stringMatcher(ctx, f.take(which), f.pathOf(which));
      out = matcher && { kind: 'requested_server_name', matcher };
      break;
    }
    case 'matcher':
    case 'uri_template':
      f.error(which, 'this permission extension is not supported by Remora');
      break;
  }
  for (const k of PERMISSION_RULES) f.take(k);
  f.finish();
  return out;
}

const PRINCIPAL_IDS = [
  'and_ids',
  'or_ids',
  'any',
  'authenticated',
  'source_ip',
  'direct_remote_ip',
  'remote_ip',
  'header',
  'url_path',
  'metadata',
  'filter_state',
  'not_id',
] as const;

/** A Principal: exactly one identifier of its oneof. */
export function principal(
  ctx: Ctx,
  raw: unknown,
  path: string,
  depth: number,
): RbacPrincipalConfig | undefined {
  if (tooDeep(ctx, path, depth)) return undefined;
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const which = f.oneOf(PRINCIPAL_IDS, { required: true });
  let out: RbacPrincipalConfig | undefined;
  switch (which) {
    case 'and_ids':
    case 'or_ids': {
      const ids = set(f, which, 'ids', (v, p) => principal(ctx, v, p, depth + 1));
      out = ids && { kind: which === 'and_ids' ? 'and' : 'or', ids };
      break;
    }
    case 'any':
    case 'header':
    case 'url_path':
    case 'metadata':
      out = sharedRule(ctx, f, which);
      break;
    case 'authenticated':
      out = authenticated(f.object(which));
      break;
    case 'source_ip':
    case 'direct_remote_ip':
    case 'remote_ip': {
      const range = cidrRange(ctx, { value: f.take(which), path: f.pathOf(which) });
      // source_ip is the connection's peer: the direct remote address, as no PROXY protocol filter exists here.
      out = range && { kind: which === 'remote_ip' ? 'remote_ip' : 'direct_remote_ip', range };
      break;
    }
    case 'not_id': {
      const id = principal(ctx, f.take(which), f.pathOf(which), depth + 1);
      out = id && { kind: 'not', id };
      break;
    }
    case 'filter_state':
      f.error(which, 'filter state matching is not supported by Remora (it keeps no filter state)');
      break;
  }
  for (const k of PRINCIPAL_IDS) f.take(k);
  f.finish();
  return out;
}

/** The rules a Permission and a Principal share, which translate the same way. */
type SharedRule = Extract<RbacPermissionConfig, { readonly kind: 'any' | 'header' | 'url_path' }>;

function sharedRule(
  ctx: Ctx,
  f: Fields,
  which: 'any' | 'header' | 'url_path' | 'metadata',
): SharedRule | undefined {
  switch (which) {
    case 'any':
      return any(f);
    case 'header': {
      const header = headerMatcher(ctx, f.take(which), f.pathOf(which));
      return header && { kind: 'header', header };
    }
    case 'url_path': {
      const p = pathMatcher(f);
      return p && { kind: 'url_path', path: p };
    }
    case 'metadata':
      f.error(which, 'dynamic metadata matching is not supported by Remora (it keeps no dynamic metadata)');
      return undefined;
  }
}

/** Permission.Set / Principal.Set: `{rules: [...]}` or `{ids: [...]}`, at least one. */
function set<T>(
  f: Fields,
  name: string,
  field: string,
  item: (value: unknown, path: string) => T | undefined,
): T[] | undefined {
  const s = f.object(name);
  if (s === undefined) return undefined;
  const out = listOf(s, field, item);
  s.finish();
  return out;
}

/** `any: true`; proto validation allows no other value. */
function any(f: Fields): { readonly kind: 'any' } | undefined {
  const v = f.bool('any');
  if (v === false) f.error('any', 'must be true (leave the rule out instead)');
  return v === true ? { kind: 'any' } : undefined;
}

/** PathMatcher: `{path: StringMatcher}`. */
function pathMatcher(f: Fields): StringMatcherConfig | undefined {
  const p = f.object('url_path');
  if (p === undefined) return undefined;
  const has = p.has('path');
  const matcher = has ? stringMatcher(p.ctx, p.take('path'), p.pathOf('path')) : undefined;
  if (!has) p.error('path', 'missing required field');
  p.finish();
  return matcher;
}

/** Int32Range of destination ports, [start, end), as Envoy checks it: both within 0..65536, start < end. */
function portRange(f: Fields): RbacPermissionConfig | undefined {
  const r = f.object('destination_port_range');
  if (r === undefined) return undefined;
  const start = r.int('start', { max: 65536 }) ?? (r.has('start') ? undefined : 0);
  const end = r.int('end', { max: 65536 }) ?? (r.has('end') ? undefined : 0);
  r.finish();
  if (start === undefined || end === undefined) return undefined;
  if (start >= end) {
    r.ctx.error(r.path, `empty range: start (${start}) must be less than end (${end})`);
    return undefined;
  }
  return { kind: 'destination_port_range', start, end };
}

function authenticated(f: Fields | undefined): RbacPrincipalConfig | undefined {
  if (f === undefined) return undefined;
  const has = f.has('principal_name');
  const principalName = has
    ? stringMatcher(f.ctx, f.take('principal_name'), f.pathOf('principal_name'))
    : undefined;
  f.finish();
  if (has && principalName === undefined) return undefined;
  return { kind: 'authenticated', principalName };
}
