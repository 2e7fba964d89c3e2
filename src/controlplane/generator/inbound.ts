// The inbound side of capture mode: virtualInbound (15006), with a filter chain per port the proxy's own workload
// serves, and the ports themselves.

import { mtlsFor, type WorkloadMtls } from '../model/security.js';
import type { MeshSnapshot } from '../model/snapshot.js';
import { targetPortOf } from '../model/workloads.js';
import { type InboundAuthz, NO_AUTHZ } from './authz.js';
import { type InboundPort, proxiedPorts } from './clusters.js';
import type { ProxyGroup } from './identity.js';
import { PROXY_PORTS } from './listeners.js';
import { inboundMtlsSocket, MTLS_HTTP_ALPN, MTLS_TCP_ALPN, speaksMtls } from './mtls.js';
import {
  HTTP_ALPN,
  hcmFilter,
  INBOUND_HCM_FIELDS,
  INBOUND_PASSTHROUGH_CLUSTER,
  inboundClusterName,
  type Json,
  portMode,
  sniffingListenerFilters,
  socketAddress,
  TYPES,
  tcpChainFilters,
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
 * How a port's chains take TLS, from its PeerAuthentication mode: `off` plaintext only (DISABLE, or PERMISSIVE on
 * a workload without a mesh identity, which has no certificate to terminate with), `both` mTLS beside plaintext
 * (PERMISSIVE), `only` mTLS (STRICT: a plaintext connection matches no chain and is closed).
 */
export type PortTls = 'off' | 'both' | 'only';

/** The TLS of one inbound port of a workload. */
export function portTls(mtls: WorkloadMtls, port: number | undefined, speaks: boolean): PortTls {
  const mode = (port === undefined ? undefined : mtls.ports[port]) ?? mtls.mode;
  if (mode === 'STRICT') return 'only';
  return mode === 'PERMISSIVE' && speaks ? 'both' : 'off';
}

/** The mTLS of the proxy's workload: its PeerAuthentication modes, and whether it has a mesh identity. */
export function inboundMtls(
  snapshot: MeshSnapshot,
  proxy: ProxyGroup,
): { mtls: WorkloadMtls; speaks: boolean } {
  return {
    mtls: mtlsFor(snapshot.peerAuthentications, proxy.namespace, proxy.labels),
    speaks: speaksMtls(proxy.labels),
  };
}

/**
 * virtualInbound: each connection's original destination port picks its chains; HTTP ports go through an HTTP
 * connection manager (detected ports when http_inspector finds HTTP), the rest through tcp_proxy, to
 * `inbound|<port>||`; ports no Service declares pass through as TCP (InboundPassthroughCluster). Each port takes
 * mTLS as its PeerAuthentication mode says.
 */
export function virtualInbound(
  address: string,
  ports: readonly InboundPort[],
  authz = NO_AUTHZ,
  mtls: { mtls: WorkloadMtls; speaks: boolean } = { mtls: { mode: 'DISABLE', ports: {} }, speaks: false },
): Json {
  const chains: Json[] = [];
  const sniff = { http: false, tls: false };
  for (const { port, protocol } of ports) {
    const tls = portTls(mtls.mtls, port, mtls.speaks);
    const own = portChains(port, protocol, { destination_port: port }, authz, tls);
    sniff.http ||= own.sniff.http;
    sniff.tls ||= own.sniff.tls;
    chains.push(...own.chains);
  }
  const catchAll = portTls(mtls.mtls, undefined, mtls.speaks);
  const passthrough = () =>
    tcpChainFilters(INBOUND_PASSTHROUGH_CLUSTER, INBOUND_PASSTHROUGH_CLUSTER, authz.network);
  if (catchAll !== 'off') {
    sniff.tls = true;
    chains.push({
      name: 'virtualInbound-catchall-tcp-mtls',
      filter_chain_match: MTLS_MATCH,
      transport_socket: inboundMtlsSocket(),
      filters: passthrough(),
    });
  }
  if (catchAll !== 'only') chains.push({ name: 'virtualInbound-catchall-tcp', filters: passthrough() });
  const originalDst: Json = {
    name: 'envoy.filters.listener.original_dst',
    typed_config: { '@type': TYPES.originalDst },
  };
  return {
    name: VIRTUAL_INBOUND,
    address: socketAddress(address, VIRTUAL_INBOUND_PORT),
    traffic_direction: 'INBOUND',
    ...(sniff.http || sniff.tls
      ? sniffingListenerFilters([originalDst], sniff)
      : { listener_filters: [originalDst] }),
    filter_chains: chains,
  };
}

/** A mesh client's mTLS: TLS whose ClientHello offers one of the `istio` protocols. */
const MTLS_MATCH: Json = {
  transport_protocol: 'tls',
  application_protocols: [...MTLS_HTTP_ALPN, ...MTLS_TCP_ALPN],
};

/**
 * The chains of one inbound port, each matching `match` too: HTTP through an HTTP connection manager (a detected
 * port when http_inspector finds HTTP), the rest through tcp_proxy, to `inbound|<port>||`. Under mTLS, chains
 * that terminate it, told apart by the client's ALPN on a detected port (istio.alpn names HTTP), as Istio's are.
 * `sniff` says which listener filters the chains need.
 */
export function portChains(
  port: number,
  protocol: InboundPort['protocol'],
  match: Json,
  authz: InboundAuthz = NO_AUTHZ,
  tls: PortTls = 'off',
): { chains: Json[]; sniff: { http: boolean; tls: boolean } } {
  const cluster = inboundClusterName(port);
  const mode = portMode(protocol);
  const statPrefix = `inbound_0.0.0.0_${port}`;
  const http = () =>
    hcmFilter(statPrefix, { inline: inboundRouteConfig(port) }, authz.http, INBOUND_HCM_FIELDS);
  const tcp = () => tcpChainFilters(cluster, cluster, authz.network);
  const chains: Json[] = [];
  const only = (m: Json) => (Object.keys(m).length === 0 ? {} : { filter_chain_match: m });
  if (tls !== 'off') {
    const mtls = (suffix: string, alpn: readonly string[], filters: Json[]) =>
      chains.push({
        name: `${cluster}-mtls${suffix}`,
        filter_chain_match: { ...match, transport_protocol: 'tls', application_protocols: alpn },
        transport_socket: inboundMtlsSocket(),
        filters,
      });
    const all = MTLS_MATCH.application_protocols as string[];
    if (mode === 'http') mtls('', all, [http()]);
    else if (mode === 'tcp') mtls('', all, tcp());
    else {
      mtls('-http', MTLS_HTTP_ALPN, [http()]);
      mtls('', MTLS_TCP_ALPN, tcp());
    }
  }
  const sniff = { http: tls !== 'only' && mode === 'sniff', tls: tls !== 'off' };
  if (tls === 'only') return { chains, sniff };
  if (mode === 'http') chains.push({ name: cluster, ...only(match), filters: [http()] });
  else {
    if (mode === 'sniff')
      chains.push({
        name: `${cluster}-http`,
        filter_chain_match: { ...match, application_protocols: HTTP_ALPN },
        filters: [http()],
      });
    chains.push({ name: cluster, ...only(match), filters: tcp() });
  }
  return { chains, sniff };
}
