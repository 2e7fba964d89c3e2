// The cluster part of the validated configuration (config/cluster.ts makes it): load balancing, endpoints,
// circuit breakers, transport sockets.

import type { AdsSourceConfig, Http2Options, SocketAddress, UpstreamTlsConfig } from '../model.js';

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';
export type DnsLookupFamily = 'AUTO' | 'V4_ONLY' | 'V6_ONLY' | 'V4_PREFERRED' | 'ALL';

/**
 * An endpoint's health_status as Envoy reduces it: UNKNOWN is HEALTHY; DRAINING and TIMEOUT are UNHEALTHY (a control
 * plane's verdict, e.g. a pod not ready or terminating). An UNHEALTHY host gets traffic only when its priority level
 * is in panic; a DEGRADED one only when the healthy hosts cannot carry the load (see upstream/lb/priority_load.ts).
 */
export type EndpointHealth = 'HEALTHY' | 'DEGRADED' | 'UNHEALTHY';

/**
 * core.v3.Metadata's filter_metadata: a Struct (as plain JSON, keys as written) per filter name. The one key the
 * data plane reads is `envoy.transport_socket_match` (see transport_socket_matches).
 */
export type FilterMetadata = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

export interface EndpointConfig {
  readonly address: SocketAddress;
  /** load_balancing_weight, default 1. */
  readonly weight: number;
  readonly hostname: string | undefined;
  readonly health: EndpointHealth;
  /** The LbEndpoint's metadata; absent when it has none. */
  readonly metadata?: FilterMetadata;
}

export interface LocalityEndpointsConfig {
  readonly priority: number;
  /** load_balancing_weight of the locality; undefined when unset. */
  readonly weight: number | undefined;
  readonly endpoints: readonly EndpointConfig[];
  /** The LocalityLbEndpoints' metadata; absent when it has none. */
  readonly metadata?: FilterMetadata;
}

/**
 * One of a cluster's transport_socket_matches: the transport socket of the hosts whose
 * filter_metadata["envoy.transport_socket_match"] holds every key of `match` with an equal value.
 */
export interface TransportSocketMatchConfig {
  /** Unique within the cluster; names its stats (`cluster.<name>.<match name>.total_match_count`). */
  readonly name: string;
  /** A Struct as plain JSON; {} matches every host. */
  readonly match: Readonly<Record<string, unknown>>;
  /** TLS origination (UpstreamTlsContext); undefined = plaintext (raw_buffer). */
  readonly tls: UpstreamTlsConfig | undefined;
}

export interface CircuitBreakerThresholds {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
}

/** An ORIGINAL_DST cluster's settings (original_dst_lb_config, cleanup_interval). */
export interface OriginalDstClusterConfig {
  /** Hosts unused for this long are dropped (with their pools); default 5 s. */
  readonly cleanupIntervalMs: number;
  /** use_http_header: the request header `httpHeaderName` ("ip:port") names the host, over the connection's. */
  readonly useHttpHeader: boolean;
  readonly httpHeaderName: string;
  readonly upstreamPortOverride: number | undefined;
}

/** An EDS cluster's eds_cluster_config. */
export interface EdsClusterConfig {
  /** service_name, else the cluster's name: the ClusterLoadAssignment it subscribes to. */
  readonly serviceName: string;
  readonly configSource: AdsSourceConfig;
}

/** One drop_overloads category: that share of requests is refused before a host is chosen. */
export interface DropOverloadConfig {
  readonly category: string;
  /** drop_percentage in parts per million (a FractionalPercent over any denominator, capped at 100 %). */
  readonly perMillion: number;
}

/** A ClusterLoadAssignment's policy. */
export interface LoadAssignmentPolicy {
  /** overprovisioning_factor in percent; default 140. */
  readonly overprovisioningFactor: number;
  /** drop_overloads: at most one category (as in Envoy); undefined = drop nothing. */
  readonly dropOverload: DropOverloadConfig | undefined;
  /** endpoint_stale_after, EDS only: without a new assignment in this time the endpoints are removed. */
  readonly endpointStaleAfterMs: number | undefined;
  /** weighted_priority_health: a level's health counts host weights rather than hosts. */
  readonly weightedPriorityHealth: boolean;
}

/** A ClusterLoadAssignment (an EDS resource). */
export interface ClusterLoadAssignmentConfig {
  readonly clusterName: string;
  readonly localities: readonly LocalityEndpointsConfig[];
  readonly policy: LoadAssignmentPolicy;
}

export interface ClusterConfig {
  readonly name: string;
  /**
   * ORIGINAL_DST: each connection goes where it was going before it was redirected to the proxy. EDS: the hosts
   * come from ClusterLoadAssignments over ADS.
   */
  readonly type: 'STATIC' | 'STRICT_DNS' | 'ORIGINAL_DST' | 'EDS';
  /** Default 5000. */
  readonly connectTimeoutMs: number;
  /** CLUSTER_PROVIDED for ORIGINAL_DST clusters (which pick their host themselves). */
  readonly lbPolicy: LbPolicy | 'CLUSTER_PROVIDED';
  readonly localities: readonly LocalityEndpointsConfig[];
  /** load_assignment.policy (defaults when absent); an EDS cluster takes each assignment's own. */
  readonly loadAssignmentPolicy: LoadAssignmentPolicy;
  /** Present for ORIGINAL_DST clusters. */
  readonly originalDst?: OriginalDstClusterConfig;
  /** Present for EDS clusters (eds_cluster_config). */
  readonly eds?: EdsClusterConfig;
  /** upstream_bind_config: source IPs of upstream connections, at most one per family; empty = the system's choice. */
  readonly upstreamBindAddresses: readonly string[];
  /** DEFAULT priority thresholds (1024/1024/1024/3 when unset). */
  readonly circuitBreakers: CircuitBreakerThresholds;
  /** Default 5000. */
  readonly dnsRefreshRateMs: number;
  readonly dnsLookupFamily: DnsLookupFamily;
  readonly ringHash: { readonly minimumRingSize: number; readonly maximumRingSize: number };
  readonly maglev: { readonly tableSize: number };
  readonly leastRequest: { readonly choiceCount: number };
  /** common_http_protocol_options.idle_timeout for upstream connections; default 1h. */
  readonly upstreamIdleTimeoutMs: number;
  /** common_http_protocol_options.max_requests_per_connection; 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
  readonly perConnectionBufferLimitBytes: number;
  /**
   * The protocol spoken to the hosts: HTTP1, HTTP2 (explicit_http_config or the legacy http2_protocol_options),
   * or DOWNSTREAM (use_downstream_protocol_config: the protocol the request arrived with).
   */
  readonly upstreamProtocol: 'HTTP1' | 'HTTP2' | 'DOWNSTREAM';
  readonly http2: Http2Options;
  /** transport_socket: TLS origination (UpstreamTlsContext); absent = plaintext (no transport_socket, or raw_buffer). */
  readonly tls?: UpstreamTlsConfig;
  /**
   * transport_socket_matches, in order: a host takes the first whose match its endpoint metadata satisfies, else
   * the first its locality metadata satisfies, else `tls` (Envoy's order). Absent when there are none.
   */
  readonly transportSocketMatches?: readonly TransportSocketMatchConfig[];
}
