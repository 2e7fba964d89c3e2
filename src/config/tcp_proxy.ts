// The TCP proxy network filter (TcpProxy): forwards a connection's bytes to one of a set of weighted clusters.

import { accessLogs } from './access_log.js';
import { durationField } from './durations.js';
import { NO_HEADER_MUTATIONS } from './headers.js';
import type { TcpProxyConfig, WeightedClusterConfig } from './model.js';
import { Fields } from './reader.js';

const HOUR_MS = 3_600_000;

/** Translates the fields of a TcpProxy typed_config. */
export function tcpProxy(f: Fields): TcpProxyConfig | undefined {
  const ctx = f.ctx;
  const statPrefix = f.string('stat_prefix', { required: true });
  const which = f.oneOf(['cluster', 'weighted_clusters', 'on_demand'], { required: true });
  let clusters: WeightedClusterConfig[] | undefined;
  const cluster = f.string('cluster', { nonEmpty: true });
  if (which === 'cluster' && cluster !== undefined) {
    ctx.clusterRefs.push({ name: cluster, path: f.pathOf('cluster') });
    clusters = [{ name: cluster, weight: 1, ...NO_HEADER_MUTATIONS }];
  }
  const weighted = f.object('weighted_clusters');
  if (which === 'weighted_clusters' && weighted !== undefined) clusters = weightedClusters(weighted);
  const idleTimeoutMs = durationField(f, 'idle_timeout') ?? HOUR_MS;
  const logs = accessLogs(f);
  const maxConnectAttempts = f.int('max_connect_attempts', { min: 1 }) ?? 1;
  f.unsupported([
    'on_demand',
    'metadata_match',
    'downstream_idle_timeout',
    'upstream_idle_timeout',
    'hash_policy',
    'tunneling_config',
    'max_downstream_connection_duration',
    'access_log_flush_interval',
    'flush_access_log_on_connected',
    'access_log_options',
    'backoff_options',
    'proxy_protocol_tlvs',
  ]);
  f.finish();
  if (statPrefix === undefined || clusters === undefined) return undefined;
  return {
    statPrefix,
    clusters,
    totalWeight: clusters.reduce((sum, c) => sum + c.weight, 0),
    idleTimeoutMs,
    accessLogs: logs,
    maxConnectAttempts,
  };
}

function weightedClusters(f: Fields): WeightedClusterConfig[] | undefined {
  const out: WeightedClusterConfig[] = [];
  let failed = false;
  for (const item of f.list('clusters', { nonEmpty: true })) {
    const c = Fields.of(f.ctx, item.value, item.path);
    if (c === undefined) {
      failed = true;
      continue;
    }
    const name = c.string('name', { required: true });
    if (name !== undefined) f.ctx.clusterRefs.push({ name, path: c.pathOf('name') });
    const weight = c.int('weight', { min: 1, required: true });
    c.unsupported(['metadata_match']);
    c.finish();
    if (name === undefined || weight === undefined) failed = true;
    else out.push({ name, weight, ...NO_HEADER_MUTATIONS });
  }
  f.finish();
  return failed || out.length === 0 ? undefined : out;
}
