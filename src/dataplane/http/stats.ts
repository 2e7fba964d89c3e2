// The stats every HTTP connection manager declares, in Envoy's names (http.<stat_prefix>.*).

import { declareStats, type StatsOf } from '../observe/stats.js';

export const HCM_STATS = declareStats({
  counters: [
    'downstream_cx_total',
    'downstream_cx_http1_total',
    'downstream_cx_http2_total',
    'downstream_cx_ssl_total',
    'downstream_cx_destroy',
    'downstream_cx_destroy_remote',
    'downstream_cx_destroy_local',
    'downstream_cx_drain_close',
    'downstream_cx_idle_timeout',
    'downstream_cx_protocol_error',
    'downstream_cx_rx_bytes_total',
    'downstream_cx_tx_bytes_total',
    'downstream_cx_upgrades_total',
    'downstream_rq_total',
    'downstream_rq_http1_total',
    'downstream_rq_http2_total',
    'downstream_rq_too_many_premature_resets',
    'downstream_rq_completed',
    'downstream_rq_1xx',
    'downstream_rq_2xx',
    'downstream_rq_3xx',
    'downstream_rq_4xx',
    'downstream_rq_5xx',
    'downstream_rq_rx_reset',
    'downstream_rq_tx_reset',
    'downstream_rq_timeout',
    'downstream_rq_idle_timeout',
    'downstream_rq_header_timeout',
    'downstream_rq_too_large',
    'downstream_rq_non_relative_path',
    'downstream_rq_ws_on_non_ws_route',
    'rs_too_large',
    'no_route',
    'no_cluster',
    'rq_direct_response',
    'rq_redirect',
  ] as const,
  gauges: [
    'downstream_cx_active',
    'downstream_cx_http1_active',
    'downstream_cx_http2_active',
    'downstream_cx_ssl_active',
    'downstream_cx_upgrades_active',
    'downstream_rq_active',
  ] as const,
  histograms: ['downstream_rq_time', 'downstream_cx_length_ms'] as const,
});

export type HcmStats = StatsOf<typeof HCM_STATS>;

/** HTTP/2 codec stats (Envoy roots them at http2. for downstream and cluster.<name>.http2. for upstream). */
export const HTTP2_CODEC_STATS = declareStats({
  counters: ['http2.rx_reset', 'http2.tx_reset', 'http2.goaway_sent', 'http2.rx_messaging_error'] as const,
  gauges: ['http2.streams_active'] as const,
  histograms: [] as const,
});

export type Http2CodecStats = StatsOf<typeof HTTP2_CODEC_STATS>;
