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
  tlsInspector: `${PREFIX}envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector`,
  upstreamTls: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
  downstreamTls: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
  rawBuffer: `${PREFIX}envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer`,
  alpn: `${PREFIX}istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig`,
  istioStats: `${PREFIX}stats.PluginConfig`,
} as const;

const HTTP_INSPECTOR: Json = {
  name: 'envoy.filters.listener.http_inspector',
  typed_config: { '@type': TYPES.httpInspector },
};

const TLS_INSPECTOR: Json = {
  name: 'envoy.filters.listener.tls_inspector',
  typed_config: { '@type': TYPES.tlsInspector },
};

/**
 * A listener's filters with tls_inspector (when `tls`: chains told apart by TLS and its ALPN) and http_inspector
 * (when `http`) last, and the timing they run under, always written out: Envoy's defaults (15 s, then close) would
 * hold a client that speaks second, and a default cannot be sent as `false` over xDS. After 100 ms of silence the
 * connection goes on to a plaintext TCP chain.
 */
export function sniffingListenerFilters(
  before: readonly Json[] = [],
  sniff: { readonly tls?: boolean; readonly http?: boolean } = { http: true },
): Json {
  return {
    listener_filters: [
      ...before,
      ...(sniff.tls === true ? [TLS_INSPECTOR] : []),
      ...(sniff.http === true ? [HTTP_INSPECTOR] : []),
    ],
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

/**
 * Istio's standard metrics (istio_requests_total, istio_tcp_*): in every sidecar connection manager and TCP chain,
 * the reporter told by the listener's traffic direction.
 */
export function istioStatsFilter(): Json {
  return { name: 'istio.stats', typed_config: { '@type': TYPES.istioStats } };
}

/** A TCP chain's filters: `before` (network RBAC), Istio's metrics, then tcp_proxy to `cluster`. */
export function tcpChainFilters(statPrefix: string, cluster: string, before: readonly Json[] = []): Json[] {
  return [...before, istioStatsFilter(), tcpProxyFilter(statPrefix, cluster)];
}

export function tcpProxyFilter(statPrefix: string, cluster: string): Json {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: { '@type': TYPES.tcpProxy, stat_prefix: statPrefix, cluster },
  };
}

/**
 * An HTTP connection manager with its routes by RDS (over the same ADS stream) or inline, `filters`, then Istio's
 * metrics and the router; `extra` fields of its own.
 */
export function hcmFilter(
  statPrefix: string,
  routes: { rds: string } | { inline: Json },
  filters: readonly Json[] = [],
  extra: Json = {},
): Json {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': TYPES.hcm,
      stat_prefix: statPrefix,
      ...('rds' in routes
        ? { rds: { config_source: adsConfigSource(), route_config_name: routes.rds } }
        : { route_config: routes.inline }),
      http_filters: [...filters, istioStatsFilter(), routerFilter()],
      upgrade_configs: [{ upgrade_type: 'websocket' }],
      ...extra,
    },
  };
}

/**
 * Istio's inbound connection managers: the application is told who called (x-forwarded-client-cert with the
 * caller's SPIFFE ID when it came over mTLS), and a header a client forged is never passed on.
 */
export const INBOUND_HCM_FIELDS: Json = Object.freeze({
  forward_client_cert_details: 'APPEND_FORWARD',
  set_current_client_cert_details: Object.freeze({ subject: true, dns: true, uri: true }),
});

/** A CIDR range of one address (`/32` or `/128`). */
export function hostRange(ip: string): Json {
  return { address_prefix: ip, prefix_len: ip.includes(':') ? 128 : 32 };
}
