// Keep-alive HTTP/1.1 connection pool to one host, on undici's Pool, with Envoy's connection stats.

import { type Dispatcher, Pool } from 'undici';
import type { ClusterConfig } from '../../config/model.js';
import type { CircuitBreaker } from './circuit_breaker.js';
import type { Host } from './host.js';
import type { ClusterStats } from './stats.js';

/** The most a server's keep-alive hint may extend an idle upstream connection. */
const DEFAULT_KEEPALIVE_MS = 4000;

export class Http1Pool {
  private readonly pool: Pool;
  private closed = false;

  constructor(
    readonly host: Host,
    config: ClusterConfig,
    private readonly stats: ClusterStats,
    private readonly breaker: CircuitBreaker,
  ) {
    const origin = `http://${host.key}`;
    const idle = config.upstreamIdleTimeoutMs === 0 ? 3_600_000 : config.upstreamIdleTimeoutMs;
    this.pool = new Pool(origin, {
      connections: config.circuitBreakers.maxConnections,
      pipelining: 1,
      connect: { timeout: config.connectTimeoutMs, noDelay: true },
      keepAliveTimeout: Math.min(DEFAULT_KEEPALIVE_MS, idle),
      keepAliveMaxTimeout: idle,
      headersTimeout: 0,
      bodyTimeout: 0,
      maxHeaderSize: 96 * 1024,
      strictContentLength: true,
      maxRequestsPerClient: config.maxRequestsPerConnection || undefined,
    });
    this.pool.on('connect', this.onConnect);
    this.pool.on('disconnect', this.onDisconnect);
    this.pool.on('connectionError', this.onConnectionError);
  }

  private readonly onConnect = (): void => {
    const h = this.host.counters;
    h.cxTotal++;
    h.cxActive++;
    this.stats.upstream_cx_total.inc();
    this.stats.upstream_cx_http1_total.inc();
    this.stats.upstream_cx_active.inc();
    this.breaker.adjust('connections', 1);
  };

  private readonly onDisconnect = (): void => {
    this.host.counters.cxActive--;
    this.stats.upstream_cx_active.dec();
    this.stats.upstream_cx_destroy.inc();
    this.breaker.adjust('connections', -1);
  };

  private readonly onConnectionError = (_origin: unknown, _targets: unknown, err: Error): void => {
    this.host.counters.cxConnectFail++;
    this.stats.upstream_cx_connect_fail.inc();
    if ((err as { code?: string }).code === 'UND_ERR_CONNECT_TIMEOUT')
      this.stats.upstream_cx_connect_timeout.inc();
  };

  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    this.pool.dispatch(opts, handler);
  }

  /** Closes idle connections now and the rest once their requests finish. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.close().catch(() => undefined);
  }

  /** Drops every connection at once (process exit). */
  async destroy(): Promise<void> {
    this.closed = true;
    await this.pool.destroy().catch(() => undefined);
  }
}
