// Istio's standard metrics in the stats store: one series per distinct label set, in Istio's custom stat namespace
// (Prometheus names them `istio_*`, without Envoy's `envoy_` prefix), with the labels a config removes left off.

import { ISTIO_LABELS, type IstioLabel } from '../../config/istio_stats.js';
import type { IstioMetricName, IstioStatsConfig } from '../../config/model.js';
import type { Counter, Histogram, ScopeTag, StatsStore } from '../observe/stats.js';
import { escapeLabelValue } from '../observe/stats_render.js';

/** Envoy's name for the namespace of Istio's stats: its stats are shown without the `envoy_` prefix. */
const NAMESPACE = 'istiocustom.';

/** The values of Istio's labels, in ISTIO_LABELS order. */
export type LabelValues = readonly string[];

/** The stats of one HTTP label set; undefined where the config drops the metric. */
export interface RequestSeries {
  readonly requests: Counter | undefined;
  readonly duration: Histogram | undefined;
  readonly requestBytes: Histogram | undefined;
  readonly responseBytes: Histogram | undefined;
}

/** The stats of one TCP label set. */
export interface TcpSeries {
  readonly opened: Counter | undefined;
  readonly closed: Counter | undefined;
  readonly sent: Counter | undefined;
  readonly received: Counter | undefined;
}

/**
 * Most label sets repeat: the series of a key (the values joined) are found in a map rather than rendered again.
 * Only the values of labels that come from traffic vary, and each of those is bounded (response codes, flags,
 * principals of the mesh's certificates, services the cluster names); the one free-form value, the Host header, is
 * bounded by HostNames.
 */
export class IstioSeries {
  private readonly requestSeries = new Map<string, RequestSeries>();
  private readonly tcpSeries = new Map<string, TcpSeries>();
  private readonly dropped: ReadonlySet<IstioMetricName>;

  constructor(
    private readonly store: StatsStore,
    private readonly config: IstioStatsConfig,
  ) {
    this.dropped = new Set(config.dropped);
  }

  /** The HTTP series of `values`; `key` identifies them (equal keys, equal values). */
  request(key: string, values: () => LabelValues): RequestSeries {
    let s = this.requestSeries.get(key);
    if (s === undefined) {
      const v = values();
      s = {
        requests: this.counter('requests_total', v),
        duration: this.histogram('request_duration_milliseconds', v),
        requestBytes: this.histogram('request_bytes', v),
        responseBytes: this.histogram('response_bytes', v),
      };
      this.requestSeries.set(key, s);
    }
    return s;
  }

  /** The TCP series of `values`. */
  tcp(key: string, values: () => LabelValues): TcpSeries {
    let s = this.tcpSeries.get(key);
    if (s === undefined) {
      const v = values();
      s = {
        opened: this.counter('tcp_connections_opened_total', v),
        closed: this.counter('tcp_connections_closed_total', v),
        sent: this.counter('tcp_sent_bytes_total', v),
        received: this.counter('tcp_received_bytes_total', v),
      };
      this.tcpSeries.set(key, s);
    }
    return s;
  }

  private counter(metric: IstioMetricName, values: LabelValues): Counter | undefined {
    if (this.dropped.has(metric)) return undefined;
    const tag = this.tag(metric, values);
    return this.store.counter(statName(tag), tag, tag.custom!.family);
  }

  private histogram(metric: IstioMetricName, values: LabelValues): Histogram | undefined {
    if (this.dropped.has(metric)) return undefined;
    const tag = this.tag(metric, values);
    return this.store.histogram(statName(tag), tag, tag.custom!.family);
  }

  private tag(metric: IstioMetricName, values: LabelValues): ScopeTag {
    const removed = this.config.tagsRemoved[metric];
    const pairs: string[] = [];
    for (let i = 0; i < ISTIO_LABELS.length; i++) {
      const name: IstioLabel = ISTIO_LABELS[i]!;
      if (removed?.includes(name)) continue;
      pairs.push(`${name}="${escapeLabelValue(values[i] ?? '')}"`);
    }
    return {
      prefix: NAMESPACE,
      tagName: '',
      tagValue: '',
      custom: { family: `istio_${metric}`, labels: pairs.join(',') },
    };
  }
}

/**
 * The stat's name for /stats: its family and labels as Prometheus writes them, which, unlike Envoy's dotted tag
 * form, cannot make two label sets one name (label values hold dots: hosts, SPIFFE IDs).
 */
function statName(tag: ScopeTag): string {
  return `${tag.prefix}${tag.custom!.family}{${tag.custom!.labels}}`;
}

/** Istio's istio_build gauge: 1, labelled with the proxy's Istio version (node metadata ISTIO_VERSION). */
export function recordBuild(store: StatsStore, istioVersion: string): void {
  const labels = `component="proxy",tag="${escapeLabelValue(istioVersion)}"`;
  const tag: ScopeTag = {
    prefix: NAMESPACE,
    tagName: '',
    tagValue: '',
    custom: { family: 'istio_build', labels },
  };
  store.gauge(statName(tag), tag, 'istio_build').set(1);
}

/**
 * Host header values admitted as destination_service: a client chooses the Host it sends, so without a bound every
 * new name would be a new series for the life of the process. Past the limit a new name is not used (the label
 * falls back as if there were no Host header), and the refusal is counted.
 */
export class HostNames {
  private readonly seen = new Set<string>();

  constructor(
    private readonly limit: number,
    private readonly overflow: Counter,
  ) {}

  /** `host` when it may be a label value; '' when the limit is reached and it is new. */
  admit(host: string): string {
    if (host === '' || this.seen.has(host)) return host;
    if (this.seen.size >= this.limit) {
      this.overflow.inc();
      return '';
    }
    this.seen.add(host);
    return host;
  }
}
