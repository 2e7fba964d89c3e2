// The stats of TLS transport sockets, in Envoy's names: `ssl.*` under a listener's or a cluster's scope.

import { declareStats, type StatsOf } from '../observe/stats.js';

/**
 * Envoy's ALL_SSL_STATS (those Remora can tell apart), plus two of Remora's own for certificate files reloaded
 * from disk: `ssl.context_update_by_file` (a new certificate is in use) and `ssl.context_update_by_file_error`
 * (the changed files could not be used; the previous certificate stays).
 */
const SSL_COUNTERS = [
  'ssl.connection_error',
  'ssl.handshake',
  'ssl.session_reused',
  'ssl.no_certificate',
  'ssl.fail_verify_no_cert',
  'ssl.fail_verify_error',
  'ssl.fail_verify_san',
  'ssl.context_update_by_file',
  'ssl.context_update_by_file_error',
] as const;

/** A listener's TLS stats: the ssl.* family and the handshake timeout (Envoy's listener stat). */
export const DOWNSTREAM_TLS_STATS = declareStats({
  counters: [...SSL_COUNTERS, 'downstream_cx_transport_socket_connect_timeout'] as const,
  gauges: [] as const,
  histograms: [] as const,
});

/** A cluster's TLS stats. */
export const UPSTREAM_TLS_STATS = declareStats({
  counters: SSL_COUNTERS,
  gauges: [] as const,
  histograms: [] as const,
});

export type DownstreamTlsStats = StatsOf<typeof DOWNSTREAM_TLS_STATS>;
export type UpstreamTlsStats = StatsOf<typeof UPSTREAM_TLS_STATS>;
/** The counters both sides have. */
export type SslStats = StatsOf<typeof UPSTREAM_TLS_STATS>;
