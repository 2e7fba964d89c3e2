// TLS termination for a filter chain (DownstreamTlsContext): handshakes accepted sockets, verifies clients.

import type { Socket } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { DownstreamTlsConfig } from '../../config/model.js';
import type { Logger } from '../observe/log.js';
import type { ScopeTag, StatsStore } from '../observe/stats.js';
import { ReloadingContext } from './reloading_context.js';
import { compileSanMatchers, type SanPredicate, sanMismatch } from './san_match.js';
import { DOWNSTREAM_TLS_STATS, type DownstreamTlsStats } from './stats.js';

/** Node's longest timer (about 24.8 days): "no handshake timeout", since tls.Server treats 0 as its default. */
const NO_TIMEOUT_MS = 2 ** 31 - 1;

export interface DownstreamTlsOptions {
  readonly store: StatsStore;
  /** The listener's stats scope; asked for when first needed, since a listener on port 0 knows its port once bound. */
  readonly scope: () => ScopeTag;
  readonly logger: Logger;
  /** Names the filter chain in log lines: `listener "web" filter chain "tls"`. */
  readonly name: string;
}

interface Pending {
  readonly socket: Socket;
  readonly onSecure: (s: TLSSocket) => void;
}

/**
 * One filter chain's TLS server side. The handshake runs in a tls.Server that never listens: it is handed the
 * listener's sockets, and gives Node's client certificate verification, handshake timeout and hot context swap.
 *
 * Clients: with `trusted_ca`, a client certificate is asked for and, when one comes, must chain to it; with
 * `require_client_certificate` or SAN matchers, one is required. ALPN: Node refuses a client whose protocols share
 * none of `alpn_protocols` (RFC 7301's no_application_protocol alert), where Envoy goes on without ALPN.
 */
export class DownstreamTls {
  private readonly engine: Server;
  private readonly context: ReloadingContext;
  private readonly pending = new Map<string, Pending>();
  private readonly sanMatch: SanPredicate | undefined;
  private readonly requireCert: boolean;
  private statsCache: DownstreamTlsStats | undefined;
  private closed = false;

  /** Reads the certificate files now: throws TlsMaterialError when they cannot be used. */
  constructor(
    readonly config: DownstreamTlsConfig,
    private readonly opts: DownstreamTlsOptions,
  ) {
    const common = config.commonTlsContext;
    const matchers = common.validationContext?.matchTypedSubjectAltNames ?? [];
    this.sanMatch = matchers.length > 0 ? compileSanMatchers(matchers) : undefined;
    // Envoy: SAN matchers make a client certificate mandatory, as require_client_certificate does.
    this.requireCert = config.requireClientCertificate || matchers.length > 0;
    // Set before the engine exists; a reload can only happen once a file changes, well after.
    let engine: Server | undefined;
    this.context = new ReloadingContext(common, {
      name: opts.name,
      logger: opts.logger,
      stats: () => this.stats,
      extra: { honorCipherOrder: !config.preferClientCiphers },
      onUpdate: (loaded) => engine?.setSecureContext(loaded.options),
    });
    engine = createServer({
      ...this.context.current.options,
      requestCert: common.validationContext?.trustedCa !== undefined,
      // With this, Node fails a handshake without a client certificate and drops one with a bad certificate.
      rejectUnauthorized: this.requireCert,
      ALPNProtocols: common.alpnProtocols.length > 0 ? [...common.alpnProtocols] : undefined,
      handshakeTimeout: config.transportSocketConnectTimeoutMs || NO_TIMEOUT_MS,
    });
    engine.on('secureConnection', this.onSecureConnection);
    engine.on('tlsClientError', this.onClientError);
    this.engine = engine;
  }

  private get stats(): DownstreamTlsStats {
    this.statsCache ??= this.opts.store.scope(this.opts.scope(), DOWNSTREAM_TLS_STATS);
    return this.statsCache;
  }

  /**
   * Runs the TLS handshake on an accepted socket (which may hold bytes a listener filter read and put back with
   * `unshift`) and calls `onSecure` with the TLS socket once the handshake and the client checks pass. A failure
   * destroys the socket and is counted.
   */
  accept(socket: Socket, onSecure: (s: TLSSocket) => void): void {
    if (this.closed || socket.destroyed) {
      socket.destroy();
      return;
    }
    const key = connectionKey(socket);
    this.pending.set(key, { socket, onSecure });
    socket.once('close', () => {
      if (this.pending.get(key)?.socket === socket) this.pending.delete(key);
    });
    this.engine.emit('connection', socket);
  }

  private readonly onSecureConnection = (t: TLSSocket): void => {
    t.on('error', () => undefined);
    // The engine's TLS socket wraps one of ours: they share the connection's addresses.
    const key = connectionKey(t);
    const p = this.pending.get(key);
    this.pending.delete(key);
    if (p === undefined) {
      t.destroy();
      return;
    }
    const stats = this.stats;
    const cert = t.getPeerX509Certificate();
    if (cert === undefined) {
      if (this.requireCert) {
        stats['ssl.fail_verify_no_cert'].inc();
        t.destroy();
        return;
      }
      stats['ssl.no_certificate'].inc();
    } else if (!t.authorized) {
      stats['ssl.fail_verify_error'].inc();
      this.opts.logger.debug(`${this.opts.name}: client certificate rejected`, {
        error: t.authorizationError,
      });
      t.destroy();
      return;
    } else if (this.sanMatch !== undefined) {
      const why = sanMismatch(
        this.config.commonTlsContext.validationContext!.matchTypedSubjectAltNames,
        this.sanMatch,
        cert.subjectAltName,
      );
      if (why !== undefined) {
        stats['ssl.fail_verify_san'].inc();
        this.opts.logger.debug(`${this.opts.name}: client certificate rejected: ${why}`);
        t.destroy();
        return;
      }
    }
    stats['ssl.handshake'].inc();
    if (t.isSessionReused()) stats['ssl.session_reused'].inc();
    p.onSecure(t);
  };

  private readonly onClientError = (err: Error & { code?: string }, t: TLSSocket): void => {
    const stats = this.stats;
    if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') stats.downstream_cx_transport_socket_connect_timeout.inc();
    else if (err.code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') stats['ssl.fail_verify_no_cert'].inc();
    // Node drops a client whose certificate does not verify without an error of its own: the hang-up says it.
    else if (t.authorizationError) stats['ssl.fail_verify_error'].inc();
    else if (err.code?.startsWith('ERR_SSL_')) stats['ssl.connection_error'].inc();
    this.opts.logger.debug(`${this.opts.name}: TLS handshake failed`, {
      error: err.message,
      verify: t.authorizationError ?? undefined,
    });
    t.destroy();
  };

  /** Stops watching the files and drops handshakes in progress; established connections are the listener's. */
  close(): void {
    this.closed = true;
    this.context.close();
    for (const p of this.pending.values()) p.socket.destroy();
    this.pending.clear();
  }
}

/** A live TCP connection is unique by its two ends. */
function connectionKey(s: Socket): string {
  return `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
}
