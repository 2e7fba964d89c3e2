// Keep-alive HTTP/1.1 connection pool to one host: idle connections reused newest-first, requests queued at the limit.

import type { ClusterConfig } from '../../config/model.js';
import { monotonicMs } from '../clock.js';
import type { UpstreamTls } from '../tls/upstream.js';
import { countConnectionClosed, countConnectionOpened } from './accounting.js';
import type { CircuitBreaker } from './circuit_breaker.js';
import {
  type ConnectionOwner,
  connectUpstream,
  Exchange,
  H1Connection,
  type UpstreamController,
  UpstreamError,
  type UpstreamHandler,
  type UpstreamRequest,
} from './h1_connection.js';
import type { Host } from './host.js';
import type { ClusterStats } from './stats.js';

/** Margin under a server's keep-alive hint, so the proxy closes an idle connection before the server does. */
const HINT_MARGIN_MS = 1000;

export class Http1Pool implements ConnectionOwner {
  private readonly idle: H1Connection[] = [];
  private readonly all = new Set<H1Connection>();
  private readonly waiting: Exchange[] = [];
  private closing = false;
  private readonly idleTimeoutMs: number;

  constructor(
    readonly host: Host,
    private readonly config: ClusterConfig,
    private readonly stats: ClusterStats,
    private readonly breaker: CircuitBreaker,
    /** The host's TLS: connections are established once the handshake and verification pass. */
    private readonly tls?: UpstreamTls,
    /** ALPN offered over TLS instead of the context's alpn_protocols (istio.alpn). */
    private readonly alpn?: readonly string[],
  ) {
    this.idleTimeoutMs = config.upstreamIdleTimeoutMs;
  }

  /**
   * Sends a request on an idle connection, a new one, or queues it when the cluster is at max_connections.
   * The returned controller cancels it at any stage: queued, connecting or in flight.
   */
  dispatch(req: UpstreamRequest, handler: UpstreamHandler): UpstreamController {
    const ex = new Exchange(req, handler, this.dequeue);
    this.assign(ex);
    return ex;
  }

  private assign(ex: Exchange): void {
    for (let conn = this.idle.pop(); conn; conn = this.idle.pop()) {
      if (!conn.closed) return conn.start(ex);
    }
    if (this.closing) {
      ex.aborted = true;
      return ex.handler.onResponseError(ex, new UpstreamError('reset', 'connection pool closed'));
    }
    if (this.breaker.connections < this.breaker.limits.maxConnections) return this.open(ex);
    this.stats.upstream_cx_overflow.inc();
    // Like Envoy, a host with no connection at all may open one past the limit: its queue would never move.
    if (this.all.size === 0) return this.open(ex);
    this.waiting.push(ex);
  }

  private readonly dequeue = (ex: Exchange): void => {
    const i = this.waiting.indexOf(ex);
    if (i >= 0) this.waiting.splice(i, 1);
  };

  private open(ex: Exchange): void {
    const host = this.host;
    const stats = this.stats;
    countConnectionOpened(stats, this.breaker, host, 'http1');
    const started = monotonicMs();
    const socket = connectUpstream({ config: this.config, tls: this.tls }, host, () => conn, this.alpn);
    const conn = new H1Connection(socket, this);
    this.all.add(conn);
    let connected = false;
    const timer = setTimeout(() => {
      stats.upstream_cx_connect_timeout.inc();
      socket.destroy(
        new UpstreamError('connect_timeout', `connect timeout after ${this.config.connectTimeoutMs} ms`),
      );
    }, this.config.connectTimeoutMs);
    let failed = false;
    const onError = (err: Error, countAsFailure = true): void => {
      if (connected || failed) return;
      failed = true;
      clearTimeout(timer);
      if (countAsFailure) {
        stats.upstream_cx_connect_fail.inc();
        host.counters.cxConnectFail++;
      }
      const kind = err instanceof UpstreamError ? err.kind : 'connect_failure';
      if (!ex.aborted) ex.handler.onResponseError(ex, new UpstreamError(kind, err.message));
      ex.aborted = true;
    };
    socket.once('error', onError);
    // Destroyed before connecting (pool destroyed, exchange abandoned): the waiting request must hear of it.
    socket.once('close', () => {
      if (!connected)
        onError(new UpstreamError('reset', 'connection closed before it was established'), false);
    });
    socket.once(this.tls ? 'secureConnect' : 'connect', () => {
      connected = true;
      clearTimeout(timer);
      socket.off('error', onError);
      stats.upstream_cx_connect_ms.record(monotonicMs() - started);
      if (ex.aborted) this.release(conn);
      else conn.start(ex);
    });
  }

  /** A connection finished its exchange and can be reused. */
  release(conn: H1Connection): void {
    if (
      this.closing ||
      (this.config.maxRequestsPerConnection > 0 && conn.served >= this.config.maxRequestsPerConnection)
    ) {
      conn.socket.destroy();
      return;
    }
    const next = this.waiting.shift();
    if (next) return conn.start(next);
    const hint = conn.keepAliveHintMs;
    const idleMs =
      hint !== undefined
        ? Math.min(this.idleTimeoutMs || hint, Math.max(hint - HINT_MARGIN_MS, 500))
        : this.idleTimeoutMs;
    conn.setIdleTimeout(idleMs);
    this.idle.push(conn);
  }

  /** A connection is gone (any reason): forget it and let a queued request have its slot. */
  closed(conn: H1Connection): void {
    if (!this.all.delete(conn)) return;
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    countConnectionClosed(this.stats, this.breaker, this.host);
    const next = this.waiting.shift();
    if (next) this.assign(next);
  }

  onBytes(rx: number, tx: number): void {
    this.stats.upstream_cx_rx_bytes_total.inc(rx);
    this.stats.upstream_cx_tx_bytes_total.inc(tx);
  }

  /** Closes idle connections now; busy ones close when their exchange ends. */
  async close(): Promise<void> {
    this.closing = true;
    for (const c of this.idle.splice(0)) c.socket.destroy();
  }

  /** Drops every connection at once. */
  async destroy(): Promise<void> {
    this.closing = true;
    for (const c of this.all) c.socket.destroy();
    for (const ex of this.waiting.splice(0)) {
      if (!ex.aborted) ex.handler.onResponseError(ex, new UpstreamError('reset', 'connection pool closed'));
    }
  }
}
