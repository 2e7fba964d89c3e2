// Host names in the mesh: a Service's hostname, short names resolved as Istio does, wildcard matching, port protocols.

import type { MeshProtocol } from './objects.js';

/** The cluster's DNS domain, as in `<name>.<namespace>.svc.cluster.local`. */
export const DOMAIN_SUFFIX = 'cluster.local';

export function serviceHostname(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.${DOMAIN_SUFFIX}`;
}

/**
 * A policy's host, fully qualified. As in Istio, a short name (no dot) is taken in the namespace of the policy that
 * names it, not of the service: `reviews` in a rule of namespace `foo` is `reviews.foo.svc.cluster.local`. Names
 * with a dot, and wildcards, are kept as written (lower-cased).
 */
export function resolveHost(host: string, namespace: string): string {
  const h = host.toLowerCase();
  if (h === '*' || h.includes('.')) return h;
  return serviceHostname(h, namespace);
}

/** True when `pattern` (`*`, `*.suffix` or a name) covers `host`. */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1));
  return pattern === host;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** RFC 1123 label (Kubernetes' DNS_LABEL: names of Services, namespaces, ports). */
export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}

/** RFC 1123 subdomain (Kubernetes object names). */
export function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && s.split('.').every((l) => l.length > 0 && isDnsLabel(l));
}

/** A host a policy may name: a DNS name (short or qualified), optionally with a leading `*.`, or `*` alone. */
export function isHostPattern(s: string): boolean {
  if (s === '*') return true;
  const name = s.startsWith('*.') ? s.slice(2) : s;
  return (
    name.length <= 253 &&
    name
      .split('.')
      .every((l) => l.length > 0 && l.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_]*[A-Za-z0-9])?$/.test(l))
  );
}

const PROTOCOLS: Readonly<Record<string, MeshProtocol>> = {
  http: 'HTTP',
  http2: 'HTTP2',
  h2c: 'HTTP2',
  'kubernetes.io/h2c': 'HTTP2',
  grpc: 'GRPC',
  'grpc-web': 'HTTP',
  https: 'TLS',
  tls: 'TLS',
  tcp: 'TCP',
  mongo: 'TCP',
  mysql: 'TCP',
  redis: 'TCP',
};

/**
 * Istio's protocol selection: `appProtocol` when set, else the port name `<protocol>[-<suffix>]`
 * (`http-web`, `grpc`); otherwise UNKNOWN, which the data plane sniffs. UDP and SCTP ports are never HTTP.
 */
export function meshProtocolOf(
  name: string,
  appProtocol: string | undefined,
  protocol: string,
): MeshProtocol {
  if (protocol === 'UDP' || protocol === 'SCTP') return 'TCP';
  if (appProtocol !== undefined) {
    const p = PROTOCOLS[appProtocol.toLowerCase()];
    if (p !== undefined) return p;
  }
  const prefix = name.toLowerCase().split('-')[0] ?? '';
  return PROTOCOLS[prefix] ?? 'UNKNOWN';
}
