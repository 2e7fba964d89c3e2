// The counts every upstream connection and request keeps: cluster stats, host counters, circuit-breaker slots.

import type { CircuitBreaker } from './circuit_breaker.js';
import type { Host } from './host.js';
import type { ClusterStats } from './stats.js';

/** A connection opened to `host` (its protocol counted when it is HTTP). */
export function countConnectionOpened(
  stats: ClusterStats,
  breaker: CircuitBreaker,
  host: Host,
  protocol: 'http1' | 'http2' | undefined,
): void {
  stats.upstream_cx_total.inc();
  if (protocol === 'http1') stats.upstream_cx_http1_total.inc();
  else if (protocol === 'http2') stats.upstream_cx_http2_total.inc();
  stats.upstream_cx_active.inc();
  host.counters.cxTotal++;
  host.counters.cxActive++;
  breaker.connections++;
}

/** A connection to `host` closed: it gives its slots back; its byte counts are added when given. */
export function countConnectionClosed(
  stats: ClusterStats,
  breaker: CircuitBreaker,
  host: Host,
  socket?: { readonly bytesRead: number; readonly bytesWritten: number },
): void {
  stats.upstream_cx_active.dec();
  stats.upstream_cx_destroy.inc();
  if (socket) {
    stats.upstream_cx_rx_bytes_total.inc(socket.bytesRead);
    stats.upstream_cx_tx_bytes_total.inc(socket.bytesWritten);
  }
  host.counters.cxActive--;
  breaker.connections--;
}

/** A request sent to `host`: active and pending until its connection takes it. */
export function countRequestStarted(stats: ClusterStats, breaker: CircuitBreaker, host: Host): void {
  host.activeRequests++;
  host.counters.rqTotal++;
  stats.upstream_rq_total.inc();
  stats.upstream_rq_active.inc();
  stats.upstream_rq_pending_total.inc();
  stats.upstream_rq_pending_active.inc();
  breaker.requests++;
  breaker.pendingRequests++;
}
