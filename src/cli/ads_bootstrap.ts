// The bootstrap of a sidecar driven entirely by a control plane: its node, its admin, and ADS — nothing else.

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
}

export function adsBootstrap(o: AdsBootstrapOptions): Record<string, unknown> {
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
          type: 'STATIC',
          connect_timeout: '1s',
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
