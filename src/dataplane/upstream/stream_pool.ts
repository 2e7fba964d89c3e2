// Where requests go in a pool of multiplexed (HTTP/2) connections to one host: a connection with room, a new
// one within max_connections, or a queue that moves as streams end. Opening a connection is the codec's.

import type { ClusterConfig } from '../../config/model.js';
import type { Http2CodecStats } from '../http/stats.js';
import type { UpstreamTls } from '../tls/upstream.js';
import type { CircuitBreaker } from './circuit_breaker.js';
import type { Host } from './host.js';
import type { ClusterStats } from './stats.js';
import {
  type ConnectionPool,
  type UpstreamController,
  UpstreamError,
  type UpstreamHandler,
  type UpstreamRequest,
} from './upstream_request.js';

/** One request as the pool handles it: the router's controller, which the pool can fail. */
export interface PooledExchange extends UpstreamController {
  fail(err: UpstreamError): void;
}

/** One connection as the pool sees it. */
export interface PooledStreamConnection<E> {
  /** Streams it may still open now (0 when retired or closed). */
  readonly capacity: number;
  /** Exchanges waiting for it to be established. */
  readonly queued: E[];
  run(ex: E): void;
  /** No new streams; closes once the streams in flight end. */
  close(): void;
  destroy(): void;
}

export abstract class StreamPool<E extends PooledExchange, C extends PooledStreamConnection<E>>
  implements ConnectionPool
{
  protected readonly clients = new Set<C>();
  private readonly waiting: E[] = [];
  private closing = false;

  constructor(
    readonly host: Host,
    readonly config: ClusterConfig,
    protected readonly stats: ClusterStats,
    protected readonly codecStats: Http2CodecStats,
    protected readonly breaker: CircuitBreaker,
    protected readonly tls: UpstreamTls | undefined,
    /** ALPN offered over TLS instead of ["h2"] (istio.alpn). */
    protected readonly alpn?: readonly string[],
  ) {}

  /** The codec's exchange for a request; `dequeue` takes it out of a queue if it is abandoned there. */
  protected abstract exchange(req: UpstreamRequest, handler: UpstreamHandler, dequeue: (ex: E) => void): E;

  /** Opens (and counts) a new connection, already in `clients`. */
  protected abstract open(): C;

  dispatch(req: UpstreamRequest, handler: UpstreamHandler): UpstreamController {
    const ex = this.exchange(req, handler, this.dequeue);
    this.assign(ex);
    return ex;
  }

  private assign(ex: E): void {
    if (this.closing) return ex.fail(new UpstreamError('reset', 'connection pool closed'));
    for (const c of this.clients) {
      if (c.capacity > 0) return c.run(ex);
    }
    if (this.breaker.connections < this.breaker.limits.maxConnections || this.clients.size === 0) {
      if (this.breaker.connections >= this.breaker.limits.maxConnections)
        this.stats.upstream_cx_overflow.inc();
      return this.open().run(ex);
    }
    this.stats.upstream_cx_overflow.inc();
    this.waiting.push(ex);
  }

  private readonly dequeue = (ex: E): void => {
    const i = this.waiting.indexOf(ex);
    if (i >= 0) return void this.waiting.splice(i, 1);
    for (const c of this.clients) {
      const j = c.queued.indexOf(ex);
      if (j >= 0) return void c.queued.splice(j, 1);
    }
  };

  /** A stream ended or a connection changed: waiting requests may move. */
  pump(): void {
    while (this.waiting.length > 0 && !this.closing) {
      let placed = false;
      for (const c of this.clients) {
        if (c.capacity > 0) {
          c.run(this.waiting.shift()!);
          placed = true;
          break;
        }
      }
      if (!placed) {
        if (this.breaker.connections >= this.breaker.limits.maxConnections && this.clients.size > 0) return;
        this.open().run(this.waiting.shift()!);
      }
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const c of this.clients) c.close();
  }

  async destroy(): Promise<void> {
    this.closing = true;
    for (const ex of this.waiting.splice(0)) ex.fail(new UpstreamError('reset', 'connection pool closed'));
    for (const c of this.clients) c.destroy();
  }
}
