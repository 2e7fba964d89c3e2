// Clusters: one EDS cluster per service port and per DestinationRule subset (Istio's names), the passthrough and
// black-hole clusters of capture mode, and the inbound clusters of the proxy's own workload.

import type { ConnectionPool, Labels, LoadBalancer, ServicePort, TrafficPolicy } from '../model/objects.js';
import type { MeshSnapshot, Service } from '../model/snapshot.js';
import type { ProxyGroup } from './identity.js';
import {
  identitySans,
  istioMutualSocket,
  outboundSni,
  outboundTransportSocketMatches,
  type ServiceIdentities,
  serviceIdentities,
} from './mtls.js';
import {
  adsConfigSource,
  BLACKHOLE_CLUSTER,
  DEFAULT_CONNECT_TIMEOUT,
  INBOUND_PASSTHROUGH_CLUSTER,
  inboundClusterName,
  type Json,
  outboundClusterName,
  PASSTHROUGH_CLUSTER,
  portMode,
  TYPES,
} from './names.js';
import { destinationRuleFor, type ProxyScope } from './scope.js';

/** An EDS cluster and what its ClusterLoadAssignment is made of. */
export interface EdsTarget {
  readonly cluster: string;
  readonly service: Service;
  readonly port: ServicePort;
  /** A subset's labels; undefined for the whole service. */
  readonly subsetLabels: Labels | undefined;
}

/** One inbound port of the proxy's workload. */
export interface InboundPort {
  readonly port: number;
  readonly protocol: ServicePort['meshProtocol'];
}

/** Service ports a sidecar can carry: TCP only (UDP and SCTP are never captured). */
export function proxiedPorts(service: Service): ServicePort[] {
  return service.ports.filter((p) => p.protocol === 'TCP');
}

/** The outbound EDS clusters of the scope, with what their endpoints are made of. */
export function outboundClusters(
  snapshot: MeshSnapshot,
  scope: ProxyScope,
  proxy: ProxyGroup,
): { clusters: Json[]; targets: EdsTarget[] } {
  const clusters: Json[] = [];
  const targets: EdsTarget[] = [];
  for (const service of scope.services) {
    const dr = destinationRuleFor(snapshot, service, proxy.namespace);
    const ids = serviceIdentities(snapshot, service);
    for (const port of proxiedPorts(service)) {
      const name = outboundClusterName(port.port, undefined, service.hostname);
      const mtls = { ids, sni: outboundSni(port.port, undefined, service.hostname) };
      clusters.push(edsCluster(name, port, dr?.trafficPolicy, proxy, mtls));
      targets.push({ cluster: name, service, port, subsetLabels: undefined });
      for (const subset of dr?.subsets ?? []) {
        const subsetName = outboundClusterName(port.port, subset.name, service.hostname);
        const policy = mergePolicy(dr?.trafficPolicy, subset.trafficPolicy);
        const sni = outboundSni(port.port, subset.name, service.hostname);
        clusters.push(edsCluster(subsetName, port, policy, proxy, { ids, sni }));
        targets.push({ cluster: subsetName, service, port, subsetLabels: subset.labels });
      }
    }
  }
  return { clusters, targets };
}

/** Istio's rule: a subset's setting replaces the rule's (loadBalancer, connectionPool and tls each as a whole). */
function mergePolicy(
  base: TrafficPolicy | undefined,
  subset: TrafficPolicy | undefined,
): TrafficPolicy | undefined {
  if (subset === undefined) return base;
  const tls = subset.tls ?? base?.tls;
  return {
    loadBalancer: subset.loadBalancer ?? base?.loadBalancer,
    connectionPool: subset.connectionPool ?? base?.connectionPool,
    ...(tls !== undefined && { tls }),
  };
}

/**
 * An outbound EDS cluster. Toward a service whose workloads speak mTLS, a sidecar's cluster carries Istio's
 * transport socket matches (its endpoints say which of them speak it), unless a DestinationRule's `tls` decides:
 * DISABLE plaintext, ISTIO_MUTUAL mTLS to every endpoint. Proxyless gRPC clients get plaintext.
 */
function edsCluster(
  name: string,
  port: ServicePort,
  policy: TrafficPolicy | undefined,
  proxy: ProxyGroup,
  mtls: { ids: ServiceIdentities; sni: string },
): Json {
  const pool = policy?.connectionPool;
  const cluster: Json = {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: adsConfigSource(), service_name: name },
    connect_timeout: durationJson(pool?.tcp?.connectTimeoutMs) ?? DEFAULT_CONNECT_TIMEOUT,
    ...loadBalancing(policy?.loadBalancer, proxy.kind === 'grpc'),
  };
  const breakers = circuitBreakers(pool);
  if (breakers !== undefined) cluster.circuit_breakers = breakers;
  // A proxyless gRPC client always speaks HTTP/2 and reads none of this.
  if (proxy.kind === 'sidecar') {
    const options = protocolOptions(port.meshProtocol, pool?.http?.maxRequestsPerConnection);
    if (options !== undefined) cluster.typed_extension_protocol_options = options;
    const tls = policy?.tls;
    if (tls?.mode === 'ISTIO_MUTUAL') {
      const sans = tls.subjectAltNames ?? identitySans(mtls.ids, proxy.trustDomain);
      cluster.transport_socket = istioMutualSocket(sans, tls.sni ?? mtls.sni);
    } else if (tls === undefined && mtls.ids.mtls)
      cluster.transport_socket_matches = outboundTransportSocketMatches(
        mtls.ids,
        mtls.sni,
        proxy.trustDomain,
      );
  }
  return cluster;
}

/**
 * lb_policy and its settings. Proxyless gRPC clients implement ROUND_ROBIN and RING_HASH only: a consistent hash
 * becomes RING_HASH for them, any other policy ROUND_ROBIN.
 */
function loadBalancing(lb: LoadBalancer | undefined, grpc: boolean): Json {
  // ROUND_ROBIN is the proto3 default: left unwritten, so the JSON is what a proxy decodes.
  if (lb === undefined || (lb.kind === 'simple' && (grpc || lb.simple === 'ROUND_ROBIN'))) return {};
  if (lb.kind === 'simple') return { lb_policy: lb.simple };
  const algo = lb.algorithm;
  if (algo.kind === 'maglev' && !grpc) {
    return {
      lb_policy: 'MAGLEV',
      // uint64 fields are strings in proto3 JSON.
      ...(algo.tableSize !== undefined && { maglev_lb_config: { table_size: String(algo.tableSize) } }),
    };
  }
  const min = algo.kind === 'ringHash' ? algo.minimumRingSize : undefined;
  return {
    lb_policy: 'RING_HASH',
    ...(min !== undefined && { ring_hash_lb_config: { minimum_ring_size: String(min) } }),
  };
}

/** DestinationRule connection pool limits; what is not set keeps Envoy's defaults (1024 each, 3 retries). */
function circuitBreakers(pool: ConnectionPool | undefined): Json | undefined {
  const t: Json = {};
  if (pool?.tcp?.maxConnections !== undefined) t.max_connections = pool.tcp.maxConnections;
  if (pool?.http?.http1MaxPendingRequests !== undefined)
    t.max_pending_requests = pool.http.http1MaxPendingRequests;
  if (pool?.http?.http2MaxRequests !== undefined) t.max_requests = pool.http.http2MaxRequests;
  if (pool?.http?.maxRetries !== undefined) t.max_retries = pool.http.maxRetries;
  return Object.keys(t).length === 0 ? undefined : { thresholds: [t] };
}

/**
 * The protocol toward the endpoints: HTTP/2 for HTTP2 and GRPC ports, the client's own protocol for detected
 * ports (h2c stays HTTP/2), HTTP/1.1 otherwise (the default, so only written with a per-connection request limit).
 */
function protocolOptions(
  protocol: ServicePort['meshProtocol'],
  maxRequests: number | undefined,
): Json | undefined {
  const mode = portMode(protocol);
  if (mode === 'tcp') return undefined;
  let config: Json;
  if (protocol === 'HTTP2' || protocol === 'GRPC')
    config = { explicit_http_config: { http2_protocol_options: {} } };
  else if (mode === 'sniff') config = { use_downstream_protocol_config: {} };
  else if (maxRequests !== undefined) config = { explicit_http_config: { http_protocol_options: {} } };
  else return undefined;
  return {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': TYPES.httpProtocolOptions,
      ...(maxRequests !== undefined && {
        common_http_protocol_options: { max_requests_per_connection: maxRequests },
      }),
      ...config,
    },
  };
}

/** Milliseconds as canonical proto3 JSON ("2s", "1.500s": 0 or 3 fractional digits); undefined stays undefined. */
export function durationJson(ms: number | undefined): string | undefined {
  if (ms === undefined) return undefined;
  const whole = Math.round(ms);
  return whole % 1000 === 0 ? `${whole / 1000}s` : `${(whole / 1000).toFixed(3)}s`;
}

/** The capture-mode clusters every sidecar has. */
export function passthroughClusters(): Json[] {
  return [
    originalDstCluster(PASSTHROUGH_CLUSTER, undefined, 'sniff'),
    { name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: DEFAULT_CONNECT_TIMEOUT },
    originalDstCluster(INBOUND_PASSTHROUGH_CLUSTER, inboundBind(), 'sniff'),
  ];
}

/** `inbound|<port>||` for each port the workload serves: to the application, with the port's protocol. */
export function inboundClusters(ports: readonly InboundPort[]): Json[] {
  return ports.map((p) => originalDstCluster(inboundClusterName(p.port), inboundBind(), p.protocol));
}

/**
 * `inbound|<port>||` without capture: there is no original destination, so the workload is reached where a sidecar
 * reaches the application beside it, 127.0.0.1:<port>.
 */
export function localInboundCluster(p: InboundPort): Json {
  const name = inboundClusterName(p.port);
  const options = protocolOptions(p.protocol, undefined);
  return {
    name,
    type: 'STATIC',
    connect_timeout: DEFAULT_CONNECT_TIMEOUT,
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p.port } } } },
          ],
        },
      ],
    },
    ...(options !== undefined && { typed_extension_protocol_options: options }),
  };
}

function inboundBind(): Json {
  return {
    source_address: { address: '127.0.0.6', port_value: 0 },
    extra_source_addresses: [{ address: { address: '::6', port_value: 0 } }],
  };
}

function originalDstCluster(
  name: string,
  bind: Json | undefined,
  protocol: ServicePort['meshProtocol'] | 'sniff',
): Json {
  const options = protocolOptions(protocol === 'sniff' ? 'UNKNOWN' : protocol, undefined);
  return {
    name,
    type: 'ORIGINAL_DST',
    lb_policy: 'CLUSTER_PROVIDED',
    connect_timeout: DEFAULT_CONNECT_TIMEOUT,
    ...(bind !== undefined && { upstream_bind_config: bind }),
    ...(options !== undefined && { typed_extension_protocol_options: options }),
  };
}
