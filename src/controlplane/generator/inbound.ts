// The inbound side of capture mode: virtualInbound (15006), with a filter chain per port the proxy's own workload
// serves, and the ports themselves.

import type { MeshSnapshot } from '../model/snapshot.js';
import { targetPortOf } from '../model/workloads.js';
import { type InboundAuthz, NO_AUTHZ } from './authz.js';
import { type InboundPort, proxiedPorts } from './clusters.js';
import type { ProxyGroup } from './identity.js';
import { PROXY_PORTS } from './listeners.js';
import {
  HTTP_ALPN,
  hcmFilter,
  INBOUND_PASSTHROUGH_CLUSTER,
  inboundClusterName,
  type Json,
  portMode,
  sniffingListenerFilters,
  socketAddress,
  TYPES,
  tcpProxyFilter,
  VIRTUAL_INBOUND,
  VIRTUAL_INBOUND_PORT,
} from './names.js';
import { inboundRouteConfig } from './route_config.js';
import type { ProxyScope } from './scope.js';

/**
 * The ports the workload serves, from the Services that select it: for each service port, the port of the first
 * workload of the proxy's namespace with exactly the proxy's labels that serves it (a WorkloadEntry's port of the
 * service port's name, else the `targetPort`: a number as it is, a name looked up among a Pod's container ports or
 * a WorkloadEntry's ports); without such a workload, a numeric `targetPort`. A port two services share takes the
 * protocol of the first (by hostname).
 */
export function inboundPorts(snapshot: MeshSnapshot, scope: ProxyScope, proxy: ProxyGroup): InboundPort[] {
  const workloads = snapshot.workloadsWithLabels(proxy.namespace, proxy.labels);
  const ports = new Map<number, InboundPort>();
  for (const service of scope.own) {
    for (const sp of proxiedPorts(service)) {
      let port = workloads.length === 0 && typeof sp.targetPort === 'number' ? sp.targetPort : undefined;
      for (const w of workloads) {
        port = targetPortOf(w, sp);
        if (port !== undefined) break;
      }
      if (port === undefined || PROXY_PORTS.has(port) || ports.has(port)) continue;
      ports.set(port, { port, protocol: sp.meshProtocol });
    }
  }
  return [...ports.values()].sort((a, b) => a.port - b.port);
}

/**
 * virtualInbound: each connection's original destination port picks its chain; HTTP ports go through an HTTP
 * connection manager (detected ports when http_inspector finds HTTP), the rest through tcp_proxy, to
 * `inbound|<port>||`; ports no Service declares pass through as TCP (InboundPassthroughCluster).
 */
export function virtualInbound(address: string, ports: readonly InboundPort[], authz = NO_AUTHZ): Json {
  const chains: Json[] = [];
  let sniff = false;
  for (const { port, protocol } of ports) {
    const own = portChains(port, protocol, { destination_port: port }, authz);
    sniff ||= own.sniff;
    chains.push(...own.chains);
  }
  chains.push({
    name: 'virtualInbound-catchall-tcp',
    filters: [...authz.network, tcpProxyFilter(INBOUND_PASSTHROUGH_CLUSTER, INBOUND_PASSTHROUGH_CLUSTER)],
  });
  const originalDst: Json = {
    name: 'envoy.filters.listener.original_dst',
    typed_config: { '@type': TYPES.originalDst },
  };
  return {
    name: VIRTUAL_INBOUND,
    address: socketAddress(address, VIRTUAL_INBOUND_PORT),
    traffic_direction: 'INBOUND',
    ...(sniff ? sniffingListenerFilters([originalDst]) : { listener_filters: [originalDst] }),
    filter_chains: chains,
  };
}

/**
 * The chains of one inbound port, each matching `match` too: HTTP through an HTTP connection manager (a detected
 * port when http_inspector finds HTTP, which `sniff` asks for), the rest through tcp_proxy, to `inbound|<port>||`.
 */
export function portChains(
  port: number,
  protocol: InboundPort['protocol'],
  match: Json,
  authz: InboundAuthz = NO_AUTHZ,
): { chains: Json[]; sniff: boolean } {
  const cluster = inboundClusterName(port);
  const mode = portMode(protocol);
  const statPrefix = `inbound_0.0.0.0_${port}`;
  const http = () => hcmFilter(statPrefix, { inline: inboundRouteConfig(port) }, authz.http);
  const chains: Json[] = [];
  const only = (m: Json) => (Object.keys(m).length === 0 ? {} : { filter_chain_match: m });
  if (mode === 'http')
    return { chains: [{ name: cluster, ...only(match), filters: [http()] }], sniff: false };
  if (mode === 'sniff')
    chains.push({
      name: `${cluster}-http`,
      filter_chain_match: { ...match, application_protocols: HTTP_ALPN },
      filters: [http()],
    });
  chains.push({
    name: cluster,
    ...only(match),
    filters: [...authz.network, tcpProxyFilter(cluster, cluster)],
  });
  return { chains, sniff: mode === 'sniff' };
}
