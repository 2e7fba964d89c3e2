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

/**
 * A listener's TLS stats: the ssl.* family, the handshake timeout (Envoy's listener stat), and Envoy's SDS stats of
 * its server_ssl_socket_factory: contexts updated by a secret, connections refused while the secrets have not
 * arrived.
 */
export const DOWNSTREAM_TLS_STATS = declareStats({
  counters: [
    ...SSL_COUNTERS,
    'downstream_cx_transport_socket_connect_timeout',
    'server_ssl_socket_factory.ssl_context_update_by_sds',
    'server_ssl_socket_factory.downstream_context_secrets_not_ready',
  ] as const,
  gauges: [] as const,
  histograms: [] as const,
});

/** A cluster's TLS stats, with Envoy's SDS stats of its client_ssl_socket_factory. */
export const UPSTREAM_TLS_STATS = declareStats({
  counters: [
    ...SSL_COUNTERS,
    'client_ssl_socket_factory.ssl_context_update_by_sds',
    'client_ssl_socket_factory.upstream_context_secrets_not_ready',
  ] as const,
  gauges: [] as const,
  histograms: [] as const,
});

export type DownstreamTlsStats = StatsOf<typeof DOWNSTREAM_TLS_STATS>;
export type UpstreamTlsStats = StatsOf<typeof UPSTREAM_TLS_STATS>;
