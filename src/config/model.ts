// The validated, typed configuration the data plane runs on: produced from Envoy v3 resources by config/translate.
// Field names are camelCase versions of Envoy's; every default is already applied, durations are milliseconds.

import type { ForwardClientCertConfig } from './client_cert_details.js';
import type { ClusterConfig } from './model/cluster.js';
import type { HttpRbacConfig, NetworkRbacConfig } from './model/rbac.js';
import type { RouteConfig, WeightedClusterConfig } from './model/route.js';
import type { DownstreamTlsConfig, SecretConfig } from './model/tls.js';

// The cluster, RBAC, route and TLS parts live in model/; importers take every type from here.
export type * from './model/cluster.js';
export type * from './model/rbac.js';
export type * from './model/route.js';
export type * from './model/tls.js';

export interface SocketAddress {
  readonly address: string;
  readonly port: number;
  /** ipv4_compat: a listener on an IPv6 address takes IPv4 connections too (Envoy's default is IPv6 only). */
  readonly ipv4Compat?: boolean;
}

export interface NodeInfo {
  readonly id: string;
  readonly cluster: string;
  readonly metadata: Readonly<Record<string, unknown>>;
}

export interface AdminConfig {
  readonly address: SocketAddress;
  readonly accessLogPath: string | undefined;
}

export interface Bootstrap {
  readonly node: NodeInfo;
  /** 127.0.0.1:15000 when the bootstrap has no `admin` block. */
  readonly admin: AdminConfig;
  readonly listeners: readonly ListenerConfig[];
  readonly clusters: readonly ClusterConfig[];
  /** dynamic_resources: the ADS server and the types it provides; absent for a static bootstrap. */
  readonly dynamicResources?: DynamicResourcesConfig;
  /** static_resources.secrets, for SdsSecretConfigs without sds_config; absent when there are none. */
  readonly secrets?: readonly SecretConfig[];
}

// ---------------------------------------------------------------- dynamic resources (xDS)

/** Where the ADS client connects: a cluster of the bootstrap (envoy_grpc) or a gRPC target URI (google_grpc). */
export type XdsServerConfig =
  | { readonly kind: 'envoy_grpc'; readonly clusterName: string }
  | { readonly kind: 'google_grpc'; readonly targetUri: string };

/** dynamic_resources.ads_config (ApiConfigSource of api_type GRPC or DELTA_GRPC). */
export interface AdsConfig {
  /** GRPC: state of the world; DELTA_GRPC: incremental. */
  readonly apiType: 'GRPC' | 'DELTA_GRPC';
  /** grpc_services, in order: after a failure the client moves on to the next one. */
  readonly servers: readonly XdsServerConfig[];
}

/** A ConfigSource that names ADS (`ads: {}`), the only kind supported. */
export interface AdsSourceConfig {
  /** initial_fetch_timeout: how long a resource is waited for before it is treated as absent; 15000; 0 = forever. */
  readonly initialFetchTimeoutMs: number;
}

export interface DynamicResourcesConfig {
  readonly ads: AdsConfig | undefined;
  /** lds_config: listeners come from LDS (a wildcard subscription); undefined: only static listeners. */
  readonly lds: AdsSourceConfig | undefined;
  /** cds_config: clusters come from CDS (a wildcard subscription); undefined: only static clusters. */
  readonly cds: AdsSourceConfig | undefined;
}

// ---------------------------------------------------------------- listeners

export interface ListenerConfig {
  readonly name: string;
  readonly address: SocketAddress;
  readonly filterChains: readonly FilterChainConfig[];
  /** default_filter_chain: for connections no chain matches; undefined closes them. */
  readonly defaultFilterChain: FilterChainConfig | undefined;
  readonly perConnectionBufferLimitBytes: number;
  /** listener_filters, in order: they read a connection's first bytes before a filter chain is chosen. */
  readonly listenerFilters: readonly ListenerFilterConfig[];
  /** listener_filters_timeout; 100 when unset (Envoy: 15000); 0 = no timeout. */
  readonly listenerFiltersTimeoutMs: number;
  /** continue_on_listener_filters_timeout; false when unset, as in Envoy. */
  readonly continueOnListenerFiltersTimeout: boolean;
  /**
   * Destination ports of server-first protocols: their connections skip the listener filters, since the client
   * waits for the server's greeting. metadata.filter_metadata.remora.server_first_ports, else a default list.
   */
  readonly serverFirstPorts: readonly number[];
  /** original_dst listener filter (or use_original_dst): the destination is restored from SO_ORIGINAL_DST. */
  readonly originalDst: boolean;
  /** use_original_dst: a redirected connection goes to the listener of its original destination, if there is one. */
  readonly useOriginalDst: boolean;
  /** bind_to_port; false: the listener only takes connections handed off by a use_original_dst listener. */
  readonly bindToPort: boolean;
  readonly trafficDirection: 'UNSPECIFIED' | 'INBOUND' | 'OUTBOUND';
}

export type ListenerFilterConfig =
  | {
      readonly kind: 'tls_inspector';
      readonly name: string;
      readonly filterDisabled: ListenerFilterPredicate | undefined;
      /** max_client_hello_size; 65536 when unset. */
      readonly maxClientHelloSize: number;
      /** close_connection_on_client_hello_parsing_errors; false when unset. */
      readonly closeOnParsingErrors: boolean;
    }
  | {
      readonly kind: 'http_inspector';
      readonly name: string;
      readonly filterDisabled: ListenerFilterPredicate | undefined;
    };

/** ListenerFilterChainMatchPredicate: when it matches a connection, the listener filter is skipped. */
export type ListenerFilterPredicate =
  | { readonly kind: 'any' }
  | { readonly kind: 'or' | 'and'; readonly rules: readonly ListenerFilterPredicate[] }
  | { readonly kind: 'not'; readonly rule: ListenerFilterPredicate }
  /** Destination ports in [start, end). */
  | { readonly kind: 'destination_port_range'; readonly start: number; readonly end: number };

/** core.v3.CidrRange, canonical: the address with the bits past the prefix cleared. */
export interface CidrRangeConfig {
  readonly addressPrefix: string;
  readonly prefixLen: number;
}

export type ConnectionSourceType = 'ANY' | 'SAME_IP_OR_LOOPBACK' | 'EXTERNAL';

/** Envoy's FilterChainMatch; an empty list or undefined value matches anything. */
export interface FilterChainMatch {
  /** destination_port; undefined matches any. */
  readonly destinationPort: number | undefined;
  /** prefix_ranges: destination IP. */
  readonly prefixRanges: readonly CidrRangeConfig[];
  /** server_names, lower-cased: exact names and `*.suffix` wildcards. */
  readonly serverNames: readonly string[];
  /** transport_protocol: "" matches any; tls_inspector detects "tls" or "raw_buffer". */
  readonly transportProtocol: string;
  /** application_protocols: ALPN from tls_inspector, or http/1.0, http/1.1, h2c from http_inspector. */
  readonly applicationProtocols: readonly string[];
  /** direct_source_prefix_ranges: the peer's IP (the same as the source without a PROXY protocol filter). */
  readonly directSourcePrefixRanges: readonly CidrRangeConfig[];
  readonly sourceType: ConnectionSourceType;
  readonly sourcePrefixRanges: readonly CidrRangeConfig[];
  readonly sourcePorts: readonly number[];
}

export interface FilterChainConfig {
  readonly name: string;
  readonly match: FilterChainMatch;
  /** The terminal network filter of the chain: the last one of `filters`. */
  readonly filter: NetworkFilterConfig;
  /** envoy.filters.network.rbac filters before the terminal one, in order; absent when there are none. */
  readonly rbac?: readonly NetworkRbacConfig[];
  /** transport_socket: TLS termination (DownstreamTlsContext); absent = plaintext (no transport_socket, or raw_buffer). */
  readonly tls?: DownstreamTlsConfig;
  /** Istio's istio.stats network filter, when the chain has one (at most one). */
  readonly istioStats?: NetworkIstioStatsConfig;
}

/** istio.stats as a network filter: Istio's TCP metrics for each connection of the chain. */
export interface NetworkIstioStatsConfig extends IstioStatsConfig {
  /** How many of the chain's RBAC filters come before it: connections they reject are counted too. */
  readonly afterRbac: number;
}

export type NetworkFilterConfig =
  | { readonly kind: 'http_connection_manager'; readonly hcm: HcmConfig }
  | { readonly kind: 'tcp_proxy'; readonly tcpProxy: TcpProxyConfig };

export interface TcpProxyConfig {
  readonly statPrefix: string;
  /** Weighted list; a plain `cluster` becomes a single entry of weight 1. */
  readonly clusters: readonly WeightedClusterConfig[];
  readonly totalWeight: number;
  /** 0 disables. Envoy default 1h. */
  readonly idleTimeoutMs: number;
  readonly accessLogs: readonly AccessLogConfig[];
  readonly maxConnectAttempts: number;
}

export type ServerHeaderTransformation = 'OVERWRITE' | 'APPEND_IF_ABSENT' | 'PASS_THROUGH';

export interface HcmConfig {
  readonly statPrefix: string;
  /** AUTO: HTTP/2 when ALPN says h2 or the connection opens with the HTTP/2 preface, HTTP/1.1 otherwise. */
  readonly codecType: 'AUTO' | 'HTTP1' | 'HTTP2';
  readonly http2: Http2Options;
  /** route_config: the inline route table; undefined when the routes come from RDS (`rds`). */
  readonly routeConfig: RouteConfig | undefined;
  /** rds: the route table is the RouteConfiguration of this name, from RDS over ADS. */
  readonly rds?: RdsConfig;
  readonly httpFilters: readonly HttpFilterConfig[];
  readonly accessLogs: readonly AccessLogConfig[];
  /** request_headers_timeout; 0 = disabled (Envoy default). */
  readonly requestHeadersTimeoutMs: number;
  /** stream_idle_timeout; default 5 min; 0 disables. */
  readonly streamIdleTimeoutMs: number;
  /** request_timeout; 0 = disabled (default). */
  readonly requestTimeoutMs: number;
  /** common_http_protocol_options.idle_timeout: downstream connection idle; default 1h; 0 disables. */
  readonly idleTimeoutMs: number;
  /** max_request_headers_kb; default 60. */
  readonly maxRequestHeadersKb: number;
  /** common_http_protocol_options.max_headers_count; default 100. */
  readonly maxHeadersCount: number;
  readonly useRemoteAddress: boolean;
  readonly skipXffAppend: boolean;
  /** generate_request_id; default true. */
  readonly generateRequestId: boolean;
  readonly preserveExternalRequestId: boolean;
  /** server_name; default "envoy" in Envoy, "remora" here. */
  readonly serverName: string;
  readonly serverHeaderTransformation: ServerHeaderTransformation;
  /** drain_timeout; default 5s. */
  readonly drainTimeoutMs: number;
  /** delayed_close_timeout; default 1s. */
  readonly delayedCloseTimeoutMs: number;
  /** http_protocol_options.accept_http_10; default false (HTTP/1.0 requests get 426), as in Envoy. */
  readonly acceptHttp10: boolean;
  /** http_protocol_options.default_host_for_http_10: the authority of HTTP/1.0 requests without Host. */
  readonly defaultHostForHttp10: string | undefined;
  /** upgrade_configs: upgrades (WebSocket ...) tunnelled unless a route says otherwise; empty = none. */
  readonly upgradeConfigs: readonly UpgradeConfig[];
  /** forward_client_cert_details / set_current_client_cert_details: the x-forwarded-client-cert header. */
  readonly forwardClientCert: ForwardClientCertConfig;
}

/** One upgrade_configs entry (HCM or route level). */
export interface UpgradeConfig {
  /** The Upgrade header value it applies to, lower-cased (matching is case-insensitive). */
  readonly upgradeType: string;
  /** Default true. */
  readonly enabled: boolean;
}

/** Http2ProtocolOptions, defaults applied (config/http2.ts). */
export interface Http2Options {
  readonly maxConcurrentStreams: number;
  readonly initialStreamWindowSize: number;
  readonly initialConnectionWindowSize: number;
  readonly hpackTableSize: number;
  readonly maxOutboundFrames: number;
  readonly maxOutboundControlFrames: number;
  readonly maxConsecutiveInboundFramesWithEmptyPayload: number;
  readonly maxInboundPriorityFramesPerStream: number;
  readonly maxInboundWindowUpdateFramesPerDataFrameSent: number;
}

export interface RdsConfig {
  readonly routeConfigName: string;
  readonly configSource: AdsSourceConfig;
}

export interface HttpFilterConfig {
  readonly name: string;
  /** Type URL of typed_config, e.g. type.googleapis.com/envoy.extensions.filters.http.router.v3.Router */
  readonly typeUrl: string;
  /** Present for envoy.filters.http.rbac (its typed_config); the router has no settings. */
  readonly rbac?: HttpRbacConfig;
  /** Present for Istio's istio.stats (typed_config stats.PluginConfig). */
  readonly istioStats?: IstioStatsConfig;
  /** Present for Istio's istio.alpn filter (its typed_config). */
  readonly alpn?: AlpnFilterConfig;
}

/**
 * Istio's istio.alpn filter (istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig): the ALPN a request's
 * upstream TLS connection offers, by the protocol the request goes upstream with. A protocol without an entry (or
 * with an empty list) keeps the TLS context's own alpn_protocols.
 */
export interface AlpnFilterConfig {
  readonly http10: readonly string[] | undefined;
  readonly http11: readonly string[] | undefined;
  readonly http2: readonly string[] | undefined;
}

// ---------------------------------------------------------------- Istio's standard metrics (config/istio_stats.ts)

/** Istio's standard metrics, by the names its stats.PluginConfig uses (without the `istio_` prefix). */
export type IstioMetricName =
  | 'requests_total'
  | 'request_duration_milliseconds'
  | 'request_bytes'
  | 'response_bytes'
  | 'request_messages_total'
  | 'response_messages_total'
  | 'tcp_connections_opened_total'
  | 'tcp_connections_closed_total'
  | 'tcp_sent_bytes_total'
  | 'tcp_received_bytes_total';

/** The typed_config of istio.stats (Istio's stats.PluginConfig), HTTP or network filter. */
export interface IstioStatsConfig {
  /**
   * reporter: UNSPECIFIED takes the listener's traffic_direction (INBOUND reports as `destination`, anything else
   * as `source`); SERVER_GATEWAY reports as `waypoint`.
   */
  readonly reporter: 'UNSPECIFIED' | 'SERVER_GATEWAY';
  /** disable_host_header_fallback: destination_service never comes from the Host header. */
  readonly disableHostHeaderFallback: boolean;
  /** tcp_reporting_duration: how often an open connection's bytes are reported; default 5000; 0 = at close only. */
  readonly tcpReportingDurationMs: number;
  /** metrics[].drop: these metrics are not reported. */
  readonly dropped: readonly IstioMetricName[];
  /** metrics[].tags_to_remove: labels left off, per metric. */
  readonly tagsRemoved: Readonly<Partial<Record<IstioMetricName, readonly string[]>>>;
}

// ---------------------------------------------------------------- access logs

export type AccessLogFormat =
  | { readonly kind: 'text'; readonly template: string }
  | { readonly kind: 'json'; readonly fields: Readonly<Record<string, unknown>> };

export interface AccessLogConfig {
  readonly name: string;
  readonly sink:
    | { readonly kind: 'stdout' }
    | { readonly kind: 'stderr' }
    | { readonly kind: 'file'; readonly path: string };
  readonly format: AccessLogFormat;
}
