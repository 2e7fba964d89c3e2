// TLS origination for a cluster (UpstreamTlsContext): connects to hosts with SNI, verifies them, presents a cert.

import { type OnReadOpts, Socket } from 'node:net';
import type { ConnectionOptions, PeerCertificate, TLSSocket } from 'node:tls';
import type { SanMatcherConfig, UpstreamTlsConfig } from '../../config/model.js';
import { nodeTls } from '../../lazy_builtins.js';
import type { Logger } from '../observe/log.js';
import type { ScopeTag, StatsStore } from '../observe/stats.js';
import type { LoadedContext } from './material.js';
import { type ContextCertificates, ReloadingContext, type SecretReadiness } from './reloading_context.js';
import { compileSanMatchers, type SanPredicate, sanMismatch } from './san_match.js';
import type { SecretManager } from './secret_manager.js';
import { UPSTREAM_TLS_STATS, type UpstreamTlsStats } from './stats.js';

export interface UpstreamTlsOptions {
  readonly store: StatsStore;
  /** The cluster's stats scope. */
  readonly scope: ScopeTag;
  readonly logger: Logger;
  /** Names the cluster in log lines: `cluster "web"`. */
  readonly name: string;
  /** Where the secrets the context names come from (static, SDS); required when it names one. */
  readonly secrets?: SecretManager;
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

/** A connection the cluster cannot make: the secrets its TLS context names have not arrived. */
export class SecretsNotReadyError extends Error {
  readonly code = 'REMORA_TLS_SECRETS_NOT_READY';
}

/** How the server is verified under one version of the context (its validation context may come by SDS). */
interface Verification {
  /** Without a trusted CA the server's certificate is not verified at all (Envoy's rule). */
  readonly verify: boolean;
  readonly matchers: readonly SanMatcherConfig[];
  readonly sanMatch: SanPredicate | undefined;
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
  private verification: Verification;

  /**
   * Reads the certificate files now: throws TlsMaterialError when they cannot be used, or when it names a static
   * secret there is none of. A context whose secrets come by SDS is not `ready` until they have arrived.
   */
  constructor(
    readonly config: UpstreamTlsConfig,
    private readonly opts: UpstreamTlsOptions,
  ) {
    this.stats = opts.store.scope(opts.scope, UPSTREAM_TLS_STATS);
    this.context = new ReloadingContext(config.commonTlsContext, {
      name: opts.name,
      logger: opts.logger,
      stats: () => ({
        byFile: this.stats['ssl.context_update_by_file'],
        byFileError: this.stats['ssl.context_update_by_file_error'],
        bySds: this.stats['client_ssl_socket_factory.ssl_context_update_by_sds'],
      }),
      secrets: opts.secrets,
      // A new trust bundle (ROOTCA rotated) applies to new connections; pooled ones keep going.
      onUpdate: (loaded) => {
        this.verification = verificationOf(loaded);
      },
    });
    this.verification = verificationOf(this.context.current);
  }

  /** Whether the secrets the context names have arrived (it can connect), and what it waits for. */
  get readiness(): SecretReadiness {
    return this.context;
  }

  /** What /certs shows of it. */
  certificates(): ContextCertificates {
    return this.context.certificates();
  }

  /**
   * The options of `tls.connect` for a connection to a host (without host and port): the current context, SNI,
   * ALPN and verification. For callers that open the connection themselves (`http2.connect`); `connect()` also
   * counts the handshake and words failures. Throws SecretsNotReadyError while the secrets have not arrived.
   */
  connectionOptions(alpn?: readonly string[]): ConnectionOptions {
    const loaded = this.context.current;
    if (loaded === undefined) throw this.notReady();
    const protocols = alpn ?? this.config.commonTlsContext.alpnProtocols;
    const v = this.verification;
    return {
      secureContext: loaded.context,
      servername: this.config.sni === '' ? undefined : this.config.sni,
      ALPNProtocols: protocols.length > 0 ? [...protocols] : undefined,
      rejectUnauthorized: v.verify,
      checkServerIdentity: (_host, cert) => checkIdentity(v, cert),
    };
  }

  private notReady(): SecretsNotReadyError {
    this.stats['client_ssl_socket_factory.upstream_context_secrets_not_ready'].inc();
    return new SecretsNotReadyError(
      `TLS secrets not ready: waiting for ${this.context
        .missingSecrets()
        .map((n) => JSON.stringify(n))
        .join(', ')} (${this.opts.name})`,
    );
  }

  /**
   * Opens a TLS connection. 'secureConnect' means the handshake and the verification passed; an 'error' before it
   * is a connect failure whose message says why ("certificate verify failed: SAN mismatch: ...").
   */
  connect(host: string, port: number, opts: UpstreamConnectOptions = {}): TLSSocket {
    if (!this.context.ready) {
      // Envoy resets such connections: a connect failure (UF) that says why, reported as the others are.
      const socket = new (nodeTls().TLSSocket)(new Socket());
      const err = this.notReady();
      process.nextTick(() => socket.destroy(err));
      return socket;
    }
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
    const socket = nodeTls().connect(options);
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

  close(): void {
    this.context.close();
  }
}

function verificationOf(loaded: LoadedContext | undefined): Verification {
  const v = loaded?.validation;
  const matchers = v?.matchTypedSubjectAltNames ?? [];
  return {
    verify: v?.trustedCa !== undefined,
    matchers,
    sanMatch: matchers.length > 0 ? compileSanMatchers(matchers) : undefined,
  };
}

function checkIdentity(v: Verification, cert: PeerCertificate): Error | undefined {
  if (v.sanMatch === undefined) return undefined;
  const why = sanMismatch(v.matchers, v.sanMatch, cert.subjectaltname);
  return why === undefined ? undefined : new SanMismatchError(`certificate verify failed: ${why}`);
}

/** "...:SSL routines:ssl3_read_bytes:sslv3 alert handshake failure:../deps/...": the reason in the middle. */
function opensslReason(message: string): string {
  const m = /SSL routines:[^:]*:([^:]+)/.exec(message);
  return m?.[1] ?? message;
}
