// The downstream HTTP/2 codec: one accepted socket as an HTTP/2 session, its streams, limits and abuse defences.

import {
  constants,
  type IncomingHttpHeaders,
  performServerHandshake,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { IdleTimer } from '../../timers.js';
import type { Http2CodecStats } from '../stats.js';
import type { DownstreamConnection } from '../stream.js';
import { requestHead } from './headers.js';
import {
  type H2ServerOptions,
  PREMATURE_RESET_LIFETIME_MS,
  PREMATURE_RESET_TOTAL_STREAMS,
} from './server_options.js';
import { H2Stream, type H2StreamOwner } from './stream.js';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR } = constants;

export interface H2ServerCallbacks {
  onStream(stream: H2Stream): void;
  onIdleTimeout(): void;
  onPrematureResets(): void;
  onProtocolError(): void;
}

/** One downstream HTTP/2 connection. */
export class Http2ServerConnection implements H2StreamOwner {
  readonly session: ServerHttp2Session;
  private readonly streams = new Set<H2Stream>();
  private closedStreams = 0;
  private prematureResets = 0;
  private draining = false;
  /** shutdown() has begun: streams still closing must not trigger another one. */
  private closing = false;
  private readonly idle: IdleTimer;

  constructor(
    readonly socket: Socket,
    readonly info: DownstreamConnection,
    private readonly opts: H2ServerOptions,
    private readonly stats: Http2CodecStats,
    private readonly cb: H2ServerCallbacks,
  ) {
    const h = opts.http2;
    this.session = performServerHandshake(socket, {
      settings: {
        enablePush: false,
        maxConcurrentStreams: h.maxConcurrentStreams,
        initialWindowSize: h.initialStreamWindowSize,
        headerTableSize: h.hpackTableSize,
        maxHeaderListSize: opts.maxHeaderBytes,
      },
      maxHeaderListPairs: opts.maxHeaders + 4,
      maxOutstandingPings: 10,
      maxSettings: 32,
      // nghttp2 refuses new streams (ENHANCE_YOUR_CALM) once a session holds this much: floods stay bounded.
      maxSessionMemory: 32,
      maxSendHeaderBlockLength: 256 * 1024,
      unknownProtocolTimeout: 10_000,
    });
    const session = this.session;
    // Bytes read to choose the codec were put back: the session reads them on the next tick (the socket must
    // stay paused until then, or they would be emitted to nobody).
    session.on('stream', this.onStream);
    session.on('error', () => this.cb.onProtocolError());
    session.on('frameError', () => this.stats['http2.rx_messaging_error'].inc());
    session.on('goaway', () => undefined);
    session.once('connect', () => {
      if (h.initialConnectionWindowSize > 65_535 && !session.destroyed) {
        session.setLocalWindowSize(h.initialConnectionWindowSize);
      }
    });
    this.idle = new IdleTimer(() => {
      if (this.streams.size > 0) return;
      this.cb.onIdleTimeout();
      this.shutdown(NGHTTP2_NO_ERROR);
    });
    this.idle.set(opts.idleTimeoutMs);
  }

  get activeStreams(): number {
    return this.streams.size;
  }

  private readonly onStream = (
    s: ServerHttp2Stream,
    _headers: IncomingHttpHeaders,
    _flags: number,
    raw: string[],
  ): void => {
    const head = requestHead(raw);
    const stream = new H2Stream(s, head, this.info, this);
    this.streams.add(stream);
    this.stats['http2.streams_active'].inc();
    if (this.streams.size === 1) this.idle.set(0);
    this.cb.onStream(stream);
  };

  streamClosed(stream: H2Stream, peerReset: boolean): void {
    if (!this.streams.delete(stream)) return;
    this.stats['http2.streams_active'].dec();
    this.closedStreams++;
    if (stream.resetSent) this.stats['http2.tx_reset'].inc();
    if (peerReset) {
      this.stats['http2.rx_reset'].inc();
      if (Date.now() - stream.opened < PREMATURE_RESET_LIFETIME_MS) {
        this.prematureResets++;
        this.checkPrematureResets();
      }
    }
    if (this.streams.size === 0) {
      if (this.draining) this.shutdown(NGHTTP2_NO_ERROR);
      else this.idle.set(this.opts.idleTimeoutMs);
    }
  }

  private checkPrematureResets(): void {
    const limit = PREMATURE_RESET_TOTAL_STREAMS;
    const tooMany =
      this.closedStreams < limit
        ? this.prematureResets >= limit / 2
        : this.prematureResets * 2 >= this.closedStreams;
    if (!tooMany || this.closing || this.session.destroyed) return;
    this.cb.onPrematureResets();
    this.shutdown(NGHTTP2_ENHANCE_YOUR_CALM, true);
  }

  /**
   * Graceful drain: a GOAWAY tells the client to open no new streams; streams in flight finish, then the
   * connection closes — at the latest after drain_timeout.
   */
  drain(): void {
    if (this.draining || this.session.destroyed) return;
    this.draining = true;
    this.stats['http2.goaway_sent'].inc();
    this.session.close();
    if (this.streams.size === 0) return this.shutdown(NGHTTP2_NO_ERROR);
    const t = setTimeout(() => this.shutdown(NGHTTP2_NO_ERROR, true), this.opts.drainTimeoutMs);
    t.unref();
    this.session.once('close', () => clearTimeout(t));
  }

  /** GOAWAY with `code`, then close; `abort` drops streams in flight at once. */
  private shutdown(code: number, abort = false): void {
    const session = this.session;
    if (session.destroyed) return;
    this.closing = true;
    if (!this.draining || code !== NGHTTP2_NO_ERROR) this.stats['http2.goaway_sent'].inc();
    this.idle.close();
    if (abort || this.streams.size === 0) {
      session.goaway(code);
      // Let the GOAWAY frame reach the socket before it is closed.
      setImmediate(() => {
        session.destroy();
        this.socket.destroy();
      });
    } else {
      session.close();
    }
  }

  /** Closes the connection now. */
  destroy(): void {
    this.idle.close();
    this.session.destroy();
    this.socket.destroy();
  }
}
