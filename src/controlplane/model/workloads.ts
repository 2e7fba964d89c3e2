// The workloads of a snapshot (WorkloadEntries and Pods), and the port a workload serves a service port on.

import type { PodObject, ServicePort, WorkloadEntryObject } from './objects.js';
import type { Locality, Workload } from './snapshot.js';

export function entryWorkload(we: WorkloadEntryObject, locality: Locality | undefined): Workload {
  return {
    kind: 'WorkloadEntry',
    name: we.meta.name,
    namespace: we.meta.namespace,
    addresses: [we.address],
    labels: we.labels,
    ports: we.ports,
    containerPorts: [],
    hostNetwork: false,
    serviceAccount: we.serviceAccount,
    network: we.network,
    locality,
    weight: we.weight,
  };
}

/** What the mesh knows of a Pod beyond its object: nothing of network, locality or weight (EndpointSlices say). */
export function podWorkload(pod: PodObject): Workload {
  return {
    kind: 'Pod',
    name: pod.meta.name,
    namespace: pod.meta.namespace,
    addresses: pod.addresses,
    labels: pod.meta.labels,
    ports: {},
    containerPorts: pod.ports,
    hostNetwork: pod.hostNetwork,
    serviceAccount: pod.serviceAccount,
    network: undefined,
    locality: undefined,
    weight: undefined,
  };
}

/**
 * The port a workload serves a service port on; undefined when it serves none.
 * - A Pod (Kubernetes' rule): a numeric `targetPort` as it is; a named one, the first container port of that name
 *   and the service port's protocol.
 * - A WorkloadEntry (Istio's rule): its `ports` entry named like the service port; else a numeric `targetPort`;
 *   else its `ports` entry named by the `targetPort`.
 */
export function targetPortOf(
  w: Pick<Workload, 'kind' | 'ports' | 'containerPorts'>,
  sp: ServicePort,
): number | undefined {
  if (w.kind === 'Pod') {
    if (typeof sp.targetPort === 'number') return sp.targetPort;
    return w.containerPorts.find((c) => c.name === sp.targetPort && c.protocol === sp.protocol)?.port;
  }
  return w.ports[sp.name] ?? (typeof sp.targetPort === 'number' ? sp.targetPort : w.ports[sp.targetPort]);
}
