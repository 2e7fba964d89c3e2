// TLS termination for a filter chain (DownstreamTlsContext): handshakes accepted sockets, verifies clients.

import type { Socket } from 'node:net';
import type { Server, TLSSocket } from 'node:tls';
import type { DownstreamTlsConfig, SanMatcherConfig } from '../../config/model.js';
import { nodeTls } from '../../lazy_builtins.js';
import type { Logger } from '../observe/log.js';
import type { ScopeTag, StatsStore } from '../observe/stats.js';
import type { LoadedContext } from './material.js';
import { type ContextUpdateStats, ReloadingContext, type SecretReadiness } from './reloading_context.js';
import { compileSanMatchers, type SanPredicate, sanMismatch } from './san_match.js';
import type { SecretManager } from './secret_manager.js';
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
  /** Where the secrets the context names come from (static, SDS); required when it names one. */
  readonly secrets?: SecretManager;
}

/** How clients are verified under one version of the context (its validation context may come by SDS). */
interface Verification {
  /** A client certificate is asked for (there is a CA to check it against). */
  readonly requestCert: boolean;
  /** And required: require_client_certificate, or SAN matchers (Envoy makes a certificate mandatory then). */
  readonly requireCert: boolean;
  readonly matchers: readonly SanMatcherConfig[];
  readonly sanMatch: SanPredicate | undefined;
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
  /**
   * With alpn_protocols: an engine that selects none, for a client whose ClientHello (read by tls_inspector)
   * offers none of them. Envoy's handshake then goes on without ALPN, where Node's would fail with
   * no_application_protocol (an Istio client offers `istio-http/1.1`, an Istio server `h2, http/1.1`).
   */
  private readonly noAlpnEngine: Server | undefined;
  private readonly alpn: readonly string[];
  private readonly context: ReloadingContext;
  private readonly pending = new Map<string, Pending>();
  private verification: Verification;
  private statsCache: DownstreamTlsStats | undefined;
  private closed = false;

  /**
   * Reads the certificate files now: throws TlsMaterialError when they cannot be used, or when it names a static
   * secret there is none of. A context whose secrets come by SDS is not `ready` until they have arrived.
   */
  constructor(
    readonly config: DownstreamTlsConfig,
    private readonly opts: DownstreamTlsOptions,
  ) {
    const common = config.commonTlsContext;
    // Set before the engine exists; an update can only come once a file changes or a secret arrives, well after.
    const engines: Server[] = [];
    this.context = new ReloadingContext(common, {
      name: opts.name,
      logger: opts.logger,
      stats: () => this.updateStats,
      extra: { honorCipherOrder: !config.preferClientCiphers },
      secrets: opts.secrets,
      check: (loaded) =>
        config.requireClientCertificate && loaded.validation?.trustedCa === undefined
          ? 'require_client_certificate needs a trusted_ca to verify client certificates against, and the validation context has none'
          : undefined,
      onUpdate: (loaded) => {
        this.verification = this.verificationOf(loaded);
        for (const e of engines) this.configure(e, loaded);
      },
    });
    this.verification = this.verificationOf(this.context.current);
    this.alpn = common.alpnProtocols;
    const engine = (alpn: readonly string[]) => {
      const e = nodeTls().createServer({
        ...this.context.current?.options,
        ALPNProtocols: alpn.length > 0 ? [...alpn] : undefined,
        handshakeTimeout: config.transportSocketConnectTimeoutMs || NO_TIMEOUT_MS,
      });
      this.configure(e);
      e.on('secureConnection', this.onSecureConnection);
      e.on('tlsClientError', this.onClientError);
      engines.push(e);
      return e;
    };
    this.engine = engine(this.alpn);
    this.noAlpnEngine = this.alpn.length > 0 ? engine([]) : undefined;
  }

  /** Whether the secrets the context names have arrived (it takes handshakes), and what it waits for. */
  get readiness(): SecretReadiness {
    return this.context;
  }

  private verificationOf(loaded: LoadedContext | undefined): Verification {
    const v = loaded?.validation;
    const matchers = v?.matchTypedSubjectAltNames ?? [];
    return {
      requestCert: v?.trustedCa !== undefined,
      requireCert: this.config.requireClientCertificate || matchers.length > 0,
      matchers,
      sanMatch: matchers.length > 0 ? compileSanMatchers(matchers) : undefined,
    };
  }

  /**
   * Puts a version in the engine: its context, and whether to ask for client certificates. tls.Server reads
   * requestCert and rejectUnauthorized for each new connection, so handshakes in progress keep theirs.
   */
  private configure(engine: Server, loaded?: LoadedContext): void {
    if (loaded !== undefined) engine.setSecureContext(loaded.options);
    const e = engine as Server & { requestCert: boolean; rejectUnauthorized: boolean };
    e.requestCert = this.verification.requestCert;
    // With this, Node fails a handshake without a client certificate and drops one with a bad certificate.
    e.rejectUnauthorized = this.verification.requireCert;
  }

  private get stats(): DownstreamTlsStats {
    this.statsCache ??= this.opts.store.scope(this.opts.scope(), DOWNSTREAM_TLS_STATS);
    return this.statsCache;
  }

  private get updateStats(): ContextUpdateStats {
    const s = this.stats;
    return {
      byFile: s['ssl.context_update_by_file'],
      byFileError: s['ssl.context_update_by_file_error'],
      bySds: s['server_ssl_socket_factory.ssl_context_update_by_sds'],
    };
  }

  /** What /certs shows of it. */
  certificates() {
    return this.context.certificates();
  }

  /**
   * Runs the TLS handshake on an accepted socket (which may hold bytes a listener filter read and put back with
   * `unshift`) and calls `onSecure` with the TLS socket once the handshake and the client checks pass. A failure
   * destroys the socket and is counted.
   */
  accept(socket: Socket, onSecure: (s: TLSSocket) => void, offered?: readonly string[]): void {
    if (this.closed || socket.destroyed) {
      socket.destroy();
      return;
    }
    if (!this.context.ready) {
      // Envoy resets these too: the listener serves (its warming timed out) but its certificate has not come.
      this.stats['server_ssl_socket_factory.downstream_context_secrets_not_ready'].inc();
      this.opts.logger.debug(`${this.opts.name}: connection refused: waiting for secrets`, {
        secrets: this.context.missingSecrets(),
      });
      socket.destroy();
      return;
    }
    const key = connectionKey(socket);
    this.pending.set(key, { socket, onSecure });
    socket.once('close', () => {
      if (this.pending.get(key)?.socket === socket) this.pending.delete(key);
    });
    const noOverlap =
      this.noAlpnEngine !== undefined &&
      offered !== undefined &&
      offered.length > 0 &&
      !offered.some((p) => this.alpn.includes(p));
    (noOverlap ? (this.noAlpnEngine as Server) : this.engine).emit('connection', socket);
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
    const v = this.verification;
    const cert = t.getPeerX509Certificate();
    if (cert === undefined) {
      if (v.requireCert) {
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
    } else if (v.sanMatch !== undefined) {
      const why = sanMismatch(v.matchers, v.sanMatch, cert.subjectAltName);
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
