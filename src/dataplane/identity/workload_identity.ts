// The sidecar's own workload identity: a certificate obtained from the control plane's CA, served to TLS contexts
// as the secrets `default` (chain + key) and `ROOTCA` (trust bundle), and renewed at about half its life.

import { IdentityError, requestCertificate, type WorkloadCertificate } from '../../identity/client.js';
import type { WorkloadIdentity as Who } from '../../identity/spiffe.js';
import type { Logger } from '../observe/log.js';
import { declareStats, type StatsOf, type StatsStore } from '../observe/stats.js';
import { INLINE, type TlsSecret } from '../tls/secret.js';
import { type SecretListener, type SecretProvider, SecretTable } from '../tls/secret_provider.js';
import { type Backoff, backoffMs, DEFAULT_BACKOFF, renewalDelayMs } from './schedule.js';
import { ROOT_CA_SECRET, WORKLOAD_CERT_SECRET } from './secret_names.js';

export { ROOT_CA_SECRET, WORKLOAD_CERT_SECRET, WORKLOAD_SECRET_NAMES } from './secret_names.js';

/**
 * `issue_*` count attempts at the first certificate, `renewal_*` every later attempt (by the current certificate,
 * or by the credential when that is refused); `seconds_until_cert_expiring` is the current
 * certificate's remaining life (0 once expired).
 */
export const WORKLOAD_IDENTITY_STATS = declareStats({
  counters: [
    'workload_identity.issue_success',
    'workload_identity.issue_failure',
    'workload_identity.renewal_success',
    'workload_identity.renewal_failure',
  ] as const,
  gauges: ['workload_identity.seconds_until_cert_expiring'] as const,
  histograms: [] as const,
});

export interface WorkloadIdentityConfig {
  /** The CA: `host:port`. */
  readonly caAddress: string;
  /**
   * The credential for a first certificate, and again when renewal is refused: a join token, or a Kubernetes
   * service-account token. A function, read at each use, because kubelet rewrites a projected token file. It may
   * throw (a file that cannot be read): the attempt fails with that reason.
   */
  readonly credential: () => string;
  /** PEM roots to trust the CA by; without them, the join token's pin. */
  readonly caRootsPem?: string;
  /** The name to verify in the CA's certificate when the address is not one it carries. */
  readonly caServerName?: string;
  /** The identity to ask for; default: the one the credential names. */
  readonly identity?: Who;
  readonly trustDomain?: string;
  /** Retries after a failed attempt; default 1 s doubling to 30 s. */
  readonly backoff?: Backoff;
  /** In [0, 1): the jitter of renewals and retries. */
  readonly random?: () => number;
}

export interface WorkloadIdentityDeps {
  readonly logger: Logger;
  readonly store: StatsStore;
}

/**
 * A SecretProvider for `default` and `ROOTCA`. `start()` asks the CA; `ready` resolves once a first certificate
 * is in place (failures are logged with their reason and retried with back-off meanwhile). Renewal presents the
 * current certificate, since a join token may be single-use, and falls back to the credential only when the CA
 * refuses it; while renewal fails, the current certificate keeps serving. The private key is kept in memory only.
 */
export class WorkloadIdentitySource implements SecretProvider {
  /** Resolves once the first certificate is served. */
  readonly ready: Promise<void>;
  private readyResolve!: () => void;
  private readonly table = new SecretTable();
  private readonly stats: StatsOf<typeof WORKLOAD_IDENTITY_STATS>;
  private readonly random: () => number;
  private cert: WorkloadCertificate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private gaugeTimer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly config: WorkloadIdentityConfig,
    private readonly deps: WorkloadIdentityDeps,
  ) {
    this.ready = new Promise<void>((r) => {
      this.readyResolve = r;
    });
    this.stats = deps.store.scope(undefined, WORKLOAD_IDENTITY_STATS);
    this.random = config.random ?? Math.random;
  }

  /** Starts asking the CA (once). */
  start(): void {
    if (this.closed || this.gaugeTimer !== undefined) return;
    this.gaugeTimer = setInterval(() => this.updateGauge(), 1000);
    this.gaugeTimer.unref();
    void this.renewNow();
  }

  /** The certificate in use, if any. */
  current(): WorkloadCertificate | undefined {
    return this.cert;
  }

  /**
   * Runs the next attempt now instead of when it is due (the renewal timer calls it): resolves when it is over,
   * whether it succeeded or not. An attempt already running is not doubled.
   */
  renewNow(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.inFlight ??= this.attempt().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  get(name: string): TlsSecret | undefined {
    return this.table.get(name);
  }

  subscribe(name: string, onChange: SecretListener): () => void {
    return this.table.subscribe(name, onChange);
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.gaugeTimer !== undefined) clearInterval(this.gaugeTimer);
    this.timer = undefined;
    this.gaugeTimer = undefined;
    this.table.clear();
  }

  private async attempt(): Promise<void> {
    const renewing = this.cert !== undefined;
    let cert: WorkloadCertificate;
    let byCredential = !renewing;
    try {
      const r = await this.obtain();
      cert = r.cert;
      byCredential = r.byCredential;
    } catch (err) {
      if (this.closed) return;
      this.failures++;
      const wait = backoffMs(this.failures, this.config.backoff ?? DEFAULT_BACKOFF, this.random());
      const reason = err instanceof Error ? err.message : String(err);
      if (renewing) {
        this.stats['workload_identity.renewal_failure'].inc();
        this.deps.logger.warn('workload identity: renewal failed; the current certificate keeps serving', {
          ca: this.config.caAddress,
          reason,
          retry_in_ms: wait,
          expires_in_s: this.secondsLeft(),
        });
      } else {
        this.stats['workload_identity.issue_failure'].inc();
        this.deps.logger.error(
          'workload identity: cannot get a certificate from the CA; not ready until it can',
          {
            ca: this.config.caAddress,
            reason,
            retry_in_ms: wait,
          },
        );
      }
      this.schedule(wait);
      return;
    }
    if (this.closed) return;
    this.failures = 0;
    this.stats[renewing ? 'workload_identity.renewal_success' : 'workload_identity.issue_success'].inc();
    this.install(cert);
    const delay = renewalDelayMs(cert.notBefore, cert.notAfter, Date.now(), this.random());
    this.deps.logger.info(
      renewing ? 'workload identity: certificate renewed' : 'workload identity: certificate obtained',
      {
        spiffe_id: cert.spiffeId,
        by: byCredential ? 'credential' : 'current certificate',
        serial: cert.serialNumber,
        not_after: cert.notAfter.toISOString(),
        renew_in_ms: delay,
      },
    );
    this.schedule(delay);
    this.readyResolve();
  }

  /** Renewal with the current certificate while it is valid; the credential first, or when renewal is refused. */
  private async obtain(): Promise<{ cert: WorkloadCertificate; byCredential: boolean }> {
    const current = this.cert;
    if (current !== undefined && current.notAfter.getTime() > Date.now()) {
      try {
        const cert = await requestCertificate({
          address: this.config.caAddress,
          currentCertificate: { certChainPem: current.certChainPem, keyPem: current.keyPem },
          rootsPem: current.rootsPem,
          ...(this.config.caServerName !== undefined && { serverName: this.config.caServerName }),
        });
        return { cert, byCredential: false };
      } catch (err) {
        if (!(err instanceof IdentityError && err.code === 'REMORA_ERR_IDENTITY_REFUSED')) throw err;
        this.deps.logger.warn(
          'workload identity: the CA refused renewal by certificate; asking with the credential',
          {
            reason: err.message,
          },
        );
      }
    }
    const cert = await requestCertificate({
      address: this.config.caAddress,
      token: this.config.credential(),
      ...(this.config.caRootsPem !== undefined && { rootsPem: this.config.caRootsPem }),
      ...(this.config.caServerName !== undefined && { serverName: this.config.caServerName }),
      ...(this.config.identity !== undefined && { identity: this.config.identity }),
      ...(this.config.trustDomain !== undefined && { trustDomain: this.config.trustDomain }),
    });
    return { cert, byCredential: true };
  }

  /** Puts the certificate in place: the roots first (during a root rotation the new bundle trusts both). */
  private install(cert: WorkloadCertificate): void {
    const previous = this.cert;
    this.cert = cert;
    const refusals: string[] = [];
    if (previous?.rootsPem !== cert.rootsPem)
      refusals.push(...this.table.set(ROOT_CA_SECRET, rootsSecret(cert)));
    refusals.push(...this.table.set(WORKLOAD_CERT_SECRET, certificateSecret(cert)));
    if (refusals.length > 0)
      this.deps.logger.error('workload identity: a TLS context refused the new certificate', {
        serial: cert.serialNumber,
        reasons: refusals,
      });
    this.updateGauge();
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    // Node's timers overflow past 2^31-1 ms (~24.8 days): a longer wait is taken in steps.
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        void this.renewNow();
      },
      Math.min(ms, 2 ** 31 - 1),
    );
    this.timer.unref();
  }

  private secondsLeft(): number {
    return this.cert === undefined
      ? 0
      : Math.max(0, Math.floor((this.cert.notAfter.getTime() - Date.now()) / 1000));
  }

  private updateGauge(): void {
    this.stats['workload_identity.seconds_until_cert_expiring'].set(this.secondsLeft());
  }
}

function certificateSecret(cert: WorkloadCertificate): TlsSecret {
  return {
    name: WORKLOAD_CERT_SECRET,
    certificate: {
      chain: cert.certChainPem,
      key: cert.keyPem,
      chainPath: INLINE,
      chainField: 'workload_identity.certificate_chain',
      keyField: 'workload_identity.private_key',
    },
  };
}

function rootsSecret(cert: WorkloadCertificate): TlsSecret {
  return {
    name: ROOT_CA_SECRET,
    validation: {
      trustedCa: cert.rootsPem,
      caPath: INLINE,
      caField: 'workload_identity.trusted_ca',
      matchTypedSubjectAltNames: [],
    },
  };
}
