// Outbound listeners of capture mode: virtualOutbound (15001), which hands each connection to the listener of its
// original destination port, and one `0.0.0.0_<port>` listener per service port (bound to nothing).

import type { ServicePort } from '../model/objects.js';
import type { MeshSnapshot, Service } from '../model/snapshot.js';
import { proxiedPorts } from './clusters.js';
import { alpnFilter, serviceIdentities } from './mtls.js';
import {
  BLACKHOLE_CLUSTER,
  HTTP_ALPN,
  hcmFilter,
  hostRange,
  type Json,
  outboundClusterName,
  outboundListenerName,
  outboundRouteName,
  PASSTHROUGH_CLUSTER,
  portMode,
  sniffingListenerFilters,
  socketAddress,
  tcpChainFilters,
  VIRTUAL_INBOUND_PORT,
  VIRTUAL_OUTBOUND,
  VIRTUAL_OUTBOUND_PORT,
} from './names.js';
import type { ProxyScope } from './scope.js';

/** The proxy's own ports: a service port equal to one of them cannot be captured (it would loop). */
export const PROXY_PORTS: ReadonlySet<number> = new Set([
  15000,
  VIRTUAL_OUTBOUND_PORT,
  VIRTUAL_INBOUND_PORT,
  15020,
  15021,
  15090,
]);

export interface PortServices {
  readonly port: number;
  readonly entries: readonly { readonly service: Service; readonly port: ServicePort }[];
}

/** The scope's service ports, grouped by number (sorted), the proxy's own ports left out. */
export function servicesByPort(scope: ProxyScope): PortServices[] {
  const byPort = new Map<number, { service: Service; port: ServicePort }[]>();
  for (const service of scope.services) {
    for (const port of proxiedPorts(service)) {
      if (PROXY_PORTS.has(port.port)) continue;
      let list = byPort.get(port.port);
      if (list === undefined) {
        list = [];
        byPort.set(port.port, list);
      }
      list.push({ service, port });
    }
  }
  return [...byPort.entries()].sort((a, b) => a[0] - b[0]).map(([port, entries]) => ({ port, entries }));
}

/**
 * The HTTP filters of an outbound port's connection managers: istio.alpn when a service on the port speaks mTLS,
 * so its sidecar can tell HTTP from TCP inside it.
 */
export function outboundHttpFilters(snapshot: MeshSnapshot, group: PortServices): Json[] {
  return group.entries.some((e) => serviceIdentities(snapshot, e.service).mtls) ? [alpnFilter()] : [];
}

/** Where traffic the proxy has no configuration for goes. */
export function fallbackCluster(scope: ProxyScope): string {
  return scope.outboundPolicy === 'ALLOW_ANY' ? PASSTHROUGH_CLUSTER : BLACKHOLE_CLUSTER;
}

/** Every connection the capture rules redirect arrives here; the ones no per-port listener takes fall back. */
export function virtualOutbound(address: string, scope: ProxyScope): Json {
  const fallback = fallbackCluster(scope);
  return {
    name: VIRTUAL_OUTBOUND,
    address: socketAddress(address, VIRTUAL_OUTBOUND_PORT),
    use_original_dst: true,
    traffic_direction: 'OUTBOUND',
    filter_chains: [{ name: 'virtualOutbound-catchall-tcp', filters: tcpChainFilters(fallback, fallback) }],
  };
}

/**
 * The listener of one outbound port, and whether its HTTP chains take routes by RDS (`<port>`). Chains:
 * - a TCP service's cluster IPs -> tcp_proxy to its cluster;
 * - a detected service's cluster IPs -> HTTP (when http_inspector finds HTTP/1.x or h2c), else tcp_proxy;
 * - everything else: HTTP when the port has an HTTP service (routed by Host, unknown hosts to the fallback); else
 *   HTTP when detected on a port with detected services; else the fallback (passthrough or black hole).
 * A TCP service without a cluster IP (headless, or a ServiceEntry) cannot be told apart by destination and gets no
 * chain of its own. `httpFilters` go before the router of every HTTP chain.
 */
export function outboundPortListener(
  address: string,
  group: PortServices,
  scope: ProxyScope,
  httpFilters: readonly Json[] = [],
): { listener: Json; http: boolean } {
  const { port } = group;
  const statPrefix = `outbound_${outboundListenerName(port)}`;
  const hcm = () => hcmFilter(statPrefix, { rds: outboundRouteName(port) }, httpFilters);
  const chains: Json[] = [];
  const usedIps = new Set<string>();
  let http = false;
  let sniff = false;
  let hasHttpService = false;
  for (const { service, port: sp } of group.entries) {
    const mode = portMode(sp.meshProtocol);
    if (mode === 'http') hasHttpService = true;
    if (mode === 'sniff') sniff = true;
    if (mode === 'http') continue;
    const ips = service.clusterIPs.filter((ip) => !usedIps.has(ip));
    if (ips.length === 0) continue;
    for (const ip of ips) usedIps.add(ip);
    const cluster = outboundClusterName(port, undefined, service.hostname);
    const prefix_ranges = ips.map(hostRange);
    if (mode === 'sniff') {
      chains.push({
        name: `${cluster}-http`,
        filter_chain_match: { prefix_ranges, application_protocols: HTTP_ALPN },
        filters: [hcm()],
      });
      http = true;
    }
    chains.push({
      name: cluster,
      filter_chain_match: { prefix_ranges },
      filters: tcpChainFilters(cluster, cluster),
    });
  }
  const fallback = fallbackCluster(scope);
  if (hasHttpService) {
    chains.push({ name: `${statPrefix}-http`, filters: [hcm()] });
    http = true;
  } else {
    if (sniff) {
      chains.push({
        name: `${statPrefix}-http`,
        filter_chain_match: { application_protocols: HTTP_ALPN },
        filters: [hcm()],
      });
      http = true;
    }
    chains.push({ name: `${statPrefix}-${fallback}`, filters: tcpChainFilters(fallback, fallback) });
  }
  const listener: Json = {
    name: outboundListenerName(port),
    address: socketAddress(address, port),
    bind_to_port: false,
    traffic_direction: 'OUTBOUND',
    ...(sniff && sniffingListenerFilters()),
    filter_chains: chains,
  };
  return { listener, http };
}
