// ORIGINAL_DST clusters: hosts made on demand from where each downstream connection was originally going.

import { durationField } from './durations.js';
import type { OriginalDstClusterConfig } from './model.js';
import type { Fields } from './reader.js';

/** Envoy's default header for use_http_header. */
export const ORIGINAL_DST_HOST_HEADER = 'x-envoy-original-dst-host';
const DEFAULT_CLEANUP_INTERVAL_MS = 5000;

/** original_dst_lb_config and cleanup_interval of an ORIGINAL_DST cluster. */
export function originalDstCluster(f: Fields): OriginalDstClusterConfig {
  const cleanupIntervalMs =
    durationField(f, 'cleanup_interval', { positive: true }) ?? DEFAULT_CLEANUP_INTERVAL_MS;
  const o = f.object('original_dst_lb_config');
  const useHttpHeader = o?.bool('use_http_header') ?? false;
  const name = o?.string('http_header_name') || ORIGINAL_DST_HOST_HEADER;
  const upstreamPortOverride = o?.int('upstream_port_override', { min: 1, max: 65535 });
  o?.unsupported(['metadata_key']);
  o?.finish();
  return { cleanupIntervalMs, useHttpHeader, httpHeaderName: name.toLowerCase(), upstreamPortOverride };
}

/** Fields that only mean something on an ORIGINAL_DST cluster: set elsewhere they are errors. */
export function rejectOriginalDstFields(f: Fields): void {
  for (const name of ['original_dst_lb_config', 'cleanup_interval']) {
    if (f.has(name)) {
      f.take(name);
      f.error(name, 'only applies to clusters of type ORIGINAL_DST');
    }
  }
}
