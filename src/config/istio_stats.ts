// Istio's istio.stats filter (typed_config stats.PluginConfig): Istio's standard request and TCP metrics.

import { durationField } from './durations.js';
import type { IstioMetricName, IstioStatsConfig } from './model.js';
import { Fields, isPlainObject, quote, typeOf } from './reader.js';

/** Istio's default tcp_reporting_duration (the filter's, which its proto comment gives as 15s). */
export const DEFAULT_TCP_REPORTING_MS = 5000;

/** The metric names metrics[].name may give (Istio's, without `istio_`). */
export const ISTIO_METRIC_NAMES: readonly IstioMetricName[] = [
  'requests_total',
  'request_duration_milliseconds',
  'request_bytes',
  'response_bytes',
  'request_messages_total',
  'response_messages_total',
  'tcp_connections_opened_total',
  'tcp_connections_closed_total',
  'tcp_sent_bytes_total',
  'tcp_received_bytes_total',
];

/** Istio's standard labels (tags), in the order the filter reports them. */
export const ISTIO_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const;

export type IstioLabel = (typeof ISTIO_LABELS)[number];

/** Translates the fields of a stats.PluginConfig. */
export function istioStats(f: Fields): IstioStatsConfig | undefined {
  const errorsBefore = f.ctx.errors().length;
  const reporter = f.enumOf('reporter', ['UNSPECIFIED', 'SERVER_GATEWAY'] as const) ?? 'UNSPECIFIED';
  const disableHostHeaderFallback = f.bool('disable_host_header_fallback') ?? false;
  const tcpReportingDurationMs = durationField(f, 'tcp_reporting_duration') ?? DEFAULT_TCP_REPORTING_MS;
  const dropped: IstioMetricName[] = [];
  const tagsRemoved: Partial<Record<IstioMetricName, string[]>> = {};
  for (const item of f.list('metrics')) metricConfig(f, item.value, item.path, dropped, tagsRemoved);
  if (f.list('definitions').length > 0) {
    f.error(
      'definitions',
      'custom metrics (value expressions in CEL) are not supported by Remora; only the standard metrics are reported',
    );
  }
  const rotation = durationField(f, 'rotation_interval');
  if (rotation !== undefined && rotation > 0) {
    f.error(
      'rotation_interval',
      'metric scope rotation is not supported by Remora (0, the default, is): each label set is one series for the life of the process',
    );
  }
  const grace = durationField(f, 'graceful_deletion_interval');
  if (grace !== undefined && grace < 1000) f.error('graceful_deletion_interval', 'must be at least 1s');
  f.finish();
  if (f.ctx.errors().length > errorsBefore) return undefined;
  return { reporter, disableHostHeaderFallback, tcpReportingDurationMs, dropped, tagsRemoved };
}

/** One metrics[] entry (MetricConfig): drop a metric, or remove standard labels from one metric or all. */
function metricConfig(
  parent: Fields,
  raw: unknown,
  path: string,
  dropped: IstioMetricName[],
  tagsRemoved: Partial<Record<IstioMetricName, string[]>>,
): void {
  const f = Fields.of(parent.ctx, raw, path);
  if (f === undefined) return;
  const name = f.string('name') ?? '';
  let metrics: readonly IstioMetricName[] = ISTIO_METRIC_NAMES;
  if (name !== '') {
    if ((ISTIO_METRIC_NAMES as readonly string[]).includes(name)) metrics = [name as IstioMetricName];
    else {
      f.error(
        'name',
        `unknown metric ${quote(name)} (Istio's standard metrics, named without "istio_": ${ISTIO_METRIC_NAMES.join(', ')})`,
      );
      metrics = [];
    }
  }
  const drop = f.bool('drop') ?? false;
  const tags: string[] = [];
  for (const item of f.strings('tags_to_remove')) {
    const tag = item.value as string;
    if ((ISTIO_LABELS as readonly string[]).includes(tag)) tags.push(tag);
    else
      f.ctx.error(
        item.path,
        `unknown label ${quote(tag)} (Istio's standard labels: ${ISTIO_LABELS.join(', ')})`,
      );
  }
  // A map of label names to CEL expressions, which Remora does not evaluate.
  const dimensions = f.take('dimensions');
  if (dimensions !== undefined && !isPlainObject(dimensions)) {
    f.error('dimensions', `expected an object of label names to expressions, got ${typeOf(dimensions)}`);
  } else if (dimensions !== undefined && Object.keys(dimensions).length > 0) {
    const keys = Object.keys(dimensions).map(quote).join(', ');
    f.error(
      'dimensions',
      `custom dimensions (CEL expressions) are not supported by Remora (got ${keys}); tags_to_remove and drop are`,
    );
  }
  if ((f.string('match') ?? '') !== '')
    f.error('match', 'not supported (Istio does not implement it either)');
  f.finish();
  if (name === '' && drop) {
    f.error('drop', 'drop needs a metric name: dropping every metric is removing the filter');
    return;
  }
  for (const m of metrics) {
    if (drop) {
      if (!dropped.includes(m)) dropped.push(m);
    } else if (tags.length > 0) {
      const list = tagsRemoved[m] ?? [];
      for (const t of tags) if (!list.includes(t)) list.push(t);
      tagsRemoved[m] = list;
    }
  }
}
