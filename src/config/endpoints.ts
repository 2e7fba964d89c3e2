// ClusterLoadAssignment: a cluster's endpoints, grouped by locality and priority.

import { translateAddress } from './address.js';
import { loadAssignmentPolicy } from './load_assignment_policy.js';
import { filterMetadataField } from './metadata.js';
import type {
  ClusterLoadAssignmentConfig,
  EndpointConfig,
  EndpointHealth,
  LoadAssignmentPolicy,
  LocalityEndpointsConfig,
} from './model.js';
import { Ctx, Fields } from './reader.js';
import type { ValidationResult } from './result.js';

/** Envoy's largest endpoint priority. */
const MAX_PRIORITY = 128;

/** Which hosts an endpoint may name: IP addresses only (STATIC, EDS), or DNS names too (STRICT_DNS). */
type AddressKind = 'STATIC' | 'STRICT_DNS' | 'EDS';

/** A ClusterLoadAssignment resource (from EDS): the endpoints of the EDS clusters whose service name it has. */
export function translateClusterLoadAssignment(
  raw: unknown,
  path: string,
): ValidationResult<ClusterLoadAssignmentConfig> {
  const ctx = new Ctx();
  const value = clusterLoadAssignment(ctx, raw, path, 'EDS');
  return ctx.failed || value === undefined ? { ok: false, errors: ctx.errors() } : { ok: true, value };
}

/** A cluster's own load_assignment: its localities and policy; undefined when any part is invalid (errors recorded). */
export function loadAssignment(
  ctx: Ctx,
  raw: unknown,
  path: string,
  type: 'STATIC' | 'STRICT_DNS',
):
  | { readonly localities: readonly LocalityEndpointsConfig[]; readonly policy: LoadAssignmentPolicy }
  | undefined {
  return clusterLoadAssignment(ctx, raw, path, type);
}

function clusterLoadAssignment(
  ctx: Ctx,
  raw: unknown,
  path: string,
  type: AddressKind,
): ClusterLoadAssignmentConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const clusterName = f.string('cluster_name', { required: true });
  const out: LocalityEndpointsConfig[] = [];
  let failed = false;
  for (const item of f.list('endpoints')) {
    const l = localityEndpoints(ctx, item.value, item.path, type);
    if (l === undefined) failed = true;
    else out.push(l);
  }
  const policy = loadAssignmentPolicy(ctx, f.take('policy'), f.pathOf('policy'), type === 'EDS');
  f.unsupported(['named_endpoints']);
  f.finish();
  return failed || clusterName === undefined || policy === undefined
    ? undefined
    : { clusterName, localities: out, policy };
}

function localityEndpoints(
  ctx: Ctx,
  raw: unknown,
  path: string,
  type: AddressKind,
): LocalityEndpointsConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const locality = f.object('locality');
  if (locality !== undefined) {
    // Accepted so configs carrying topology load; Remora does not balance by locality yet.
    locality.string('region');
    locality.string('zone');
    locality.string('sub_zone');
    locality.finish();
  }
  const priority = f.int('priority', { max: MAX_PRIORITY }) ?? 0;
  const weight = f.int('load_balancing_weight', { min: 1 });
  const endpoints: EndpointConfig[] = [];
  let failed = false;
  for (const item of f.list('lb_endpoints')) {
    const e = lbEndpoint(ctx, item.value, item.path, type);
    if (e === undefined) failed = true;
    else endpoints.push(e);
  }
  const metadata = filterMetadataField(f);
  f.unsupported(['load_balancer_endpoints', 'leds_cluster_locality_config', 'proximity']);
  f.finish();
  if (failed) return undefined;
  return metadata === undefined ? { priority, weight, endpoints } : { priority, weight, endpoints, metadata };
}

function lbEndpoint(ctx: Ctx, raw: unknown, path: string, type: AddressKind): EndpointConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  f.oneOf(['endpoint', 'endpoint_name'], { required: true });
  const e = f.object('endpoint');
  const weight = f.int('load_balancing_weight', { min: 1 }) ?? 1;
  const status =
    f.enumOf('health_status', [
      'UNKNOWN',
      'HEALTHY',
      'UNHEALTHY',
      'DRAINING',
      'TIMEOUT',
      'DEGRADED',
    ] as const) ?? 'UNKNOWN';
  const metadata = filterMetadataField(f);
  f.unsupported(['endpoint_name']);
  f.finish();
  if (e === undefined) return undefined;
  const a = e.take('address');
  if (a === undefined) e.error('address', 'missing required field');
  const address =
    a === undefined
      ? undefined
      : translateAddress(ctx, a, e.pathOf('address'), {
          host: type === 'STRICT_DNS' ? 'ip_or_hostname' : 'ip',
          notIpMessage:
            type === 'EDS'
              ? 'an EDS endpoint must be an IP address'
              : 'a STATIC cluster needs IP addresses; use type STRICT_DNS to resolve hostnames',
          requirePort: true,
        });
  const hostname = e.string('hostname') || undefined;
  e.unsupported(['health_check_config', 'additional_addresses']);
  e.finish();
  if (address === undefined) return undefined;
  const endpoint = { address, weight, hostname, health: HEALTH[status] };
  return metadata === undefined ? endpoint : { ...endpoint, metadata };
}

/** Envoy's reading of health_status: UNKNOWN counts as HEALTHY, DRAINING and TIMEOUT as UNHEALTHY. */
const HEALTH = {
  UNKNOWN: 'HEALTHY',
  HEALTHY: 'HEALTHY',
  DEGRADED: 'DEGRADED',
  UNHEALTHY: 'UNHEALTHY',
  DRAINING: 'UNHEALTHY',
  TIMEOUT: 'UNHEALTHY',
} as const satisfies Record<string, EndpointHealth>;
