// A TLS context's SecureContext, assembled from the secrets it takes — its own files or inline data, static
// secrets, SDS — and rebuilt when one of them changes. A version that does not work keeps the current context.

import type { SecureContextOptions } from 'node:tls';
import type { CommonTlsContextConfig, SdsSecretRefConfig, SecretConfig } from '../../config/model.js';
import type { SecretUse } from '../../config/secrets.js';
import type { Logger } from '../observe/log.js';
import type { Counter } from '../observe/stats.js';
import { FileSecrets } from './file_secrets.js';
import {
  buildContext,
  type LoadedContext,
  secretKindProblem,
  TlsMaterialError,
  validationProblem,
} from './material.js';
import { mergeValidation, parseCertificates, type TlsSecret } from './secret.js';
import type { SecretManager } from './secret_manager.js';
import type { SecretProvider } from './secret_provider.js';

/** The counters of context updates, in the side's names. */
export interface ContextUpdateStats {
  /** ssl.context_update_by_file: a changed file is in use. */
  readonly byFile: Counter;
  /** ssl.context_update_by_file_error: changed files that could not be used. */
  readonly byFileError: Counter;
  /** *_ssl_socket_factory.ssl_context_update_by_sds: a secret from SDS (or a local provider) is in use. */
  readonly bySds: Counter;
}

export interface ReloadingContextOptions {
  /** Names the context in log lines: `listener "web" filter chain "tls"`. */
  readonly name: string;
  readonly logger: Logger;
  /** The stats to count updates in (a function: a listener's scope is known once it is bound). */
  readonly stats: () => ContextUpdateStats;
  /** Options of the side, kept across updates (cipher order ...). */
  readonly extra?: SecureContextOptions;
  /** Called after an update put a new context in place (the first one too, when it comes from a secret). */
  readonly onUpdate?: (loaded: LoadedContext) => void;
  /** The side's own needs of a version: why it cannot be used (a server requiring client certificates needs a CA). */
  readonly check?: (loaded: LoadedContext) => string | undefined;
  /** Where named secrets come from; required when the context names one. */
  readonly secrets?: SecretManager;
  readonly debounceMs?: number;
}

/** One part of the context that comes from a secret. */
interface Source {
  readonly provider: SecretProvider;
  readonly name: string;
  /** Secrets of a provider other than files count as SDS updates. */
  readonly byFile: boolean;
  readonly use: SecretUse;
  /** SDS: how long the context may wait for it (initial_fetch_timeout). */
  readonly initialFetchTimeoutMs: number;
  /** The name shown in /certs: undefined for the context's own data. */
  readonly secretName: string | undefined;
}

/** What /certs shows of a context: each part in force, with the secret it came from. */
export interface ContextCertificates {
  readonly name: string;
  readonly certificateChain: { pem: string; path: string; secretName: string | undefined } | undefined;
  readonly trustedCa: { pem: string; path: string; secretName: string | undefined } | undefined;
}

/** Names of the context's own data in its FileSecrets. */
const OWN_CERTIFICATE = 'tls_certificates[0]';
const OWN_VALIDATION = 'validation_context';

/**
 * A context's current SecureContext. Its certificate is its own (tls_certificates) or a secret's
 * (tls_certificate_sds_secret_configs); its validation context its own, a secret's, or a secret's merged over its
 * own (combined_validation_context). Until every secret it names has arrived it is not ready (`current` is
 * undefined); each new version of one rebuilds it, for new handshakes only: connections keep the context they
 * were made with.
 */
/** Whether a TLS context's secrets have arrived, what it waits for, and how long it may wait. */
export interface SecretReadiness {
  readonly ready: boolean;
  /** The longest initial fetch timeout of its SDS secrets (0 = wait for ever); 0 without any. */
  readonly initialFetchTimeoutMs: number;
  /** The secrets it waits for (none once ready). */
  missingSecrets(): string[];
  /** Resolves once ready (at once when it is), or when closed. */
  whenReady(): Promise<void>;
}

export class ReloadingContext implements SecretReadiness {
  private loaded: LoadedContext | undefined;
  private readonly own: FileSecrets;
  private readonly certificate: Source | undefined;
  private readonly validation: Source | undefined;
  private readonly cancels: (() => void)[] = [];
  private waiters: (() => void)[] = [];
  /** The earliest expiry (ms) of the certificates of a version, computed once per version. */
  private expiry: { of: LoadedContext; at: number | undefined } | undefined;
  private closed = false;

  /** Reads the context's own files now: throws TlsMaterialError when they cannot be used. */
  constructor(
    private readonly common: CommonTlsContextConfig,
    private readonly opts: ReloadingContextOptions,
  ) {
    const ownConfigs: SecretConfig[] = [];
    const cert = common.tlsCertificates[0];
    if (cert) ownConfigs.push({ name: OWN_CERTIFICATE, tlsCertificate: cert });
    if (common.validationContext)
      ownConfigs.push({ name: OWN_VALIDATION, validationContext: common.validationContext });
    this.own = new FileSecrets(ownConfigs, {
      logger: opts.logger,
      name: opts.name,
      debounceMs: opts.debounceMs,
      onReloadError: () => opts.stats().byFileError.inc(),
    });
    try {
      this.certificate = cert
        ? this.ownSource(OWN_CERTIFICATE, 'tls_certificate')
        : common.tlsCertificateSdsSecret &&
          this.secretSource(common.tlsCertificateSdsSecret, 'tls_certificate');
      this.validation =
        common.validationContextSdsSecret &&
        this.secretSource(common.validationContextSdsSecret, 'validation_context');
      for (const name of [OWN_CERTIFICATE, OWN_VALIDATION])
        this.cancels.push(this.own.subscribe(name, () => this.changed(true)));
      for (const s of [this.certificate, this.validation]) {
        if (s !== undefined && s.provider !== this.own)
          this.cancels.push(s.provider.subscribe(s.name, () => this.changed(s.byFile)));
      }
      try {
        this.loaded = this.build();
      } catch (err) {
        if (err instanceof TlsMaterialError) throw err;
        throw new TlsMaterialError(this.sourceField(), (err as Error).message);
      }
      if (opts.secrets !== undefined) this.cancels.push(opts.secrets.track(this));
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** The context in force; undefined until the secrets it names have arrived. */
  get current(): LoadedContext | undefined {
    return this.loaded;
  }

  get ready(): boolean {
    return this.loaded !== undefined;
  }

  get name(): string {
    return this.opts.name;
  }

  /** The secrets it waits for (none once ready). */
  missingSecrets(): string[] {
    if (this.loaded !== undefined) return [];
    return [this.certificate, this.validation].flatMap((s) =>
      s !== undefined && s.provider.get(s.name) === undefined ? [s.name] : [],
    );
  }

  /** The longest initial fetch timeout of its SDS secrets (0 = wait for ever); 0 without any. */
  get initialFetchTimeoutMs(): number {
    let ms = 0;
    for (const s of [this.certificate, this.validation]) {
      if (s === undefined || s.initialFetchTimeoutMs < 0) continue;
      if (s.initialFetchTimeoutMs === 0 && !s.byFile) return 0;
      ms = Math.max(ms, s.initialFetchTimeoutMs);
    }
    return ms;
  }

  /** Resolves once ready (at once when it is), or when closed. */
  whenReady(): Promise<void> {
    if (this.loaded !== undefined || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Re-reads the context's own files now (they are also watched). */
  reload(): void {
    this.own.reload();
  }

  /** The certificates in force, for /certs. */
  certificates(): ContextCertificates {
    const l = this.loaded;
    const cert = l?.certificate;
    const ca = l?.validation;
    const vcSecret = this.validation?.provider.get(this.validation.name);
    // A combined context's CA is the secret's when the secret has one, else the default's.
    const caSecret = vcSecret?.validation?.trustedCa !== undefined ? this.validation?.secretName : undefined;
    return {
      name: this.opts.name,
      certificateChain: cert && {
        pem: cert.chain,
        path: cert.chainPath,
        secretName: this.certificate?.secretName,
      },
      trustedCa:
        ca?.trustedCa === undefined
          ? undefined
          : { pem: ca.trustedCa, path: ca.caPath ?? '', secretName: caSecret },
    };
  }

  /** When the first of its certificates (chain and CAs) expires, in ms since the epoch; undefined without any. */
  earliestExpiry(): number | undefined {
    const l = this.loaded;
    if (l === undefined) return undefined;
    if (this.expiry?.of !== l) {
      let at: number | undefined;
      for (const pem of [l.material.cert, l.material.ca]) {
        for (const x of pem === undefined ? [] : parseCertificates(pem)) {
          const t = Date.parse(x.validTo);
          if (at === undefined || t < at) at = t;
        }
      }
      this.expiry = { of: l, at };
    }
    return this.expiry.at;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.cancels.splice(0)) c();
    this.own.close();
    for (const w of this.waiters.splice(0)) w();
  }

  private ownSource(name: string, use: SecretUse): Source {
    return { provider: this.own, name, byFile: true, use, initialFetchTimeoutMs: -1, secretName: undefined };
  }

  private secretSource(ref: SdsSecretRefConfig, use: SecretUse): Source {
    const secrets = this.opts.secrets;
    if (secrets === undefined) {
      throw new TlsMaterialError(
        `${ref.field}.name`,
        `secret ${JSON.stringify(ref.name)}: no secrets are available here`,
      );
    }
    const { provider, byFile } = secrets.providerFor(ref, use);
    return {
      provider,
      name: ref.name,
      byFile,
      use,
      initialFetchTimeoutMs: ref.source === 'ads' ? ref.initialFetchTimeoutMs : -1,
      secretName: ref.name,
    };
  }

  /** The config field of the secrets it names, for errors about them. */
  private sourceField(): string {
    const ref = this.common.tlsCertificateSdsSecret ?? this.common.validationContextSdsSecret;
    return ref === undefined ? '' : `${ref.field}.name`;
  }

  /**
   * The context of the current versions of its parts; undefined while a secret has not arrived. Throws when they
   * cannot make a context together (TlsMaterialError from OpenSSL, Error for the rest).
   */
  private build(): LoadedContext | undefined {
    const part = (s: Source | undefined): TlsSecret | undefined | null => {
      if (s === undefined) return undefined;
      const secret = s.provider.get(s.name);
      if (secret === undefined) return null;
      const problem = secretKindProblem(secret, s.use);
      if (problem !== undefined) throw new Error(problem);
      return secret;
    };
    const cert = part(this.certificate);
    const vc = part(this.validation);
    if (cert === null || vc === null) return undefined;
    const validation = mergeValidation(this.own.get(OWN_VALIDATION)?.validation, vc?.validation);
    const problem = validationProblem(validation);
    if (problem !== undefined) throw new Error(problem);
    const loaded = buildContext(this.common.tlsParams, cert?.certificate, validation, this.opts.extra);
    const need = this.opts.check?.(loaded);
    if (need !== undefined) throw new Error(need);
    return loaded;
  }

  /** A part changed (its provider already holds the new version): rebuild, or refuse by throwing. */
  private changed(byFile: boolean): void {
    if (this.closed) return;
    let next: LoadedContext | undefined;
    try {
      next = this.build();
    } catch (err) {
      const message = err instanceof TlsMaterialError ? err.detail : (err as Error).message;
      if (byFile) this.opts.stats().byFileError.inc();
      this.opts.logger.warn(
        `${this.opts.name}: new TLS material cannot be used; keeping the current context`,
        {
          error: message,
        },
      );
      throw new Error(`${this.opts.name}: ${message}`);
    }
    if (next === undefined) {
      // A first version was withdrawn (another context refused it): back to waiting.
      this.loaded = undefined;
      return;
    }
    if (this.loaded !== undefined && sameParts(this.loaded, next)) return;
    const first = this.loaded === undefined;
    this.loaded = next;
    this.opts.onUpdate?.(next);
    if (byFile) this.opts.stats().byFile.inc();
    else this.opts.stats().bySds.inc();
    // Every context of a sidecar gets its first certificate at start: one line each would bury the rest.
    if (first) this.opts.logger.debug(`${this.opts.name}: TLS context ready`);
    else this.opts.logger.info(`${this.opts.name}: TLS context updated; new connections use it`);
    for (const w of this.waiters.splice(0)) w();
  }
}

function sameParts(a: LoadedContext, b: LoadedContext): boolean {
  return (
    a.material.cert === b.material.cert &&
    a.material.key === b.material.key &&
    a.material.ca === b.material.ca &&
    JSON.stringify(a.validation?.matchTypedSubjectAltNames) ===
      JSON.stringify(b.validation?.matchTypedSubjectAltNames)
  );
}
