// HTTP/2 connections to one host: requests multiplexed as streams, another connection when every one is full.

import { type ClientHttp2Session, connect as h2connect } from 'node:http2';
import type { Socket } from 'node:net';
import { monotonicMs } from '../clock.js';
import { IdleTimer } from '../timers.js';
import { countConnectionClosed, countConnectionOpened } from './accounting.js';
import { connectToHost, H2_ALPN } from './connect.js';
import { H2Exchange, type H2ExchangeOwner } from './h2_exchange.js';
import { StreamPool } from './stream_pool.js';
import { UpstreamError, type UpstreamHandler, type UpstreamRequest } from './upstream_request.js';

/** Streams assumed allowed on a connection whose peer has not sent its SETTINGS yet (RFC 9113 §6.5.2 says 100). */
const ASSUMED_PEER_STREAMS = 100;

/** One HTTP/2 connection of the pool. */
class H2Client implements H2ExchangeOwner {
  readonly session: ClientHttp2Session;
  readonly active = new Set<H2Exchange>();
  /** Exchanges waiting for the connection to be established. */
  readonly queued: H2Exchange[] = [];
  connected = false;
  /** GOAWAY received, max requests reached or pool closing: no new streams. */
  retired = false;
  closed = false;
  served = 0;
  private readonly idle: IdleTimer;

  constructor(
    private readonly pool: Http2Pool,
    socket: Socket,
  ) {
    const h2 = pool.config.http2;
    this.session = h2connect(`http://${pool.host.key}`, {
      createConnection: () => socket,
      settings: {
        enablePush: false,
        initialWindowSize: h2.initialStreamWindowSize,
        headerTableSize: h2.hpackTableSize,
      },
      maxSessionMemory: 64,
      peerMaxConcurrentStreams: ASSUMED_PEER_STREAMS,
    });
    this.idle = new IdleTimer(() => {
      if (this.active.size === 0) this.close();
    });
  }

  get reused(): boolean {
    return this.served > 0;
  }

  /** Streams this connection may still open now. */
  get capacity(): number {
    if (this.retired || this.closed) return 0;
    const peer = this.connected
      ? (this.session.remoteSettings.maxConcurrentStreams ?? ASSUMED_PEER_STREAMS)
      : ASSUMED_PEER_STREAMS;
    const limit = Math.min(peer, this.pool.config.http2.maxConcurrentStreams);
    return limit - this.active.size - this.queued.length;
  }

  run(ex: H2Exchange): void {
    if (!this.connected) {
      this.queued.push(ex);
      return;
    }
    this.idle.set(0);
    this.active.add(ex);
    this.served++;
    const max = this.pool.config.maxRequestsPerConnection;
    if (max > 0 && this.served >= max) this.retired = true;
    ex.start(this.session, this);
  }

  exchangeDone(ex: H2Exchange): void {
    if (!this.active.delete(ex)) return;
    this.pool.pump();
    if (this.active.size === 0) {
      if (this.retired) this.close();
      else this.idle.set(this.pool.config.upstreamIdleTimeoutMs);
    }
  }

  /** No new streams; closes once the streams in flight end. */
  close(): void {
    this.retired = true;
    this.idle.close();
    if (!this.session.closed) this.session.close();
  }

  destroy(): void {
    this.retired = true;
    this.idle.close();
    this.session.destroy();
  }
}

export class Http2Pool extends StreamPool<H2Exchange, H2Client> {
  protected exchange(
    req: UpstreamRequest,
    handler: UpstreamHandler,
    dequeue: (ex: H2Exchange) => void,
  ): H2Exchange {
    return new H2Exchange(req, handler, dequeue);
  }

  protected open(): H2Client {
    const { host, stats } = this;
    countConnectionOpened(stats, this.breaker, host, 'http2');
    const started = monotonicMs();
    const socket: Socket = connectToHost({ config: this.config, tls: this.tls }, host, {
      alpn: this.alpn ?? H2_ALPN,
    });
    const client = new H2Client(this, socket);
    this.clients.add(client);
    const session = client.session;
    const timer = setTimeout(() => {
      stats.upstream_cx_connect_timeout.inc();
      socket.destroy(
        new UpstreamError('connect_timeout', `connect timeout after ${this.config.connectTimeoutMs} ms`),
      );
    }, this.config.connectTimeoutMs);
    session.once('connect', () => {
      clearTimeout(timer);
      stats.upstream_cx_connect_ms.record(monotonicMs() - started);
      client.connected = true;
      const h2 = this.config.http2;
      if (h2.initialConnectionWindowSize > 65_535) session.setLocalWindowSize(h2.initialConnectionWindowSize);
      for (const ex of client.queued.splice(0)) client.run(ex);
    });
    // The peer's SETTINGS may raise or lower how many streams fit: queued requests may move now.
    session.on('remoteSettings', () => this.pump());
    session.on('goaway', () => {
      client.retired = true;
      this.pump();
    });
    session.on('error', (err: Error) => {
      if (!client.connected) {
        clearTimeout(timer);
        const kind = err instanceof UpstreamError ? err.kind : 'connect_failure';
        stats.upstream_cx_connect_fail.inc();
        host.counters.cxConnectFail++;
        const e = new UpstreamError(kind, err.message);
        for (const ex of client.queued.splice(0)) ex.fail(e);
      }
    });
    session.once('close', () => {
      clearTimeout(timer);
      client.closed = true;
      client.retired = true;
      const e = new UpstreamError(
        client.connected ? 'reset' : 'connect_failure',
        client.connected ? 'upstream connection closed' : 'connection closed before it was established',
        client.reused,
      );
      for (const ex of client.queued.splice(0)) ex.fail(e);
      for (const ex of [...client.active]) ex.fail(e);
      this.clients.delete(client);
      countConnectionClosed(stats, this.breaker, host, socket);
      this.pump();
    });
    session.on('frameError', () => this.codecStats['http2.rx_messaging_error'].inc());
    return client;
  }
}
