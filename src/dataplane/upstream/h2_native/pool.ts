// HTTP/2 connections to one host on Remora's own codec: requests multiplexed as streams, more connections when full.

import type { Socket } from 'node:net';
import { monotonicMs } from '../../clock.js';
import type { Http2CodecStats } from '../../http/stats.js';
import { readIntoSharedBuffer } from '../../read_buffer.js';
import { IdleTimer } from '../../timers.js';
import { countConnectionClosed, countConnectionOpened } from '../accounting.js';
import { connectToHost, H2_ALPN } from '../connect.js';
import { StreamPool } from '../stream_pool.js';
import { UpstreamError, type UpstreamHandler, type UpstreamRequest } from '../upstream_request.js';
import { ASSUMED_PEER_STREAMS, type ConnectionOwner, NativeH2Connection } from './connection.js';
import { NativeH2Exchange } from './exchange.js';

/** One connection of the pool and what the pool keeps about it. */
class PooledConnection implements ConnectionOwner {
  readonly conn: NativeH2Connection;
  /** Exchanges waiting for the connection to be established. */
  readonly queued: NativeH2Exchange[] = [];
  connected = false;
  /** Max requests reached or pool closing: no new streams. */
  retired = false;
  served = 0;
  private readonly idle: IdleTimer;

  constructor(
    private readonly pool: NativeHttp2Pool,
    readonly socket: Socket,
    codecStats: Http2CodecStats,
  ) {
    this.conn = new NativeH2Connection(socket, pool.config, codecStats, this, () => this.served > 0);
    this.idle = new IdleTimer(() => {
      if (this.conn.streams.size === 0) this.close();
    });
  }

  /** Streams this connection may still open now. */
  get capacity(): number {
    if (this.retired || this.conn.goneAway) return 0;
    const peer = this.connected ? this.conn.peerMaxStreams : ASSUMED_PEER_STREAMS;
    const limit = Math.min(peer, this.pool.config.http2.maxConcurrentStreams);
    return limit - this.conn.streams.size - this.queued.length;
  }

  run(ex: NativeH2Exchange): void {
    if (!this.connected) {
      this.queued.push(ex);
      return;
    }
    this.idle.set(0);
    this.served++;
    const max = this.pool.config.maxRequestsPerConnection;
    if (max > 0 && this.served >= max) this.retired = true;
    this.conn.start(ex);
  }

  established(): void {
    this.connected = true;
    for (const ex of this.queued.splice(0)) {
      if (!ex.done) this.run(ex);
    }
    this.conn.flush();
  }

  // ---- ConnectionOwner

  capacityChanged(): void {
    this.pool.pump();
  }

  exchangeDone(_conn: NativeH2Connection, _ex: NativeH2Exchange): void {
    if (this.conn.streams.size === 0) {
      if (this.retired) this.close();
      else this.idle.set(this.pool.config.upstreamIdleTimeoutMs);
    }
    this.pool.pump();
  }

  goaway(): void {
    this.retired = true;
    this.pool.pump();
  }

  closed(): void {
    this.idle.close();
  }

  /** No new streams; closes once the streams in flight end. */
  close(): void {
    this.retired = true;
    this.idle.close();
    if (this.connected) this.conn.end();
    else if (this.queued.length === 0) this.conn.destroy();
  }

  destroy(): void {
    this.retired = true;
    this.idle.close();
    this.conn.destroy();
  }
}

export class NativeHttp2Pool extends StreamPool<NativeH2Exchange, PooledConnection> {
  protected exchange(
    req: UpstreamRequest,
    handler: UpstreamHandler,
    dequeue: (ex: NativeH2Exchange) => void,
  ): NativeH2Exchange {
    return new NativeH2Exchange(req, handler, dequeue);
  }

  protected open(): PooledConnection {
    const { host, stats } = this;
    countConnectionOpened(stats, this.breaker, host, 'http2');
    const started = monotonicMs();
    let client: PooledConnection | undefined;
    const onread = readIntoSharedBuffer((chunk) => client?.conn.onRead(chunk) ?? true);
    const socket: Socket = connectToHost({ config: this.config, tls: this.tls }, host, {
      alpn: this.alpn ?? H2_ALPN,
      onread,
    });
    client = new PooledConnection(this, socket, this.codecStats);
    const c = client;
    this.clients.add(c);
    const timer = setTimeout(() => {
      stats.upstream_cx_connect_timeout.inc();
      socket.destroy(
        new UpstreamError('connect_timeout', `connect timeout after ${this.config.connectTimeoutMs} ms`),
      );
    }, this.config.connectTimeoutMs);
    socket.once(this.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      stats.upstream_cx_connect_ms.record(monotonicMs() - started);
      c.established();
    });
    socket.on('error', (err: Error) => {
      if (c.connected) return;
      clearTimeout(timer);
      const kind = err instanceof UpstreamError ? err.kind : 'connect_failure';
      stats.upstream_cx_connect_fail.inc();
      host.counters.cxConnectFail++;
      const e = new UpstreamError(kind, err.message);
      for (const ex of c.queued.splice(0)) ex.fail(e);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      c.retired = true;
      c.closed();
      const e = new UpstreamError('connect_failure', 'connection closed before it was established');
      for (const ex of c.queued.splice(0)) ex.fail(e);
      c.conn.socketClosed();
      this.clients.delete(c);
      countConnectionClosed(stats, this.breaker, host, socket);
      this.pump();
    });
    return c;
  }
}
