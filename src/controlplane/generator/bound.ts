// Listeners without capture (Istio's interception mode NONE): the application dials the proxy itself, so every
// listener binds a real address — an outbound listener per service port on the proxy's bind address, and one
// inbound listener in front of the workload — and there is no virtualOutbound or virtualInbound.

import type { MeshSnapshot } from '../model/snapshot.js';
import { authzFor, type InboundAuthz } from './authz.js';
import { localInboundCluster } from './clusters.js';
import type { BoundListeners, ProxyGroup } from './identity.js';
import { inboundMtls, inboundPorts, type PortTls, portChains, portTls } from './inbound.js';
import { outboundHttpFilters, type PortServices, servicesByPort } from './listeners.js';
import {
  BLACKHOLE_CLUSTER,
  DEFAULT_CONNECT_TIMEOUT,
  HTTP_ALPN,
  hcmFilter,
  type Json,
  outboundClusterName,
  outboundRouteName,
  portMode,
  sniffingListenerFilters,
  socketAddress,
  tcpChainFilters,
} from './names.js';
import { outboundRouteConfig } from './route_config.js';
import type { ProxyScope } from './scope.js';

/**
 * The listeners, routes and clusters (outbound EDS clusters aside) of a proxy without capture. A connection to a
 * bound listener has no original destination to pass through to (it would come back to the listener itself), so
 * hosts the mesh does not know are refused (`block_all`, BlackHoleCluster) whatever the outboundTrafficPolicy.
 */
export function planBound(
  snapshot: MeshSnapshot,
  scope: ProxyScope,
  proxy: ProxyGroup,
  bound: BoundListeners,
): { listeners: Json[]; routes: Json[]; clusters: Json[] } {
  const registryOnly: ProxyScope = { ...scope, outboundPolicy: 'REGISTRY_ONLY' };
  const listeners: Json[] = [];
  const routes: Json[] = [];
  for (const onPort of servicesByPort(scope)) {
    const filters = outboundHttpFilters(snapshot, onPort);
    const { listener, http } = boundOutboundListener(bound.outboundBindAddress, onPort, filters);
    listeners.push(listener);
    if (!http) continue;
    const services = onPort.entries
      .filter((e) => portMode(e.port.meshProtocol) !== 'tcp')
      .map((e) => e.service);
    routes.push(outboundRouteConfig(snapshot, registryOnly, services, onPort.port, proxy.namespace));
  }
  const clusters: Json[] = [
    { name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: DEFAULT_CONNECT_TIMEOUT },
  ];
  const [first] = inboundPorts(snapshot, scope, proxy);
  if (bound.inbound !== undefined && first !== undefined) {
    const { mtls, speaks } = inboundMtls(snapshot, proxy);
    const tls = portTls(mtls, first.port, speaks);
    listeners.push(
      boundInboundListener(bound.inbound.address, bound.inbound.port, first, authzFor(snapshot, proxy), tls),
    );
    clusters.push(localInboundCluster(first));
  }
  return { listeners, routes, clusters };
}

/**
 * `<address>_<port>`, bound. The destination address is the listener's own, so chains cannot tell services apart
 * by cluster IP: a port with an HTTP service routes every connection by Host (RDS `<port>`); otherwise HTTP is
 * detected when the port has a detected service, and the rest goes by tcp_proxy to the first non-HTTP service of
 * the port (by hostname) — two TCP services sharing a port number need distinct ports to be told apart.
 */
export function boundOutboundListener(
  address: string,
  group: PortServices,
  httpFilters: readonly Json[] = [],
): { listener: Json; http: boolean } {
  const { port } = group;
  const name = `${address}_${port}`;
  const statPrefix = `outbound_${name}`;
  const hcm = () => hcmFilter(statPrefix, { rds: outboundRouteName(port) }, httpFilters);
  const modes = group.entries.map((e) => portMode(e.port.meshProtocol));
  const sniff = modes.includes('sniff');
  const chains: Json[] = [];
  if (modes.includes('http')) chains.push({ name: `${statPrefix}-http`, filters: [hcm()] });
  else {
    if (sniff)
      chains.push({
        name: `${statPrefix}-http`,
        filter_chain_match: { application_protocols: HTTP_ALPN },
        filters: [hcm()],
      });
    const tcp = group.entries.find((e) => portMode(e.port.meshProtocol) !== 'http');
    const cluster = tcp ? outboundClusterName(port, undefined, tcp.service.hostname) : BLACKHOLE_CLUSTER;
    chains.push({ name: cluster, filters: tcpChainFilters(cluster, cluster) });
  }
  const listener: Json = {
    name,
    address: socketAddress(address, port),
    bind_to_port: true,
    traffic_direction: 'OUTBOUND',
    ...(sniff && !modes.includes('http') && sniffingListenerFilters()),
    filter_chains: chains,
  };
  return { listener, http: sniff || modes.includes('http') };
}

/** `inbound_<address>_<port>`: bound where the node asked, to the workload's port (its first, when it has several). */
export function boundInboundListener(
  address: string,
  port: number,
  target: { readonly port: number; readonly protocol: Parameters<typeof portChains>[1] },
  authz: InboundAuthz,
  tls: PortTls = 'off',
): Json {
  const { chains, sniff } = portChains(target.port, target.protocol, {}, authz, tls);
  return {
    name: `inbound_${address}_${port}`,
    address: socketAddress(address, port),
    traffic_direction: 'INBOUND',
    ...((sniff.http || sniff.tls) && sniffingListenerFilters([], sniff)),
    filter_chains: chains,
  };
}
