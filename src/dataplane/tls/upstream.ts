// TLS origination for a cluster (UpstreamTlsContext): connects to hosts with SNI, verifies them, presents a cert.

import type { OnReadOpts } from 'node:net';
import { type ConnectionOptions, connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { UpstreamTlsConfig } from '../../config/model.js';
import type { Logger } from '../observe/log.js';
import type { ScopeTag, StatsStore } from '../observe/stats.js';
import { ReloadingContext } from './reloading_context.js';
import { compileSanMatchers, type SanPredicate, sanMismatch } from './san_match.js';
import { UPSTREAM_TLS_STATS, type UpstreamTlsStats } from './stats.js';

export interface UpstreamTlsOptions {
  readonly store: StatsStore;
  /** The cluster's stats scope. */
  readonly scope: ScopeTag;
  readonly logger: Logger;
  /** Names the cluster in log lines: `cluster "web"`. */
  readonly name: string;
}

export interface UpstreamConnectOptions {
  /** net's `onread`: reads land in the caller's buffer (read_buffer.ts) instead of 'data' events. */
  readonly onread?: OnReadOpts;
  readonly allowHalfOpen?: boolean;
  /** ALPN to offer instead of the context's alpn_protocols (an HTTP/2 pool offers ["h2"]). */
  readonly alpn?: readonly string[];
  /** upstream_bind_config: the local address to connect from. */
  readonly localAddress?: string;
}

/** A server certificate whose SANs do not match match_typed_subject_alt_names. */
export class SanMismatchError extends Error {
  readonly code = 'REMORA_TLS_SAN_MISMATCH';
}

/**
 * OpenSSL's certificate verification results as Node reports them (`err.code`): these are "certificate verify
 * failed", everything else that ends a handshake is a TLS or a network error.
 */
const VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

/**
 * One cluster's TLS client side. Verification is Envoy's: without `trusted_ca` the server's certificate is not
 * verified at all; with it, the chain must lead to it, and the host name is not checked unless SAN matchers say
 * what to expect (any one matching is enough).
 */
export class UpstreamTls {
  readonly stats: UpstreamTlsStats;
  private readonly context: ReloadingContext;
  private readonly verify: boolean;
  private readonly sanMatch: SanPredicate | undefined;

  /** Reads the certificate files now: throws TlsMaterialError when they cannot be used. */
  constructor(
    readonly config: UpstreamTlsConfig,
    opts: UpstreamTlsOptions,
  ) {
    this.stats = opts.store.scope(opts.scope, UPSTREAM_TLS_STATS);
    const vc = config.commonTlsContext.validationContext;
    this.verify = vc?.trustedCa !== undefined;
    const matchers = vc?.matchTypedSubjectAltNames ?? [];
    this.sanMatch = matchers.length > 0 ? compileSanMatchers(matchers) : undefined;
    this.context = new ReloadingContext(config.commonTlsContext, {
      name: opts.name,
      logger: opts.logger,
      stats: () => this.stats,
    });
  }

  /**
   * The options of `tls.connect` for a connection to a host (without host and port): the current context, SNI,
   * ALPN and verification. For callers that open the connection themselves (`http2.connect`); `connect()` also
   * counts the handshake and words failures.
   */
  connectionOptions(alpn?: readonly string[]): ConnectionOptions {
    const protocols = alpn ?? this.config.commonTlsContext.alpnProtocols;
    return {
      secureContext: this.context.current.context,
      servername: this.config.sni === '' ? undefined : this.config.sni,
      ALPNProtocols: protocols.length > 0 ? [...protocols] : undefined,
      rejectUnauthorized: this.verify,
      checkServerIdentity: this.checkServerIdentity,
    };
  }

  /**
   * Opens a TLS connection. 'secureConnect' means the handshake and the verification passed; an 'error' before it
   * is a connect failure whose message says why ("certificate verify failed: SAN mismatch: ...").
   */
  connect(host: string, port: number, opts: UpstreamConnectOptions = {}): TLSSocket {
    // tls.connect hands `onread`, `allowHalfOpen` and `localAddress` to its socket (Node 20); @types/node does not list them.
    const options: ConnectionOptions & {
      onread?: OnReadOpts;
      allowHalfOpen?: boolean;
      localAddress?: string;
    } = {
      ...this.connectionOptions(opts.alpn),
      host,
      port,
      onread: opts.onread,
      allowHalfOpen: opts.allowHalfOpen,
      localAddress: opts.localAddress,
    };
    const socket = connect(options);
    socket.setNoDelay(true);
    this.observe(socket);
    return socket;
  }

  /** Counts a connection's handshake outcome and rewords its failure: call before adding other listeners. */
  observe(socket: TLSSocket): void {
    const onError = (err: Error & { code?: string }): void => {
      socket.off('secureConnect', onSecure);
      const stats = this.stats;
      if (err instanceof SanMismatchError) {
        stats['ssl.fail_verify_san'].inc();
      } else if (err.code !== undefined && VERIFY_CODES.has(err.code)) {
        stats['ssl.fail_verify_error'].inc();
        err.message = `certificate verify failed: ${err.message} (${err.code})`;
      } else if (err.code?.startsWith('ERR_SSL_')) {
        stats['ssl.connection_error'].inc();
        err.message = `TLS handshake failed: ${opensslReason(err.message)}`;
      }
    };
    const onSecure = (): void => {
      socket.off('error', onError);
      this.stats['ssl.handshake'].inc();
    };
    socket.once('error', onError);
    socket.once('secureConnect', onSecure);
  }

  private readonly checkServerIdentity = (_host: string, cert: PeerCertificate): Error | undefined => {
    if (this.sanMatch === undefined) return undefined;
    const matchers = this.config.commonTlsContext.validationContext!.matchTypedSubjectAltNames;
    const why = sanMismatch(matchers, this.sanMatch, cert.subjectaltname);
    return why === undefined ? undefined : new SanMismatchError(`certificate verify failed: ${why}`);
  };

  close(): void {
    this.context.close();
  }
}

/** "...:SSL routines:ssl3_read_bytes:sslv3 alert handshake failure:../deps/...": the reason in the middle. */
function opensslReason(message: string): string {
  const m = /SSL routines:[^:]*:([^:]+)/.exec(message);
  return m?.[1] ?? message;
}
