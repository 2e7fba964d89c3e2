// Who a proxy is, read from the xDS `node` it sends (Istio's metadata keys), and the group of proxies that get
// the same configuration.

import { isIP } from 'node:net';
import type { ConfigError, ValidationResult } from '../../config/result.js';
import type { NodeJson } from '../../xds/protos.js';
import { digest } from '../model/digest.js';
import type { Labels } from '../model/objects.js';

/**
 * The node metadata keys Remora reads (Istio's names, so an Istio-injected Envoy is understood as it is):
 * - `NAMESPACE`: the workload's namespace (default `default`).
 * - `LABELS`: the workload's labels, an object of strings; they choose its Sidecar and the Services it serves.
 * - `WORKLOAD_NAME`: the workload (Deployment, WorkloadEntry...) name, for status pages only.
 * - `SERVICE_ACCOUNT`: the workload's service account, for status pages only (identity comes with the CA).
 * - `INSTANCE_IPS`: the workload's IP addresses, comma-separated (or a list); their families choose the
 *   listeners' wildcard address.
 * - `GENERATOR`: `grpc` marks a proxyless gRPC client (also recognised by a `user_agent_name` starting "gRPC").
 * - `INTERCEPTION_MODE`: `REDIRECT` (the default: capture rules send traffic to 15001/15006) or `NONE` (no capture:
 *   the application dials the proxy's bound listeners).
 * - `OUTBOUND_BIND_ADDRESS` (NONE only): the IP the outbound listeners bind, one per service port (default 127.0.0.1).
 * - `INBOUND_LISTENER_ADDRESS` (NONE only): `IP:PORT` of a bound inbound listener in front of the workload.
 */
export const NODE_METADATA_KEYS = {
  namespace: 'NAMESPACE',
  labels: 'LABELS',
  workloadName: 'WORKLOAD_NAME',
  serviceAccount: 'SERVICE_ACCOUNT',
  instanceIps: 'INSTANCE_IPS',
  generator: 'GENERATOR',
  interceptionMode: 'INTERCEPTION_MODE',
  outboundBindAddress: 'OUTBOUND_BIND_ADDRESS',
  inboundListenerAddress: 'INBOUND_LISTENER_ADDRESS',
} as const;

/** Without capture (NONE), where the proxy's listeners bind. */
export interface BoundListeners {
  readonly mode: 'NONE';
  /** The IP every outbound listener binds, on its service port. */
  readonly outboundBindAddress: string;
  /** The inbound listener's address, if the workload is to be reached through its proxy. */
  readonly inbound: { readonly address: string; readonly port: number } | undefined;
}

/** How traffic reaches the proxy: capture rules (REDIRECT, the default, left unset) or bound listeners (NONE). */
export type Interception = BoundListeners | undefined;

const DEFAULT_OUTBOUND_BIND_ADDRESS = '127.0.0.1';

/** A sidecar proxy (Envoy or Remora) or a proxyless gRPC client, which needs a different set of resources. */
export type ProxyKind = 'sidecar' | 'grpc';

/**
 * Everything the generator may read about a proxy, and nothing else: proxies with equal groups get equal
 * configuration, so the group is the cache key of what is generated for them. A field added here is part of the key.
 */
export interface ProxyGroup {
  readonly kind: ProxyKind;
  readonly namespace: string;
  readonly labels: Labels;
  /** The IP families of the workload's addresses: with IPv6, listeners bind `::` (dual stack). */
  readonly ipFamilies: readonly ('v4' | 'v6')[];
  /** Unset: capture mode (REDIRECT). */
  readonly interception?: Interception;
  /** The SPIFFE trust domain of the mesh's identities (default cluster.local): the control plane's, not the node's. */
  readonly trustDomain?: string;
}

/** A connected proxy, as its node describes it. */
export interface ProxyIdentity extends ProxyGroup {
  readonly id: string;
  readonly cluster: string;
  readonly workloadName: string | undefined;
  readonly serviceAccount: string | undefined;
  readonly ips: readonly string[];
}

const DEFAULT_NAMESPACE = 'default';

/**
 * Reads a node. Metadata keys that are present must be well formed (a proxy told to be in namespace `42` or with
 * labels that are not strings is refused with the field path rather than configured as something it is not).
 * Without metadata, an Istio-style id `sidecar~10.0.0.1~pod.namespace~namespace.svc.cluster.local` still gives
 * the namespace, the workload name and the IP.
 */
export function proxyIdentity(node: NodeJson): ValidationResult<ProxyIdentity> {
  const errors: ConfigError[] = [];
  const id = typeof node.id === 'string' ? node.id : '';
  if (id === '') errors.push({ path: 'node.id', message: 'a proxy needs a non-empty node id' });
  const md = node.metadata ?? {};
  const fromId = parseIstioId(id);
  const text = (key: string): string | undefined => {
    const v = md[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') {
      errors.push({ path: `node.metadata.${key}`, message: `expected a string, got ${typeName(v)}` });
      return undefined;
    }
    return v === '' ? undefined : v;
  };
  const namespace = text(NODE_METADATA_KEYS.namespace) ?? fromId?.namespace ?? DEFAULT_NAMESPACE;
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace))
    errors.push({
      path: `node.metadata.${NODE_METADATA_KEYS.namespace}`,
      message: `${JSON.stringify(namespace)} is not a namespace name`,
    });
  const labels = labelsOf(md[NODE_METADATA_KEYS.labels], errors);
  const ips = ipsOf(md[NODE_METADATA_KEYS.instanceIps], errors) ?? fromId?.ips ?? [];
  const generator = text(NODE_METADATA_KEYS.generator);
  const agent = typeof node.user_agent_name === 'string' ? node.user_agent_name : '';
  const kind: ProxyKind = generator === 'grpc' || /^grpc/i.test(agent) ? 'grpc' : 'sidecar';
  const workloadName = text(NODE_METADATA_KEYS.workloadName) ?? fromId?.workload;
  const serviceAccount = text(NODE_METADATA_KEYS.serviceAccount);
  const interception = interceptionOf(text, errors);
  if (errors.length > 0) return { ok: false, errors };
  const families = new Set(ips.map((ip) => (isIP(ip) === 6 ? 'v6' : 'v4') as 'v4' | 'v6'));
  return {
    ok: true,
    value: {
      id,
      cluster: typeof node.cluster === 'string' ? node.cluster : '',
      kind,
      namespace,
      labels,
      ipFamilies: (['v4', 'v6'] as const).filter((f) => families.has(f)),
      ...(interception !== undefined && { interception }),
      workloadName,
      serviceAccount,
      ips,
    },
  };
}

/** Exactly the fields of a ProxyGroup, copied: what the generator reads, whatever object it was given. */
export function proxyGroup(p: ProxyGroup): ProxyGroup {
  return {
    kind: p.kind,
    namespace: p.namespace,
    labels: p.labels,
    ipFamilies: p.ipFamilies,
    ...(p.interception !== undefined && { interception: p.interception }),
    ...(p.trustDomain !== undefined && { trustDomain: p.trustDomain }),
  };
}

/** The cache key of a group: `<kind>~<namespace>~<digest of labels, IP families and bound listeners>`. */
export function groupKey(p: ProxyGroup): string {
  const g = proxyGroup(p);
  const keyed = {
    labels: g.labels,
    ipFamilies: g.ipFamilies,
    ...(g.interception && { interception: g.interception }),
  };
  return `${g.kind}~${g.namespace}~${digest(keyed).slice(0, 12)}`;
}

/**
 * INTERCEPTION_MODE and the keys that only mean something without capture. TPROXY (Istio's other capture mode) is
 * refused: `remora iptables` installs REDIRECT rules only.
 */
function interceptionOf(text: (key: string) => string | undefined, errors: ConfigError[]): Interception {
  const K = NODE_METADATA_KEYS;
  const mode = text(K.interceptionMode) ?? 'REDIRECT';
  const bind = text(K.outboundBindAddress);
  const inbound = text(K.inboundListenerAddress);
  if (mode !== 'NONE') {
    if (mode !== 'REDIRECT')
      errors.push({
        path: `node.metadata.${K.interceptionMode}`,
        message: `${JSON.stringify(mode)} is not supported: REDIRECT (capture, the default) or NONE (bound listeners)`,
      });
    for (const [key, v] of [
      [K.outboundBindAddress, bind],
      [K.inboundListenerAddress, inbound],
    ] as const)
      if (v !== undefined)
        errors.push({
          path: `node.metadata.${key}`,
          message: `only read with ${K.interceptionMode} NONE (capture mode binds 15001 and 15006)`,
        });
    return undefined;
  }
  if (bind !== undefined && isIP(bind) === 0)
    errors.push({
      path: `node.metadata.${K.outboundBindAddress}`,
      message: `${JSON.stringify(bind)} is not an IP address`,
    });
  let listener: BoundListeners['inbound'];
  if (inbound !== undefined) {
    // `127.0.0.1:15006` or `[::1]:15006`.
    const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(inbound);
    const port = Number(m?.[2]);
    if (m === null || isIP(m[1]!) === 0 || port < 1 || port > 65535)
      errors.push({
        path: `node.metadata.${K.inboundListenerAddress}`,
        message: `${JSON.stringify(inbound)} is not IP:PORT (e.g. 127.0.0.1:15006 or [::1]:15006)`,
      });
    else listener = { address: m[1]!, port };
  }
  return { mode: 'NONE', outboundBindAddress: bind ?? DEFAULT_OUTBOUND_BIND_ADDRESS, inbound: listener };
}

function typeName(v: unknown): string {
  return Array.isArray(v) ? 'a list' : v === null ? 'null' : `a ${typeof v}`;
}

function labelsOf(v: unknown, errors: ConfigError[]): Labels {
  const path = `node.metadata.${NODE_METADATA_KEYS.labels}`;
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) {
    errors.push({ path, message: `expected an object of label names to strings, got ${typeName(v)}` });
    return {};
  }
  const out: Record<string, string> = {};
  for (const key of Object.keys(v).sort()) {
    const value = (v as Record<string, unknown>)[key];
    if (typeof value !== 'string') {
      errors.push({ path: `${path}.${key}`, message: `expected a string, got ${typeName(value)}` });
      continue;
    }
    out[key] = value;
  }
  return out;
}

function ipsOf(v: unknown, errors: ConfigError[]): string[] | undefined {
  const path = `node.metadata.${NODE_METADATA_KEYS.instanceIps}`;
  if (v === undefined || v === null || v === '') return undefined;
  let items: unknown[];
  if (typeof v === 'string') items = v.split(',').map((s) => s.trim());
  else if (Array.isArray(v)) items = v;
  else {
    errors.push({ path, message: `expected comma-separated IP addresses, got ${typeName(v)}` });
    return undefined;
  }
  const out: string[] = [];
  items.forEach((ip, i) => {
    if (typeof ip === 'string' && isIP(ip) !== 0) out.push(ip);
    else errors.push({ path: `${path}[${i}]`, message: `${JSON.stringify(ip)} is not an IP address` });
  });
  return out;
}

/** Istio's node id: `<type>~<ip>~<workload>.<namespace>~<namespace>.svc.<domain>`. */
function parseIstioId(
  id: string,
): { ips: string[]; workload: string | undefined; namespace: string | undefined } | undefined {
  const parts = id.split('~');
  if (parts.length !== 4) return undefined;
  const [, ip = '', podDotNs = '', domain = ''] = parts;
  const dot = podDotNs.lastIndexOf('.');
  const namespace = domain.split('.')[0] || (dot > 0 ? podDotNs.slice(dot + 1) : undefined);
  return {
    ips: isIP(ip) !== 0 ? [ip] : [],
    workload: dot > 0 ? podDotNs.slice(0, dot) : podDotNs || undefined,
    namespace: namespace || undefined,
  };
}
