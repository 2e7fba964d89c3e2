// buildSnapshot: validated mesh objects -> MeshSnapshot, a pure function (same objects, same snapshot and version).

import { canonicalJson, deepFreeze, digest } from './digest.js';
import { serviceHostname } from './hosts.js';
import {
  type DnsEndpointsObject,
  type EndpointSliceObject,
  type MeshObject,
  objectKey,
  type ServiceEntryObject,
  type ServiceObject,
  selects,
  type WorkloadEntryObject,
} from './objects.js';
import { type Endpoint, type Locality, MeshSnapshot, type Service } from './snapshot.js';
import { entryWorkload, podWorkload, targetPortOf } from './workloads.js';

/** Where an object came from never changes the mesh: it is left out of every digest. */
const NOT_CONTENT = new Set(['origin']);

type ByKind<K extends MeshObject['kind']> = Extract<MeshObject, { kind: K }>;

/**
 * Builds the snapshot of a set of objects. The order of `objects` does not matter, even when two objects share a
 * key (`Kind/namespace/name`): one of them is kept by content (a source registry resolves such conflicts before,
 * and reports them).
 *
 * A Service's endpoints are the endpoints of the EndpointSlices labelled with its name
 * (`kubernetes.io/service-name`) plus, as Istio does for Kubernetes Services, the WorkloadEntries of its namespace
 * whose labels its selector selects. A WorkloadEntry's port for a service port is its `ports` entry of that port's
 * name, else the service's numeric targetPort (or the entry named by a named targetPort), else the service port.
 * The same address and ports both in a slice and in a WorkloadEntry are one endpoint: the WorkloadEntry's, which
 * knows labels. (Several workloads may share an address with different ports, as on a laptop's loopback.)
 *
 * Pods are workloads, never endpoints: a Kubernetes Service's Pods reach it through its EndpointSlices (as in
 * Kubernetes and Istio, where the endpoint controller alone decides which Pods, ports and readiness a Service has).
 */
export function buildSnapshot(objects: readonly MeshObject[]): MeshSnapshot {
  const unique = new Map<string, MeshObject>();
  for (const o of objects) {
    const k = objectKey(o);
    const had = unique.get(k);
    // Between two objects with one key, the choice must not depend on the input order: the smaller content wins.
    if (had === undefined || canonicalJson(o, NOT_CONTENT) < canonicalJson(had, NOT_CONTENT))
      unique.set(k, o);
  }
  const all = [...unique.entries()].sort((a, b) => cmp(a[0], b[0])).map((e) => e[1]);
  const of = <K extends MeshObject['kind']>(kind: K) => all.filter((o): o is ByKind<K> => o.kind === kind);

  const services: Service[] = [];
  const endpoints = new Map<string, readonly Endpoint[]>();
  const slices = of('EndpointSlice');
  const entries = of('WorkloadEntry');
  for (const svc of of('Service')) {
    const s = kubernetesService(svc);
    if (services.some((x) => x.hostname === s.hostname)) continue;
    services.push(s);
    endpoints.set(s.hostname, serviceEndpoints(svc, slices, entries));
  }
  const dns = of('DnsEndpoints');
  for (const se of of('ServiceEntry')) {
    const s = serviceEntryService(se);
    if (services.some((x) => x.hostname === s.hostname)) continue;
    services.push(s);
    endpoints.set(s.hostname, dnsEndpoints(se, dns));
  }
  services.sort((a, b) => cmp(a.hostname, b.hostname));

  const workloads = [
    ...entries.map((we) => entryWorkload(we, parseLocality(we.locality))),
    ...of('Pod').map(podWorkload),
  ];
  const virtualServices = of('VirtualService');
  const destinationRules = of('DestinationRule');
  const sidecars = of('Sidecar');
  const peerAuthentications = of('PeerAuthentication');
  const authorizationPolicies = of('AuthorizationPolicy');
  const namespaces = [...new Set(all.map((o) => o.meta.namespace))].sort(cmp);

  const sortedEndpoints = [...endpoints.entries()].sort((a, b) => cmp(a[0], b[0]));
  const versions = {
    services: digest(services),
    endpoints: digest(sortedEndpoints),
    workloads: digest(workloads),
    policies: digest(
      [virtualServices, destinationRules, sidecars, peerAuthentications, authorizationPolicies],
      NOT_CONTENT,
    ),
  };
  const version = digest([versions, namespaces]);
  return new MeshSnapshot(
    deepFreeze({
      version,
      versions,
      namespaces,
      services,
      endpoints: new Map(sortedEndpoints),
      workloads,
      virtualServices,
      destinationRules,
      sidecars,
      peerAuthentications,
      authorizationPolicies,
    }),
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function kubernetesService(svc: ServiceObject): Service {
  return {
    kind: 'Service',
    name: svc.meta.name,
    namespace: svc.meta.namespace,
    hostname: serviceHostname(svc.meta.name, svc.meta.namespace),
    ports: svc.ports,
    clusterIPs: svc.clusterIPs,
    headless: svc.headless,
    labels: svc.meta.labels,
    selector: svc.selector !== undefined && Object.keys(svc.selector).length > 0 ? svc.selector : undefined,
    location: 'MESH_INTERNAL',
    exportTo: undefined,
  };
}

function serviceEntryService(se: ServiceEntryObject): Service {
  return {
    kind: 'ServiceEntry',
    name: se.meta.name,
    namespace: se.meta.namespace,
    hostname: se.host,
    ports: se.ports.map((p) => ({
      name: p.name,
      port: p.number,
      protocol: 'TCP',
      appProtocol: p.protocol?.toLowerCase(),
      targetPort: p.targetPort ?? p.number,
      meshProtocol: p.meshProtocol,
    })),
    clusterIPs: [],
    headless: false,
    labels: se.meta.labels,
    selector: undefined,
    location: se.location,
    exportTo: se.exportTo,
  };
}

/** `region/zone/subzone` (Istio's form); missing parts are "". */
export function parseLocality(text: string | undefined): Locality | undefined {
  if (text === undefined) return undefined;
  const [region = '', zone = '', subZone = ''] = text.split('/');
  return { region, zone, subZone };
}

function serviceEndpoints(
  svc: ServiceObject,
  slices: readonly EndpointSliceObject[],
  entries: readonly WorkloadEntryObject[],
): Endpoint[] {
  const byAddress = new Map<string, Endpoint>();
  const id = (address: string, ports: Readonly<Record<string, number>>) =>
    `${address}|${JSON.stringify(ports)}`;
  for (const slice of slices) {
    if (slice.serviceName !== svc.meta.name || slice.meta.namespace !== svc.meta.namespace) continue;
    const ports: Record<string, number> = {};
    for (const p of slice.ports) {
      const sp = svc.ports.find((x) => x.name === p.name && x.protocol === p.protocol);
      if (sp !== undefined) ports[sp.name] = p.port;
    }
    if (Object.keys(ports).length === 0 && svc.ports.length > 0) continue;
    for (const e of slice.endpoints) {
      if (byAddress.has(id(e.address, ports))) continue;
      byAddress.set(id(e.address, ports), {
        address: e.address,
        ports,
        ready: e.ready || svc.publishNotReadyAddresses,
        labels: e.labels ?? {},
        serviceAccount: e.serviceAccount,
        locality: e.zone === undefined ? undefined : { region: '', zone: e.zone, subZone: '' },
        network: undefined,
        weight: undefined,
        priority: undefined,
        from: objectKey(slice),
      });
    }
  }
  const selector = svc.selector;
  if (selector !== undefined && Object.keys(selector).length > 0) {
    for (const we of entries) {
      if (we.meta.namespace !== svc.meta.namespace || !selects(selector, we.labels)) continue;
      const ports = workloadPorts(svc, we);
      byAddress.set(id(we.address, ports), {
        address: we.address,
        ports,
        ready: true,
        labels: we.labels,
        serviceAccount: we.serviceAccount,
        locality: parseLocality(we.locality),
        network: we.network,
        weight: we.weight,
        priority: we.priority,
        from: objectKey(we),
      });
    }
  }
  return [...byAddress.values()].sort((a, b) => cmp(a.address, b.address) || cmp(a.from, b.from));
}

function workloadPorts(svc: ServiceObject, we: WorkloadEntryObject): Record<string, number> {
  const out: Record<string, number> = {};
  for (const sp of svc.ports) {
    const port = targetPortOf({ kind: 'WorkloadEntry', ports: we.ports, containerPorts: [] }, sp);
    if (port !== undefined) out[sp.name] = port;
  }
  return out;
}

function dnsEndpoints(se: ServiceEntryObject, resolved: readonly DnsEndpointsObject[]): Endpoint[] {
  const r = resolved.find(
    (d) => d.meta.namespace === se.meta.namespace && d.meta.name === se.meta.name && d.host === se.host,
  );
  if (r === undefined) return [];
  return r.endpoints
    .map((e) => ({
      address: e.address,
      ports: e.ports,
      ready: true,
      labels: {},
      serviceAccount: undefined,
      locality: undefined,
      network: undefined,
      weight: undefined,
      priority: undefined,
      from: objectKey(r),
    }))
    .sort((a, b) => cmp(a.address, b.address) || cmp(JSON.stringify(a.ports), JSON.stringify(b.ports)));
}
