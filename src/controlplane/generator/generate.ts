// The generator: (mesh snapshot, proxy) -> the Listeners, RouteConfigurations, Clusters and
// ClusterLoadAssignments that proxy gets, as Envoy's canonical JSON. Pure: equal inputs, equal output.

import type { MeshSnapshot } from '../model/snapshot.js';
import { authzFor } from './authz.js';
import { planBound } from './bound.js';
import { type EdsTarget, inboundClusters, outboundClusters, passthroughClusters } from './clusters.js';
import { loadAssignment } from './endpoints.js';
import { type ProxyGroup, proxyGroup } from './identity.js';
import { inboundMtls, inboundPorts, virtualInbound } from './inbound.js';
import { outboundHttpFilters, outboundPortListener, servicesByPort, virtualOutbound } from './listeners.js';
import { type Json, portMode } from './names.js';
import { apiListener, proxylessTargets } from './proxyless.js';
import { outboundRouteConfig, proxylessRouteConfig } from './route_config.js';
import { proxyScope } from './scope.js';

export interface GeneratedConfig {
  readonly listeners: readonly Json[];
  readonly routes: readonly Json[];
  readonly clusters: readonly Json[];
  readonly endpoints: readonly Json[];
}

/**
 * Everything but the endpoints, and what the endpoints are made of. Reads the snapshot's services, workloads and
 * policies, never its endpoints: an endpoint-only change leaves it as it was, and only `generateEndpoints` need
 * run again.
 */
export interface ProxyPlan {
  readonly listeners: readonly Json[];
  readonly routes: readonly Json[];
  readonly clusters: readonly Json[];
  readonly targets: readonly EdsTarget[];
}

/** The whole configuration of a proxy. Only the fields of ProxyGroup are read from `proxy`. */
export function generate(snapshot: MeshSnapshot, proxy: ProxyGroup): GeneratedConfig {
  const plan = planProxy(snapshot, proxy);
  return {
    listeners: plan.listeners,
    routes: plan.routes,
    clusters: plan.clusters,
    endpoints: generateEndpoints(snapshot, plan.targets),
  };
}

export function planProxy(snapshot: MeshSnapshot, proxy: ProxyGroup): ProxyPlan {
  const group = proxyGroup(proxy);
  const scope = proxyScope(snapshot, group);
  const { clusters, targets } = outboundClusters(snapshot, scope, group);
  if (group.kind === 'grpc') {
    const dialled = proxylessTargets(scope.services);
    return {
      listeners: dialled.map((t) => apiListener(t.service, t.port)),
      routes: dialled.map((t) => proxylessRouteConfig(snapshot, t.service, t.port, group.namespace)),
      clusters,
      targets,
    };
  }
  if (group.interception !== undefined) {
    const bound = planBound(snapshot, scope, group, group.interception);
    return { ...bound, clusters: [...bound.clusters, ...clusters], targets };
  }
  // Dual stack when the workload has an IPv6 address: `::` with ipv4_compat takes both families.
  const address = group.ipFamilies.includes('v6') ? '::' : '0.0.0.0';
  const listeners: Json[] = [virtualOutbound(address, scope)];
  const routes: Json[] = [];
  for (const onPort of servicesByPort(scope)) {
    const filters = outboundHttpFilters(snapshot, onPort);
    const { listener, http } = outboundPortListener(address, onPort, scope, filters);
    listeners.push(listener);
    if (!http) continue;
    const services = onPort.entries
      .filter((e) => portMode(e.port.meshProtocol) !== 'tcp')
      .map((e) => e.service);
    routes.push(outboundRouteConfig(snapshot, scope, services, onPort.port, group.namespace));
  }
  const ports = inboundPorts(snapshot, scope, group);
  listeners.push(virtualInbound(address, ports, authzFor(snapshot, group), inboundMtls(snapshot, group)));
  return {
    listeners,
    routes,
    clusters: [...passthroughClusters(), ...inboundClusters(ports), ...clusters],
    targets,
  };
}

/** The ClusterLoadAssignment of each EDS cluster of a plan. */
export function generateEndpoints(snapshot: MeshSnapshot, targets: readonly EdsTarget[]): Json[] {
  return targets.map((t) => loadAssignment(snapshot, t));
}
