// ClusterLoadAssignment: a cluster's endpoints, grouped by locality and priority.

import { translateAddress } from './address.js';
import type { EndpointConfig, LocalityEndpointsConfig } from './model.js';
import { type Ctx, Fields } from './reader.js';

/** Envoy's largest endpoint priority. */
const MAX_PRIORITY = 128;

/** The localities of a load_assignment; undefined when any part is invalid (errors recorded). */
export function loadAssignment(
  ctx: Ctx,
  raw: unknown,
  path: string,
  type: 'STATIC' | 'STRICT_DNS',
): LocalityEndpointsConfig[] | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  f.string('cluster_name', { required: true });
  const out: LocalityEndpointsConfig[] = [];
  let failed = false;
  for (const item of f.list('endpoints')) {
    const l = localityEndpoints(ctx, item.value, item.path, type);
    if (l === undefined) failed = true;
    else out.push(l);
  }
  f.unsupported(['named_endpoints', 'policy']);
  f.finish();
  return failed ? undefined : out;
}

function localityEndpoints(
  ctx: Ctx,
  raw: unknown,
  path: string,
  type: 'STATIC' | 'STRICT_DNS',
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
  f.unsupported(['load_balancer_endpoints', 'leds_cluster_locality_config', 'proximity', 'metadata']);
  f.finish();
  return failed ? undefined : { priority, weight, endpoints };
}

function lbEndpoint(
  ctx: Ctx,
  raw: unknown,
  path: string,
  type: 'STATIC' | 'STRICT_DNS',
): EndpointConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  f.oneOf(['endpoint', 'endpoint_name'], { required: true });
  const e = f.object('endpoint');
  const weight = f.int('load_balancing_weight', { min: 1 }) ?? 1;
  f.enumOf('health_status', ['UNKNOWN', 'HEALTHY'], ['UNHEALTHY', 'DRAINING', 'TIMEOUT', 'DEGRADED']);
  f.unsupported(['endpoint_name', 'metadata']);
  f.finish();
  if (e === undefined) return undefined;
  const a = e.take('address');
  if (a === undefined) e.error('address', 'missing required field');
  const address =
    a === undefined
      ? undefined
      : translateAddress(ctx, a, e.pathOf('address'), {
          host: type === 'STATIC' ? 'ip' : 'ip_or_hostname',
          notIpMessage: 'a STATIC cluster needs IP addresses; use type STRICT_DNS to resolve hostnames',
          requirePort: true,
        });
  const hostname = e.string('hostname') || undefined;
  e.unsupported(['health_check_config', 'additional_addresses']);
  e.finish();
  return address === undefined ? undefined : { address, weight, hostname };
}
