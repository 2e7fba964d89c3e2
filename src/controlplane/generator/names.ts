// The names and shared pieces of generated resources: Istio's naming, ports, type URLs, small JSON builders.

import type { MeshProtocol } from '../model/objects.js';

export type Json = Record<string, unknown>;

/** Istio's capture ports: every outbound connection arrives on 15001, every inbound one on 15006. */
export const VIRTUAL_OUTBOUND_PORT = 15001;
export const VIRTUAL_INBOUND_PORT = 15006;

export const VIRTUAL_OUTBOUND = 'virtualOutbound';
export const VIRTUAL_INBOUND = 'virtualInbound';
/** Where a connection was going before capture redirected it (ORIGINAL_DST). */
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
/** No endpoints: what the registry does not know is refused. */
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
/** To the application on the port a connection was sent to, from 127.0.0.6 / ::6 (which capture leaves alone). */
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughCluster';

/** Istio's default connect timeout, used when a DestinationRule sets none. */
export const DEFAULT_CONNECT_TIMEOUT = '10s';

const PREFIX = 'type.googleapis.com/';

export const TYPES = {
  hcm: `${PREFIX}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
  tcpProxy: `${PREFIX}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`,
  router: `${PREFIX}envoy.extensions.filters.http.router.v3.Router`,
  httpInspector: `${PREFIX}envoy.extensions.filters.listener.http_inspector.v3.HttpInspector`,
  originalDst: `${PREFIX}envoy.extensions.filters.listener.original_dst.v3.OriginalDst`,
  httpProtocolOptions: `${PREFIX}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
} as const;

const HTTP_INSPECTOR: Json = {
  name: 'envoy.filters.listener.http_inspector',
  typed_config: { '@type': TYPES.httpInspector },
};

/**
 * A listener's filters with http_inspector last, and the timing it runs under, always written out: Envoy's
 * defaults (15 s, then close) would hold a client that speaks second, and a default cannot be sent as `false`
 * over xDS. After 100 ms of silence the connection goes on to the TCP chain.
 */
export function sniffingListenerFilters(before: readonly Json[] = []): Json {
  return {
    listener_filters: [...before, HTTP_INSPECTOR],
    listener_filters_timeout: '0.100s',
    continue_on_listener_filters_timeout: true,
  };
}

/** `outbound|<port>|<subset>|<host>` (subset "" for the whole service), Istio's cluster name. */
export function outboundClusterName(port: number, subset: string | undefined, host: string): string {
  return `outbound|${port}|${subset ?? ''}|${host}`;
}

/** `inbound|<port>||`: the proxy's own workload on one of its ports. */
export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

/** The per-port outbound listener, `0.0.0.0_<port>`, Istio's name whatever address family it binds. */
export function outboundListenerName(port: number): string {
  return `0.0.0.0_${port}`;
}

/** The RouteConfiguration of an outbound port: its number. */
export function outboundRouteName(port: number): string {
  return String(port);
}

/** How the mesh carries a port's traffic: HTTP (any version), raw TCP, or detected per connection. */
export type PortMode = 'http' | 'tcp' | 'sniff';

/**
 * HTTP, HTTP2 and GRPC ports are HTTP; TCP and TLS ports are TCP. A port whose protocol is not declared (no
 * `appProtocol`, no known name prefix) is detected per connection, as Istio does: HTTP/1.x or h2c goes through
 * the HTTP connection manager, anything else is proxied as TCP.
 */
export function portMode(p: MeshProtocol): PortMode {
  switch (p) {
    case 'HTTP':
    case 'HTTP2':
    case 'GRPC':
      return 'http';
    case 'TCP':
    case 'TLS':
      return 'tcp';
    default:
      return 'sniff';
  }
}

/** The application protocols http_inspector reports for HTTP. */
export const HTTP_ALPN = ['http/1.0', 'http/1.1', 'h2c'];

export function socketAddress(address: string, port: number): Json {
  return address === '::'
    ? { socket_address: { address, port_value: port, ipv4_compat: true } }
    : { socket_address: { address, port_value: port } };
}

export function adsConfigSource(): Json {
  return { ads: {}, resource_api_version: 'V3' };
}

export function routerFilter(): Json {
  return { name: 'envoy.filters.http.router', typed_config: { '@type': TYPES.router } };
}

export function tcpProxyFilter(statPrefix: string, cluster: string): Json {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: { '@type': TYPES.tcpProxy, stat_prefix: statPrefix, cluster },
  };
}

/** An HTTP connection manager with its routes by RDS (over the same ADS stream) or inline, `filters` before the router. */
export function hcmFilter(
  statPrefix: string,
  routes: { rds: string } | { inline: Json },
  filters: readonly Json[] = [],
): Json {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': TYPES.hcm,
      stat_prefix: statPrefix,
      ...('rds' in routes
        ? { rds: { config_source: adsConfigSource(), route_config_name: routes.rds } }
        : { route_config: routes.inline }),
      http_filters: [...filters, routerFilter()],
      upgrade_configs: [{ upgrade_type: 'websocket' }],
    },
  };
}

/** A CIDR range of one address (`/32` or `/128`). */
export function hostRange(ip: string): Json {
  return { address_prefix: ip, prefix_len: ip.includes(':') ? 128 : 32 };
}
