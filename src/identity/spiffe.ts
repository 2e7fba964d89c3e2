// Workload identities as SPIFFE IDs: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/** Who a workload is: its Kubernetes (or Kubernetes-shaped) namespace and service account. */
export interface WorkloadIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
}

export interface ParsedSpiffeId extends WorkloadIdentity {
  readonly trustDomain: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** The SPIFFE spec's trust domain characters. */
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;

/** Why `ns` cannot be a namespace (a DNS label, as Kubernetes requires), or undefined. */
export function namespaceProblem(ns: string): string | undefined {
  if (ns.length > 63 || !DNS_LABEL.test(ns))
    return `namespace ${JSON.stringify(ns)} is not a DNS label (lower-case letters, digits and "-", at most 63)`;
  return undefined;
}

/** Why `sa` cannot be a service account name (a DNS subdomain, as Kubernetes requires), or undefined. */
export function serviceAccountProblem(sa: string): string | undefined {
  if (sa.length > 253 || !DNS_SUBDOMAIN.test(sa))
    return `service account ${JSON.stringify(sa)} is not a DNS subdomain (lower-case letters, digits, "-" and ".")`;
  return undefined;
}

export function trustDomainProblem(td: string): string | undefined {
  if (td.length > 255 || !TRUST_DOMAIN.test(td))
    return `trust domain ${JSON.stringify(td)} must be lower-case letters, digits, ".", "-" and "_"`;
  return undefined;
}

export function spiffeId(trustDomain: string, id: WorkloadIdentity): string {
  return `spiffe://${trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Reads a SPIFFE ID of Remora's shape; undefined for any other URI. */
export function parseSpiffeId(uri: string): ParsedSpiffeId | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  if (m === null) return undefined;
  const [, trustDomain, namespace, serviceAccount] = m as unknown as [string, string, string, string];
  if (trustDomainProblem(trustDomain) ?? namespaceProblem(namespace) ?? serviceAccountProblem(serviceAccount))
    return undefined;
  return { trustDomain, namespace, serviceAccount };
}
