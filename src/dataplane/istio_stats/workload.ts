// Who is on each side of a request for Istio's labels: this proxy's workload (from its node metadata), the peer's
// identity (from its certificate), and the destination service (from the cluster name or the Host header).

import type { IstioStatsConfig, ListenerConfig, NodeInfo } from '../../config/model.js';
import type { StatsStore } from '../observe/stats.js';

export const UNKNOWN = 'unknown';

/** The reporter label: a listener's side of the request. */
export type Reporter = 'source' | 'destination' | 'waypoint';

/**
 * Istio's rule: SERVER_GATEWAY reports as a waypoint; otherwise an INBOUND listener's filters report as the
 * destination and every other listener's (OUTBOUND, UNSPECIFIED) as the source.
 */
export function reporterOf(
  config: IstioStatsConfig,
  trafficDirection: ListenerConfig['trafficDirection'],
): Reporter {
  if (config.reporter === 'SERVER_GATEWAY') return 'waypoint';
  return trafficDirection === 'INBOUND' ? 'destination' : 'source';
}

/** This proxy's workload, as Istio's node metadata describes it; `unknown` for what it leaves out. */
export interface LocalWorkload {
  readonly workload: string;
  readonly namespace: string;
  readonly app: string;
  readonly version: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  /** CLUSTER_ID: the cluster (Kubernetes cluster, not Envoy cluster) the workload runs in. */
  readonly cluster: string;
  /** ISTIO_VERSION, for istio_build. */
  readonly istioVersion: string;
}

/**
 * Reads NAMESPACE, WORKLOAD_NAME, CLUSTER_ID, ISTIO_VERSION and LABELS (app, version, and Istio's canonical
 * service labels). Istio's injector fills the canonical labels in; without them the fallbacks are the injector's:
 * the name from app.kubernetes.io/name, app or the workload name, the revision from app.kubernetes.io/version,
 * version, else `latest`.
 */
export function localWorkload(node: NodeInfo): LocalWorkload {
  const md = node.metadata;
  const text = (key: string): string | undefined => {
    const v = md[key];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const rawLabels = md.LABELS;
  const labels =
    typeof rawLabels === 'object' && rawLabels !== null && !Array.isArray(rawLabels)
      ? (rawLabels as Record<string, unknown>)
      : {};
  const label = (key: string): string | undefined => {
    const v = labels[key];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const workload = text('WORKLOAD_NAME');
  return {
    workload: workload ?? UNKNOWN,
    namespace: text('NAMESPACE') ?? UNKNOWN,
    app: label('app') ?? UNKNOWN,
    version: label('version') ?? UNKNOWN,
    canonicalService:
      label('service.istio.io/canonical-name') ??
      label('app.kubernetes.io/name') ??
      label('app') ??
      workload ??
      UNKNOWN,
    canonicalRevision:
      label('service.istio.io/canonical-revision') ??
      label('app.kubernetes.io/version') ??
      label('version') ??
      'latest',
    cluster: text('CLUSTER_ID') ?? UNKNOWN,
    istioVersion: text('ISTIO_VERSION') ?? UNKNOWN,
  };
}

/** The namespace of a SPIFFE ID in Istio's form (`spiffe://<domain>/ns/<namespace>/sa/<account>`); '' if none. */
export function namespaceOfPrincipal(principal: string): string {
  const at = principal.indexOf('/ns/');
  if (at < 0) return '';
  const start = at + 4;
  const end = principal.indexOf('/', start);
  return end < 0 ? principal.slice(start) : principal.slice(start, end);
}

/** Where a request or connection went, as far as the destination_service labels tell. */
export interface DestinationService {
  /** destination_service: the service's host; '' when nothing names it. */
  readonly host: string;
  /** destination_service_name; '' when nothing names it. */
  readonly name: string;
  /** The namespace in the host (`<name>.<namespace>.svc...`); '' when the host does not have that form. */
  readonly namespace: string;
}

const NO_SERVICE: DestinationService = { host: '', name: '', namespace: '' };

/** Istio's catch-all clusters: the label names them rather than a service. */
const CATCH_ALL_CLUSTERS = new Set([
  'BlackHoleCluster',
  'PassthroughCluster',
  'InboundPassthroughCluster',
  'InboundPassthroughClusterIpv4',
  'InboundPassthroughClusterIpv6',
]);

/**
 * Istio's derivation: the Host header, overridden by what the cluster names. Istio reads the service from the
 * cluster's metadata; Remora reads it from Istio's cluster name, `outbound|<port>|<subset>|<host>` (or `inbound|...`
 * with a host), which carries the same host. The catch-all clusters and Istio's `block_all` / `allow_any` routes name
 * themselves. `hostHeader` is asked only when the cluster names no host; it returns '' for none (or when the
 * fallback to it is disabled).
 */
export function destinationService(
  hostHeader: () => string,
  cluster: string | undefined,
  routeName: string | undefined,
): DestinationService {
  const fromCluster = cluster === undefined ? '' : hostOfClusterName(cluster);
  if (fromCluster !== '' && routeName !== 'block_all' && routeName !== 'allow_any') {
    const dot = fromCluster.indexOf('.');
    const rest = dot < 0 ? '' : fromCluster.slice(dot + 1);
    const namespace = rest.endsWith('.svc') || rest.includes('.svc.') ? rest.slice(0, rest.indexOf('.')) : '';
    return { host: fromCluster, name: dot < 0 ? fromCluster : fromCluster.slice(0, dot), namespace };
  }
  const host = hostHeader();
  const service = host === '' ? NO_SERVICE : { host, name: host, namespace: '' };
  if (routeName === 'block_all') return { ...service, name: 'BlackHoleCluster' };
  if (routeName === 'allow_any') return { ...service, name: 'PassthroughCluster' };
  if (cluster !== undefined && CATCH_ALL_CLUSTERS.has(cluster)) return { ...service, name: cluster };
  return service;
}

/** The host of an Istio cluster name (`outbound|80|v1|reviews.default.svc.cluster.local`); '' for other names. */
export function hostOfClusterName(cluster: string): string {
  if (!cluster.startsWith('outbound|') && !cluster.startsWith('inbound|')) return '';
  const parts = cluster.split('|');
  return parts.length === 4 ? parts[3]! : '';
}

/** What an istio.stats filter needs beyond its config: where its stats go and the listener and node it serves. */
export interface IstioStatsEnv {
  readonly store: StatsStore;
  readonly node: NodeInfo;
  readonly trafficDirection: ListenerConfig['trafficDirection'];
}
