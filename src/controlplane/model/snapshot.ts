// MeshSnapshot: the immutable state of the mesh (services, endpoints, workloads, policies) with its indexes.

import { hostMatches } from './hosts.js';
import {
  type DestinationRuleObject,
  type Labels,
  type ServicePort,
  type SidecarObject,
  selects,
  type VirtualServiceObject,
} from './objects.js';

/** A service the mesh routes to: a Kubernetes Service, or a ServiceEntry resolved by DNS. */
export interface Service {
  readonly kind: 'Service' | 'ServiceEntry';
  readonly name: string;
  readonly namespace: string;
  /** `<name>.<namespace>.svc.cluster.local` for a Service; the ServiceEntry's host otherwise. */
  readonly hostname: string;
  readonly ports: readonly ServicePort[];
  readonly clusterIPs: readonly string[];
  readonly headless: boolean;
  /** The Service's own labels (metadata.labels). */
  readonly labels: Labels;
  /** Undefined when the Service selects no workloads. */
  readonly selector: Labels | undefined;
  readonly location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  readonly exportTo: readonly string[] | undefined;
}

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

/** One instance of a service. */
export interface Endpoint {
  readonly address: string;
  /** Service port name -> this endpoint's port. A service port missing here is not served by this endpoint. */
  readonly ports: Readonly<Record<string, number>>;
  readonly ready: boolean;
  /** The workload's labels ({} when the source does not know them, as for EndpointSlice endpoints). */
  readonly labels: Labels;
  readonly serviceAccount: string | undefined;
  readonly locality: Locality | undefined;
  readonly network: string | undefined;
  readonly weight: number | undefined;
  readonly priority: number | undefined;
  /** The object it came from: `EndpointSlice/ns/name`, `WorkloadEntry/ns/name` or `DnsEndpoints/ns/name`. */
  readonly from: string;
}

/** A workload outside Kubernetes (a WorkloadEntry), whether or not a Service selects it. */
export interface Workload {
  readonly name: string;
  readonly namespace: string;
  readonly address: string;
  readonly labels: Labels;
  readonly ports: Readonly<Record<string, number>>;
  readonly serviceAccount: string | undefined;
  readonly network: string | undefined;
  readonly locality: Locality | undefined;
  readonly weight: number | undefined;
}

/** Digests of each part, so a consumer can tell an endpoint-only change from a configuration change. */
export interface SnapshotVersions {
  readonly services: string;
  readonly endpoints: string;
  readonly workloads: string;
  readonly policies: string;
}

export interface SnapshotParts {
  readonly version: string;
  readonly versions: SnapshotVersions;
  readonly namespaces: readonly string[];
  readonly services: readonly Service[];
  readonly endpoints: ReadonlyMap<string, readonly Endpoint[]>;
  readonly workloads: readonly Workload[];
  readonly virtualServices: readonly VirtualServiceObject[];
  readonly destinationRules: readonly DestinationRuleObject[];
  readonly sidecars: readonly SidecarObject[];
}

const NO_ENDPOINTS: readonly Endpoint[] = Object.freeze([]);

/**
 * The mesh at one version. Built by `buildSnapshot` (a pure function of the validated objects), never changed
 * afterwards: a new state of the mesh is a new snapshot. Lists are sorted (services by hostname, policies by
 * namespace and name) so that consumers produce stable output.
 */
export class MeshSnapshot {
  /** Digest of everything below: equal inputs give an equal version, so a no-op change is detected by comparing. */
  readonly version: string;
  readonly versions: SnapshotVersions;
  readonly namespaces: readonly string[];
  readonly services: readonly Service[];
  readonly workloads: readonly Workload[];
  readonly virtualServices: readonly VirtualServiceObject[];
  readonly destinationRules: readonly DestinationRuleObject[];
  readonly sidecars: readonly SidecarObject[];
  private readonly byHost = new Map<string, Service>();
  private readonly endpointsByHost: ReadonlyMap<string, readonly Endpoint[]>;

  constructor(parts: SnapshotParts) {
    this.version = parts.version;
    this.versions = parts.versions;
    this.namespaces = parts.namespaces;
    this.services = parts.services;
    this.workloads = parts.workloads;
    this.virtualServices = parts.virtualServices;
    this.destinationRules = parts.destinationRules;
    this.sidecars = parts.sidecars;
    this.endpointsByHost = parts.endpoints;
    for (const s of parts.services) if (!this.byHost.has(s.hostname)) this.byHost.set(s.hostname, s);
    Object.freeze(this);
  }

  service(hostname: string): Service | undefined {
    return this.byHost.get(hostname);
  }

  /** Services whose hostname `pattern` covers (`*`, `*.suffix` or a hostname). */
  servicesMatching(pattern: string): Service[] {
    if (!pattern.includes('*')) {
      const s = this.byHost.get(pattern);
      return s === undefined ? [] : [s];
    }
    return this.services.filter((s) => hostMatches(pattern, s.hostname));
  }

  /** Every endpoint of a service, ready or not, sorted by address. */
  endpoints(hostname: string): readonly Endpoint[] {
    return this.endpointsByHost.get(hostname) ?? NO_ENDPOINTS;
  }

  /** Endpoints of a DestinationRule subset of the service: those whose labels the subset's labels select. */
  subsetEndpoints(hostname: string, subset: string): readonly Endpoint[] {
    const s = this.destinationRule(hostname)?.subsets.find((x) => x.name === subset);
    if (s === undefined) return NO_ENDPOINTS;
    return this.endpoints(hostname).filter((e) => selects(s.labels, e.labels));
  }

  /** VirtualServices with a host covering `hostname`, exact hosts first. */
  virtualServicesFor(hostname: string): VirtualServiceObject[] {
    const exact = this.virtualServices.filter((v) => v.hosts.some((h) => h.fqdn === hostname));
    const wild = this.virtualServices.filter(
      (v) => !exact.includes(v) && v.hosts.some((h) => h.fqdn.includes('*') && hostMatches(h.fqdn, hostname)),
    );
    return [...exact, ...wild];
  }

  /** The DestinationRule for a host: an exact host first, else the most specific wildcard. */
  destinationRule(hostname: string): DestinationRuleObject | undefined {
    const exact = this.destinationRules.find((d) => d.fqdn === hostname);
    if (exact !== undefined) return exact;
    let best: DestinationRuleObject | undefined;
    for (const d of this.destinationRules) {
      if (!d.fqdn.includes('*') || !hostMatches(d.fqdn, hostname)) continue;
      if (best === undefined || d.fqdn.length > best.fqdn.length) best = d;
    }
    return best;
  }

  /**
   * The Sidecar that applies to a workload: as in Istio, one in its namespace whose workloadSelector selects its
   * labels, else the namespace's Sidecar without a selector; undefined when neither exists.
   */
  sidecarFor(namespace: string, labels: Labels): SidecarObject | undefined {
    const inNs = this.sidecars.filter((s) => s.meta.namespace === namespace);
    return (
      inNs.find((s) => s.workloadSelector !== undefined && selects(s.workloadSelector, labels)) ??
      inNs.find((s) => s.workloadSelector === undefined)
    );
  }
}
