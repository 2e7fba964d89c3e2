// ConfigSource and dynamic_resources: where xDS resources come from. Remora takes them over ADS only.

import { durationField } from './durations.js';
import type { AdsConfig, AdsSourceConfig, DynamicResourcesConfig, XdsServerConfig } from './model.js';
import { type ClusterRef, Fields } from './reader.js';

/** Envoy's default initial_fetch_timeout. */
export const DEFAULT_INITIAL_FETCH_TIMEOUT_MS = 15_000;

/**
 * A ConfigSource (lds_config, cds_config, rds.config_source, eds_cluster_config.eds_config): only `ads: {}` is
 * supported. Its path is recorded in `ctx.adsRefs`, for the bootstrap to check that an ads_config exists.
 */
export function adsConfigSource(f: Fields | undefined): AdsSourceConfig | undefined {
  if (f === undefined) return undefined;
  const which = f.oneOf(['ads', ...OTHER_SOURCES], { required: true });
  // AggregatedConfigSource has no fields.
  f.object('ads')?.finish();
  f.enumOf('resource_api_version', ['V3', 'AUTO'], ['V2']);
  const initialFetchTimeoutMs = durationField(f, 'initial_fetch_timeout') ?? DEFAULT_INITIAL_FETCH_TIMEOUT_MS;
  for (const other of OTHER_SOURCES) {
    if (f.take(other) !== undefined)
      f.error(other, 'not supported by Remora yet: resources come over ADS only (ads: {})');
  }
  f.unsupported(['authorities']);
  f.finish();
  if (which !== 'ads') return undefined;
  f.ctx.adsRefs.push(f.path);
  return { initialFetchTimeoutMs };
}

const OTHER_SOURCES = ['path', 'path_config_source', 'api_config_source', 'self'];

/**
 * dynamic_resources: ads_config, and lds_config / cds_config naming it. `adsClusters` are the clusters its
 * envoy_grpc services name, for the bootstrap to check against its static clusters.
 */
export function dynamicResources(f: Fields): {
  value: DynamicResourcesConfig;
  adsClusters: ClusterRef[];
} {
  const adsClusters: ClusterRef[] = [];
  const ads = adsConfig(f.object('ads_config'), adsClusters);
  const lds = adsConfigSource(f.object('lds_config'));
  const cds = adsConfigSource(f.object('cds_config'));
  f.unsupported(['lds_resources_locator', 'cds_resources_locator']);
  f.finish();
  return { value: { ads, lds, cds }, adsClusters };
}

/** ads_config: an ApiConfigSource of api_type GRPC (state of the world) or DELTA_GRPC over gRPC services. */
function adsConfig(f: Fields | undefined, clusters: ClusterRef[]): AdsConfig | undefined {
  if (f === undefined) return undefined;
  const apiType =
    f.enumOf('api_type', ['GRPC', 'DELTA_GRPC'] as const, [
      'REST',
      'AGGREGATED_GRPC',
      'AGGREGATED_DELTA_GRPC',
      'REST_LEGACY',
    ]) ?? (f.has('api_type') ? undefined : missingApiType(f));
  f.enumOf('transport_api_version', ['V3', 'AUTO'], ['V2']);
  const servers: XdsServerConfig[] = [];
  for (const item of f.list('grpc_services', { nonEmpty: true })) {
    const s = grpcService(Fields.of(f.ctx, item.value, item.path), clusters);
    if (s !== undefined) servers.push(s);
  }
  // Accepted: Remora sends the node on the first request of each stream only, which is what true asks for.
  f.bool('set_node_on_first_message_only');
  f.unsupported([
    'cluster_names',
    'refresh_delay',
    'request_timeout',
    'rate_limit_settings',
    'config_validators',
  ]);
  f.finish();
  return apiType === undefined ? undefined : { apiType, servers };
}

function missingApiType(f: Fields): undefined {
  f.error('api_type', 'missing required field (GRPC or DELTA_GRPC)');
  return undefined;
}

/** One GrpcService: envoy_grpc (a static cluster, checked by the bootstrap) or google_grpc (a target URI). */
function grpcService(f: Fields | undefined, clusters: ClusterRef[]): XdsServerConfig | undefined {
  if (f === undefined) return undefined;
  const which = f.oneOf(['envoy_grpc', 'google_grpc'], { required: true });
  let out: XdsServerConfig | undefined;
  const e = f.object('envoy_grpc');
  if (e !== undefined) {
    const clusterName = e.string('cluster_name', { required: true });
    e.unsupported(['authority', 'retry_policy', 'max_receive_message_length', 'skip_envoy_headers']);
    e.finish();
    if (clusterName !== undefined && which === 'envoy_grpc') {
      out = { kind: 'envoy_grpc', clusterName };
      clusters.push({ name: clusterName, path: e.pathOf('cluster_name') });
    }
  }
  const g = f.object('google_grpc');
  if (g !== undefined) {
    const targetUri = g.string('target_uri', { required: true });
    g.string('stat_prefix');
    g.unsupported([
      'channel_credentials',
      'call_credentials',
      'credentials_factory_name',
      'config',
      'per_stream_buffer_limit_bytes',
      'channel_args',
    ]);
    g.finish();
    if (targetUri !== undefined && which === 'google_grpc') out = { kind: 'google_grpc', targetUri };
  }
  // The stream lives for hours: a call timeout would cut it.
  f.unsupported(['timeout', 'initial_metadata', 'retry_policy']);
  f.finish();
  return out;
}
