// The consistency check a snapshot passes before it is served: every ClusterLoadAssignment an EDS cluster names,
// and every RouteConfiguration an HTTP connection manager takes by `rds`, is in the snapshot.

import type { ConfigError } from '../../config/result.js';
import { decodeAny, XDS_TYPE_URLS } from '../../xds/protos.js';
import type { XdsResource } from './resource.js';

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

type Json = Record<string, unknown>;

export interface Reference {
  readonly typeUrl: string;
  readonly name: string;
  /** Where the reference is, from the referring resource, e.g. `eds_cluster_config.service_name`. */
  readonly path: string;
}

/** The resources a resource needs from the same snapshot; memoized on the (immutable) resource. */
export function referencesOf(resource: XdsResource): readonly Reference[] {
  if (resource.references !== undefined) return resource.references;
  let refs: Reference[] = [];
  if (resource.typeUrl === XDS_TYPE_URLS.cluster || resource.typeUrl === XDS_TYPE_URLS.listener) {
    const decoded = decodeAny(resource.any);
    // A resource that cannot be read refers to nothing that can be checked; its client will NACK it.
    if (decoded.ok) {
      refs =
        resource.typeUrl === XDS_TYPE_URLS.cluster
          ? clusterReferences(resource.name, decoded.value)
          : listenerReferences(decoded.value);
    }
  }
  resource.references = refs;
  return refs;
}

function clusterReferences(name: string, cluster: Json): Reference[] {
  if (cluster.type !== 'EDS') return [];
  const eds = (cluster.eds_cluster_config ?? {}) as Json;
  const service = typeof eds.service_name === 'string' && eds.service_name !== '' ? eds.service_name : name;
  const path = service === name ? 'name' : 'eds_cluster_config.service_name';
  return [{ typeUrl: XDS_TYPE_URLS.endpoint, name: service, path }];
}

function listenerReferences(listener: Json): Reference[] {
  const refs: Reference[] = [];
  const chains: [Json, string][] = [];
  (listener.filter_chains as Json[] | undefined)?.forEach((c, i) => {
    chains.push([c, `filter_chains[${i}]`]);
  });
  if (listener.default_filter_chain !== undefined) {
    chains.push([listener.default_filter_chain as Json, 'default_filter_chain']);
  }
  for (const [chain, chainPath] of chains) {
    (chain.filters as Json[] | undefined)?.forEach((filter, i) => {
      hcmReference(filter.typed_config, `${chainPath}.filters[${i}].typed_config`, refs);
    });
  }
  const api = listener.api_listener as Json | undefined;
  if (api !== undefined) hcmReference(api.api_listener, 'api_listener.api_listener', refs);
  return refs;
}

function hcmReference(typed: unknown, path: string, refs: Reference[]): void {
  const hcm = typed as Json | undefined;
  if (hcm?.['@type'] !== HCM) return;
  const rds = hcm.rds as Json | undefined;
  if (typeof rds?.route_config_name === 'string') {
    refs.push({
      typeUrl: XDS_TYPE_URLS.route,
      name: rds.route_config_name,
      path: `${path}.rds.route_config_name`,
    });
  }
}

/** What a snapshot's resources refer to and it lacks; empty when consistent. */
export function missingReferences(
  resources: (typeUrl: string) => ReadonlyMap<string, XdsResource>,
): ConfigError[] {
  const errors: ConfigError[] = [];
  for (const [typeUrl, kind] of [
    [XDS_TYPE_URLS.cluster, 'clusters'],
    [XDS_TYPE_URLS.listener, 'listeners'],
  ] as const) {
    for (const resource of resources(typeUrl).values()) {
      for (const ref of referencesOf(resource)) {
        if (resources(ref.typeUrl).has(ref.name)) continue;
        const target =
          ref.typeUrl === XDS_TYPE_URLS.endpoint ? 'ClusterLoadAssignment' : 'RouteConfiguration';
        errors.push({
          path: `${kind}[${JSON.stringify(resource.name)}].${ref.path}`,
          message: `names ${target} ${JSON.stringify(ref.name)}, which the snapshot does not have`,
        });
      }
    }
  }
  return errors;
}
