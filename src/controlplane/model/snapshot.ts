// MeshSnapshot: the immutable state of the mesh (services, endpoints, workloads, policies) with its indexes.

import { hostMatches } from './hosts.js';
import {
  type AuthorizationPolicyObject,
  type ContainerPort,
  type DestinationRuleObject,
  type Labels,
  type PeerAuthenticationObject,
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

/**
 * An instance of an application in the mesh, whether or not a Service selects it: a WorkloadEntry, or a Kubernetes
 * Pod (from the Kubernetes source). A Pod is never an endpoint by itself: its Services' endpoints come from their
 * EndpointSlices.
 */
export interface Workload {
  readonly kind: 'WorkloadEntry' | 'Pod';
  readonly name: string;
  readonly namespace: string;
  /** Its IPs: a WorkloadEntry's address; a Pod's IPs (none before it has one, or on the host network). */
  readonly addresses: readonly string[];
  readonly labels: Labels;
  /** A WorkloadEntry's ports: service port name -> its port ({} for a Pod). */
  readonly ports: Readonly<Record<string, number>>;
  /** A Pod's named container ports, which a named `targetPort` resolves to ([] for a WorkloadEntry). */
  readonly containerPorts: readonly ContainerPort[];
  /** A Pod on its node's network (its IP, the node's, is left out of `addresses`). */
  readonly hostNetwork: boolean;
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
  readonly peerAuthentications: readonly PeerAuthenticationObject[];
  readonly authorizationPolicies: readonly AuthorizationPolicyObject[];
}

const NO_ENDPOINTS: readonly Endpoint[] = Object.freeze([]);
const NO_WORKLOADS: readonly Workload[] = Object.freeze([]);

/** `namespace` and the labels sorted by name: equal for equal label sets, whatever their order. */
function labelsKey(namespace: string, labels: Labels): string {
  return JSON.stringify([namespace, Object.entries(labels).sort((a, b) => (a[0] < b[0] ? -1 : 1))]);
}

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
  /** WorkloadEntries, then Pods, each sorted by namespace and name. */
  readonly workloads: readonly Workload[];
  readonly virtualServices: readonly VirtualServiceObject[];
  readonly destinationRules: readonly DestinationRuleObject[];
  readonly sidecars: readonly SidecarObject[];
  readonly peerAuthentications: readonly PeerAuthenticationObject[];
  readonly authorizationPolicies: readonly AuthorizationPolicyObject[];
  private readonly byHost = new Map<string, Service>();
  private readonly endpointsByHost: ReadonlyMap<string, readonly Endpoint[]>;
  private readonly workloadsByLabels = new Map<string, Workload[]>();

  constructor(parts: SnapshotParts) {
    this.version = parts.version;
    this.versions = parts.versions;
    this.namespaces = parts.namespaces;
    this.services = parts.services;
    this.workloads = parts.workloads;
    this.virtualServices = parts.virtualServices;
    this.destinationRules = parts.destinationRules;
    this.sidecars = parts.sidecars;
    this.peerAuthentications = parts.peerAuthentications;
    this.authorizationPolicies = parts.authorizationPolicies;
    this.endpointsByHost = parts.endpoints;
    for (const s of parts.services) if (!this.byHost.has(s.hostname)) this.byHost.set(s.hostname, s);
    for (const w of parts.workloads) {
      const k = labelsKey(w.namespace, w.labels);
      const same = this.workloadsByLabels.get(k);
      if (same === undefined) this.workloadsByLabels.set(k, [w]);
      else same.push(w);
    }
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

  /**
   * The workloads of a namespace with exactly these labels, in `workloads` order (WorkloadEntries, then Pods): those
   * a proxy with these labels may be, as its node says no more (the Pods of one Deployment revision share them).
   */
  workloadsWithLabels(namespace: string, labels: Labels): readonly Workload[] {
    return this.workloadsByLabels.get(labelsKey(namespace, labels)) ?? NO_WORKLOADS;
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
