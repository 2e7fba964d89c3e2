// Istio security policies: PeerAuthentication (mTLS mode per namespace, workload and port) and AuthorizationPolicy.

import { isIP } from 'node:net';
import { quote } from '../../config/reader.js';
import type {
  AuthorizationPolicyObject,
  AuthzCondition,
  AuthzOperation,
  AuthzRule,
  AuthzSource,
  MtlsMode,
  Origin,
  PeerAuthenticationObject,
} from '../model/objects.js';
import { labelsOf, type Metadata } from './common.js';
import { type Item, Obj } from './reader.js';

const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;

/** The `selector` of a security policy: `matchLabels` only; undefined when absent (the whole namespace). */
function selectorOf(spec: Obj): Record<string, string> | undefined {
  const s = spec.object('selector');
  if (s === undefined) return undefined;
  const labels = labelsOf(s, 'matchLabels') ?? {};
  s.finish();
  return labels;
}

function modeOf(o: Obj): MtlsMode {
  return o.enumOf('mode', MTLS_MODES) ?? 'UNSET';
}

function mtlsModeOf(o: Obj): MtlsMode {
  const m = o.object('mtls');
  if (m === undefined) return 'UNSET';
  const mode = modeOf(m);
  m.finish();
  return mode;
}

export function peerAuthenticationOf(
  top: Obj,
  md: Metadata,
  origin: Origin,
): PeerAuthenticationObject | undefined {
  const spec = top.object('spec') ?? Obj.of(top.ctx, {}, 'spec');
  top.ignore(['status']);
  if (spec === undefined) return undefined;
  const selector = selectorOf(spec);
  const mode = mtlsModeOf(spec);
  const portLevel: Record<number, MtlsMode> = {};
  for (const e of spec.entries('portLevelMtls')) {
    const port = Number(e.key);
    if (!/^[0-9]+$/.test(e.key) || port < 1 || port > 65535) {
      spec.ctx.error(e.path, `${quote(e.key)} is not a port number (1-65535)`);
      continue;
    }
    const o = Obj.of(spec.ctx, e.value, e.path);
    if (o === undefined) continue;
    portLevel[port] = modeOf(o);
    o.finish();
  }
  if (Object.keys(portLevel).length > 0 && selector === undefined)
    spec.ctx.error(
      spec.pathOf('portLevelMtls'),
      'port-level mTLS needs a selector (Istio applies it to selected workloads only)',
    );
  spec.finish();
  return { kind: 'PeerAuthentication', meta: md.meta, origin, selector, mode, portLevel };
}

export function authorizationPolicyOf(
  top: Obj,
  md: Metadata,
  origin: Origin,
): AuthorizationPolicyObject | undefined {
  // An AuthorizationPolicy without a spec is valid: it denies every request to the namespace (ALLOW, no rule).
  const spec = top.object('spec') ?? Obj.of(top.ctx, {}, 'spec');
  top.ignore(['status']);
  if (spec === undefined) return undefined;
  const selector = selectorOf(spec);
  spec.notYet(['targetRef', 'targetRefs', 'provider'], {
    targetRef: 'policies attached to a Gateway or Service',
    targetRefs: 'policies attached to a Gateway or Service',
    provider: 'external authorization (CUSTOM)',
  });
  const action = spec.enumOf('action', ['ALLOW', 'DENY'] as const, ['AUDIT', 'CUSTOM']) ?? 'ALLOW';
  const rules: AuthzRule[] = [];
  for (const item of spec.list('rules')) {
    const rule = ruleOf(spec, item);
    if (rule !== undefined) rules.push(rule);
  }
  spec.finish();
  return { kind: 'AuthorizationPolicy', meta: md.meta, origin, selector, action, rules };
}

function ruleOf(parent: Obj, item: Item): AuthzRule | undefined {
  const o = Obj.of(parent.ctx, item.value, item.path);
  if (o === undefined) return undefined;
  const from: AuthzSource[] = [];
  for (const f of o.list('from')) {
    const fo = Obj.of(o.ctx, f.value, f.path);
    const source = fo?.object('source', { required: true });
    if (source !== undefined) from.push(sourceOf(source));
    fo?.finish();
  }
  const to: AuthzOperation[] = [];
  for (const t of o.list('to')) {
    const to_ = Obj.of(o.ctx, t.value, t.path);
    const op = to_?.object('operation', { required: true });
    if (op !== undefined) to.push(operationOf(op));
    to_?.finish();
  }
  const when: AuthzCondition[] = [];
  for (const w of o.list('when')) {
    const c = conditionOf(o, w);
    if (c !== undefined) when.push(c);
  }
  o.finish();
  return { from, to, when };
}

/** A repeated string field; undefined when absent or empty (Istio: an empty list is no constraint). */
function values(o: Obj, name: string, check?: (v: string) => string | undefined): string[] | undefined {
  const out: string[] = [];
  for (const item of o.strings(name, { nonEmptyItems: true })) {
    const v = item.value as string;
    const bad = check?.(v);
    if (bad !== undefined) o.ctx.error(item.path, bad);
    else out.push(v);
  }
  return out.length === 0 ? undefined : out;
}

/** `*`, `prefix*`, `*suffix` or an exact value: Istio's string match for principals, namespaces, hosts, paths. */
function wildcard(v: string): string | undefined {
  const inner = v.length > 1 ? v.slice(1, -1) : '';
  if (inner.includes('*')) return `${quote(v)}: "*" is allowed only at the start or the end`;
  return undefined;
}

function cidr(v: string): string | undefined {
  const slash = v.indexOf('/');
  const ip = slash < 0 ? v : v.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) return `${quote(v)} is not an IP address or CIDR block`;
  if (slash >= 0) {
    const len = v.slice(slash + 1);
    const max = family === 4 ? 32 : 128;
    if (!/^[0-9]+$/.test(len) || Number(len) > max) return `${quote(v)}: the prefix length must be 0-${max}`;
  }
  return undefined;
}

function method(v: string): string | undefined {
  return /^[A-Za-z]+$/.test(v) || v === '*' ? undefined : `${quote(v)} is not an HTTP method`;
}

function port(v: string): string | undefined {
  const n = Number(v);
  return /^[0-9]+$/.test(v) && n >= 1 && n <= 65535
    ? undefined
    : `${quote(v)} is not a port number (1-65535)`;
}

function sourceOf(o: Obj): AuthzSource {
  o.notYet(['requestPrincipals', 'notRequestPrincipals'], {
    requestPrincipals: 'request principals (JWT, RequestAuthentication)',
    notRequestPrincipals: 'request principals (JWT, RequestAuthentication)',
  });
  const s: AuthzSource = {
    principals: values(o, 'principals', wildcard),
    notPrincipals: values(o, 'notPrincipals', wildcard),
    namespaces: values(o, 'namespaces', wildcard),
    notNamespaces: values(o, 'notNamespaces', wildcard),
    ipBlocks: values(o, 'ipBlocks', cidr),
    notIpBlocks: values(o, 'notIpBlocks', cidr),
    remoteIpBlocks: values(o, 'remoteIpBlocks', cidr),
    notRemoteIpBlocks: values(o, 'notRemoteIpBlocks', cidr),
  };
  o.finish();
  return s;
}

/** Istio's ports are strings ("8080"); a YAML number is taken as well. */
function portsOf(o: Obj, name: string): string[] | undefined {
  const out: string[] = [];
  for (const item of o.list(name)) {
    const v = typeof item.value === 'number' ? String(item.value) : item.value;
    if (typeof v !== 'string') {
      o.ctx.error(item.path, `expected a port as a string ("8080"), got ${typeof item.value}`);
      continue;
    }
    const bad = port(v);
    if (bad !== undefined) o.ctx.error(item.path, bad);
    else out.push(v);
  }
  return out.length === 0 ? undefined : out;
}

function operationOf(o: Obj): AuthzOperation {
  const op: AuthzOperation = {
    hosts: values(o, 'hosts', wildcard),
    notHosts: values(o, 'notHosts', wildcard),
    ports: portsOf(o, 'ports'),
    notPorts: portsOf(o, 'notPorts'),
    methods: values(o, 'methods', method),
    notMethods: values(o, 'notMethods', method),
    paths: values(o, 'paths', wildcard),
    notPaths: values(o, 'notPaths', wildcard),
  };
  o.finish();
  return op;
}

/** The `when` keys Remora evaluates; request.auth.* needs JWT, which Remora does not have. */
const CONDITION_KEYS: Readonly<Record<string, ((v: string) => string | undefined) | undefined>> = {
  'source.ip': cidr,
  'remote.ip': cidr,
  'source.namespace': wildcard,
  'source.principal': wildcard,
  'destination.ip': cidr,
  'destination.port': port,
  'connection.sni': wildcard,
  'request.method': method,
};

const HEADER_KEY = /^request\.headers\[([!#$%&'*+.^_`|~0-9A-Za-z-]+)\]$/;

function conditionOf(parent: Obj, item: Item): AuthzCondition | undefined {
  const o = Obj.of(parent.ctx, item.value, item.path);
  if (o === undefined) return undefined;
  const key = o.string('key', { required: true });
  let check: ((v: string) => string | undefined) | undefined;
  if (key !== undefined) {
    if (HEADER_KEY.test(key)) check = wildcard;
    else if (key in CONDITION_KEYS) check = CONDITION_KEYS[key];
    else if (key.startsWith('request.auth.'))
      o.error('key', `${quote(key)}: request authentication (JWT) is not supported by Remora yet`);
    else
      o.error(
        'key',
        `unsupported key ${quote(key)} (expected request.headers[<name>], ${Object.keys(CONDITION_KEYS).join(', ')})`,
      );
  }
  const vals = values(o, 'values', check);
  const notValues = values(o, 'notValues', check);
  if (vals === undefined && notValues === undefined)
    o.ctx.error(item.path, 'one of values, notValues is required');
  o.finish();
  if (key === undefined) return undefined;
  return { key, values: vals, notValues };
}
