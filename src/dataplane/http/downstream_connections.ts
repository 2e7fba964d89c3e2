// The downstream connections of one HTTP connection manager: picks each one's codec (HTTP/1.1 or HTTP/2),
// counts them in Envoy's stats, and drains or closes them all.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { HcmConfig } from '../../config/model.js';
import { isTlsSocket } from '../../lazy_builtins.js';
import { monotonicMs } from '../clock.js';
import { restoredDestination } from '../listener/restored_destination.js';
import { formatAddress, plainIp } from '../observe/stream_info.js';
import { detectHttp2Preface } from './codec_detect.js';
import { Http1ServerConnection, type ServerCodecOptions } from './h1/server_connection.js';
import { type NativeH2Options, NativeH2Session } from './h2/native/session.js';
import type { Http2ServerConnection } from './h2/server_connection.js';
import type { HcmStats, Http2CodecStats } from './stats.js';
import type { DownstreamConnection, DownstreamStream } from './stream.js';

/**
 * REMORA_H2_CODEC=node keeps node:http2 for downstream HTTP/2 (to compare); the default is the native codec.
 * node:http2 is loaded only then: it costs a sidecar 1.6 MiB of memory.
 */
const NodeH2Codec =
  process.env.REMORA_H2_CODEC === 'node'
    ? (await import('./h2/server_connection.js')).Http2ServerConnection
    : undefined;

export interface DownstreamCallbacks {
  onRequest(stream: DownstreamStream): void;
  /** A connection closed (for whoever waits for the manager to go idle). */
  onClosed(): void;
}

export class DownstreamConnections {
  private readonly h1 = new Set<Http1ServerConnection>();
  private readonly h2 = new Set<Http2ServerConnection | NativeH2Session>();
  private readonly h1Options: ServerCodecOptions;
  private readonly h2Options: NativeH2Options;
  private draining = false;

  constructor(
    private readonly config: HcmConfig,
    private readonly stats: HcmStats,
    private readonly h2Stats: Http2CodecStats,
    private readonly cb: DownstreamCallbacks,
  ) {
    this.h1Options = {
      maxHeaderBytes: config.maxRequestHeadersKb * 1024,
      maxHeaders: config.maxHeadersCount,
      idleTimeoutMs: config.idleTimeoutMs,
      headersTimeoutMs: config.requestHeadersTimeoutMs,
      streamIdleTimeoutMs: config.streamIdleTimeoutMs,
      delayedCloseTimeoutMs: config.delayedCloseTimeoutMs,
    };
    this.h2Options = {
      http2: config.http2,
      maxHeaderBytes: config.maxRequestHeadersKb * 1024,
      maxHeaders: config.maxHeadersCount,
      idleTimeoutMs: config.idleTimeoutMs,
      drainTimeoutMs: config.drainTimeoutMs,
      streamIdleTimeoutMs: config.streamIdleTimeoutMs,
    };
  }

  get size(): number {
    return this.h1.size + this.h2.size;
  }

  /** Takes an accepted connection (plain, or TLS already terminated) and picks its codec. */
  accept(socket: Socket): void {
    const secure = isTlsSocket(socket);
    const codec = this.config.codecType;
    if (codec === 'HTTP1') return this.startHttp1(socket, secure);
    if (codec === 'HTTP2') return this.startHttp2(socket, secure);
    const alpn = secure ? (socket as TLSSocket).alpnProtocol : false;
    if (alpn === 'h2') return this.startHttp2(socket, true);
    if (alpn === 'http/1.1' || alpn === 'http/1.0') return this.startHttp1(socket, true);
    // No ALPN to go by: the HTTP/2 connection preface tells (Envoy's AUTO codec does the same).
    detectHttp2Preface(socket, this.config.idleTimeoutMs, (h2) =>
      h2 ? this.startHttp2(socket, secure) : this.startHttp1(socket, secure),
    );
  }

  private startHttp1(socket: Socket, secure: boolean): void {
    const s = this.stats;
    const conn = new Http1ServerConnection(socket, this.h1Options, {
      onRequest: this.cb.onRequest,
      onProtocolError: (kind) => {
        switch (kind) {
          case 'parse':
            s.downstream_cx_protocol_error.inc();
            break;
          case 'too_large':
            s.downstream_rq_too_large.inc();
            break;
          case 'header_timeout':
            s.downstream_rq_header_timeout.inc();
            break;
          case 'idle_timeout':
            s.downstream_cx_idle_timeout.inc();
            break;
          case 'stream_idle':
            s.downstream_rq_idle_timeout.inc();
            break;
        }
      },
    });
    const info = connectionInfo(socket, secure);
    conn.remoteIp = info.remoteIp;
    conn.remoteAddress = info.remoteAddress;
    conn.localAddress = info.localAddress;
    conn.originalDestination = info.originalDestination;
    conn.secure = secure;
    if (this.draining) conn.draining = true;
    this.h1.add(conn);
    this.count(socket, secure, false, () => this.h1.delete(conn));
    // Bytes read to choose the codec were put back: reading must start again.
    conn.start();
  }

  private startHttp2(socket: Socket, secure: boolean): void {
    const s = this.stats;
    const Codec = NodeH2Codec ?? NativeH2Session;
    const conn = new Codec(socket, connectionInfo(socket, secure), this.h2Options, this.h2Stats, {
      onStream: this.cb.onRequest,
      onIdleTimeout: () => s.downstream_cx_idle_timeout.inc(),
      onStreamIdleTimeout: () => s.downstream_rq_idle_timeout.inc(),
      onPrematureResets: () => s.downstream_rq_too_many_premature_resets.inc(),
      onProtocolError: () => s.downstream_cx_protocol_error.inc(),
    });
    this.h2.add(conn);
    this.count(socket, secure, true, () => this.h2.delete(conn));
    if (this.draining) conn.drain();
  }

  /** Counts a new connection and, when it closes, its end; `forget` drops it from its set first. */
  private count(socket: Socket, secure: boolean, h2: boolean, forget: () => void): void {
    const s = this.stats;
    s.downstream_cx_total.inc();
    s.downstream_cx_active.inc();
    if (h2) {
      s.downstream_cx_http2_total.inc();
      s.downstream_cx_http2_active.inc();
    } else {
      s.downstream_cx_http1_total.inc();
      s.downstream_cx_http1_active.inc();
    }
    if (secure) {
      s.downstream_cx_ssl_total.inc();
      s.downstream_cx_ssl_active.inc();
    }
    const opened = monotonicMs();
    socket.once('close', () => {
      forget();
      s.downstream_cx_active.dec();
      if (h2) s.downstream_cx_http2_active.dec();
      else s.downstream_cx_http1_active.dec();
      if (secure) s.downstream_cx_ssl_active.dec();
      s.downstream_cx_destroy.inc();
      s.downstream_cx_rx_bytes_total.inc(socket.bytesRead);
      s.downstream_cx_tx_bytes_total.inc(socket.bytesWritten);
      s.downstream_cx_length_ms.record(monotonicMs() - opened);
      if (this.draining) s.downstream_cx_drain_close.inc();
      this.cb.onClosed();
    });
  }

  /**
   * HTTP/1.1 connections close after their next response (connection: close); HTTP/2 ones get GOAWAY. Idle
   * HTTP/1.1 connections are not closed now: a client may be sending a request on one at this moment.
   */
  drain(): void {
    this.draining = true;
    for (const c of this.h1) c.draining = true;
    for (const c of this.h2) c.drain();
  }

  /** Closes every connection now. */
  close(): void {
    for (const c of this.h1) c.socket.destroy();
    for (const c of this.h2) c.destroy();
  }
}

function connectionInfo(socket: Socket, secure: boolean): DownstreamConnection {
  const original = restoredDestination(socket);
  return {
    remoteIp: plainIp(socket.remoteAddress ?? ''),
    remoteAddress: formatAddress(socket.remoteAddress, socket.remotePort),
    // As Envoy: once restored, the original destination is the connection's local address (access logs, headers).
    localAddress: original
      ? formatAddress(original.address, original.port)
      : formatAddress(socket.localAddress, socket.localPort),
    originalDestination: original,
    secure,
    socket,
  };
}
