// What both downstream HTTP/2 codecs (the native one and node:http2's) share: their options and the rapid-reset limits.

import type { Http2Options } from '../../../config/model.js';

/**
 * Envoy's premature-reset defence (CVE-2023-44487, "rapid reset"): once this many streams have closed, a
 * connection where at least half were reset by the client within a second of opening is closed; before that,
 * reaching half this many such resets is enough.
 */
export const PREMATURE_RESET_TOTAL_STREAMS = 500;
/** A stream the peer resets younger than this counts as a premature reset. */
export const PREMATURE_RESET_LIFETIME_MS = 1000;

export interface H2ServerOptions {
  readonly http2: Http2Options;
  /** max_request_headers_kb in bytes, and max_headers_count. */
  readonly maxHeaderBytes: number;
  readonly maxHeaders: number;
  /** No open stream for this long closes the connection (common_http_protocol_options.idle_timeout); 0 = never. */
  readonly idleTimeoutMs: number;
  /** drain_timeout: between the first (graceful) GOAWAY and closing. */
  readonly drainTimeoutMs: number;
}
