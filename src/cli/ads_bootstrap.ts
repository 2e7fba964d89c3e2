// The bootstrap of a sidecar driven entirely by a control plane: its node, its admin, and ADS — nothing else.

import { isIP } from 'node:net';

export interface AdsBootstrapOptions {
  readonly node: {
    readonly id: string;
    readonly cluster: string;
    readonly metadata: Record<string, unknown>;
  };
  readonly adminPort: number;
  /** The control plane's replicas: the sidecar fails over between them. */
  readonly controlPlanes: readonly { readonly address: string; readonly port: number }[];
  /** DELTA_GRPC instead of state of the world. */
  readonly delta?: boolean;
  /** One google_grpc target per replica instead of an envoy_grpc static cluster (the form Istio uses). */
  readonly googleGrpc?: boolean;
  /**
   * ADS over mTLS (the control plane's port 15012): the `xds-grpc` cluster presents the sidecar's workload
   * certificate (`default`) and trusts the mesh's roots (`ROOTCA`), both supplied by the sidecar itself
   * (`remora proxy --ca-address`). Not with googleGrpc.
   */
  readonly tls?: {
    /**
     * The names the control plane's certificate must carry, any one (SAN matchers): default, each replica's
     * address (a DNS name or an IP). Never empty: every workload certificate leads to the same roots.
     */
    readonly serverNames?: readonly string[];
    /** The SNI to send; default none. */
    readonly sni?: string;
  };
}

/** The UpstreamTlsContext of the `xds-grpc` cluster: the workload identity's secrets, the control plane's names. */
export function adsTransportSocket(serverNames: readonly string[], sni?: string): Record<string, unknown> {
  if (serverNames.length === 0)
    throw new Error('the control plane needs at least one name to be verified by');
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      common_tls_context: {
        tls_certificate_sds_secret_configs: [{ name: 'default' }],
        combined_validation_context: {
          default_validation_context: {
            match_typed_subject_alt_names: [...new Set(serverNames)].map((n) => ({
              san_type: isIP(n) === 0 ? 'DNS' : 'IP_ADDRESS',
              matcher: { exact: n },
            })),
          },
          validation_context_sds_secret_config: { name: 'ROOTCA' },
        },
        alpn_protocols: ['h2'],
      },
      ...(sni !== undefined && { sni }),
    },
  };
}

export function adsBootstrap(o: AdsBootstrapOptions): Record<string, unknown> {
  if (o.tls !== undefined && o.googleGrpc)
    throw new Error('ADS over TLS takes the xds-grpc cluster, not google_grpc');
  const ads = { ads: {}, resource_api_version: 'V3' };
  const grpcServices = o.googleGrpc
    ? o.controlPlanes.map((c) => ({
        google_grpc: { target_uri: `${c.address}:${c.port}`, stat_prefix: 'ads' },
      }))
    : [{ envoy_grpc: { cluster_name: 'xds-grpc' } }];
  return {
    node: o.node,
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: o.adminPort } } },
    dynamic_resources: {
      ads_config: {
        api_type: o.delta ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        grpc_services: grpcServices,
      },
      lds_config: ads,
      cds_config: ads,
    },
    static_resources: {
      clusters: [
        {
          name: 'xds-grpc',
          // A control plane named by a host name (a Kubernetes Service, `istiod.istio-system.svc`) is resolved.
          type: o.controlPlanes.every((c) => isIP(c.address) !== 0) ? 'STATIC' : 'STRICT_DNS',
          connect_timeout: '1s',
          ...(o.tls !== undefined && {
            transport_socket: adsTransportSocket(
              o.tls.serverNames ?? o.controlPlanes.map((c) => c.address),
              o.tls.sni,
            ),
          }),
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
          load_assignment: {
            cluster_name: 'xds-grpc',
            endpoints: [
              {
                lb_endpoints: o.controlPlanes.map((c) => ({
                  endpoint: { address: { socket_address: { address: c.address, port_value: c.port } } },
                })),
              },
            ],
          },
        },
      ],
    },
  };
}
