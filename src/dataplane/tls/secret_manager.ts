// Where each TLS context gets the secrets it names — static_resources.secrets, SDS on the ADS stream, or a local
// provider — and the list of live contexts, for /certs (Envoy's SecretManager, and its ContextManager's list).

import type { SdsSecretRefConfig, SecretConfig } from '../../config/model.js';
import { type SecretUse, staticSecretProblem } from '../../config/secrets.js';
import type { Logger } from '../observe/log.js';
import { FileSecrets } from './file_secrets.js';
import { TlsMaterialError } from './material.js';
import type { ContextCertificates, ReloadingContext } from './reloading_context.js';
import { SdsSecrets } from './sds_secrets.js';
import type { SecretProvider } from './secret_provider.js';

/**
 * A provider that supplies some names locally, whatever config source a context names them with — as Istio's agent
 * serves `default` (the workload certificate) and `ROOTCA` (the trust bundle) to its Envoy. It is closed with the
 * proxy.
 */
export interface LocalSecrets {
  readonly names: readonly string[];
  readonly provider: SecretProvider;
}

export interface SecretManagerOptions {
  readonly logger: Logger;
  readonly local?: LocalSecrets;
}

export class SecretManager {
  /** static_resources.secrets, their files watched. */
  readonly statics: FileSecrets;
  /** Secrets from SDS on the ADS stream (fed by the ADS client). */
  readonly sds = new SdsSecrets();
  private readonly contexts = new Set<ReloadingContext>();
  private readonly localNames: ReadonlySet<string>;

  /** Reads the static secrets: throws TlsMaterialError when one cannot be used. */
  constructor(
    private readonly staticConfigs: readonly SecretConfig[],
    private readonly opts: SecretManagerOptions,
  ) {
    this.statics = new FileSecrets(staticConfigs, { logger: opts.logger, name: 'static_resources.secrets' });
    this.localNames = new Set(opts.local?.names ?? []);
  }

  /**
   * The provider of a secret a context names for `use`, and whether its updates count as file updates. Throws a
   * TlsMaterialError when it names a static secret there is none of (an LDS or CDS resource can).
   */
  providerFor(ref: SdsSecretRefConfig, use: SecretUse): { provider: SecretProvider; byFile: boolean } {
    const local = this.opts.local;
    if (local !== undefined && this.localNames.has(ref.name))
      return { provider: local.provider, byFile: false };
    if (ref.source === 'ads') return { provider: this.sds, byFile: false };
    const problem = staticSecretProblem(this.staticConfigs, ref.name, use);
    if (problem !== undefined) throw new TlsMaterialError(`${ref.field}.name`, problem);
    return { provider: this.statics, byFile: true };
  }

  /** Lists a live context (for /certs); returns its removal. */
  track(context: ReloadingContext): () => void {
    this.contexts.add(context);
    return () => this.contexts.delete(context);
  }

  /** The certificates of every live context, for /certs. */
  certificates(): ContextCertificates[] {
    return [...this.contexts].map((c) => c.certificates());
  }

  /** Days until the first certificate of a live context expires (0 once one has); undefined without any. */
  daysUntilFirstCertExpiring(now = Date.now()): number | undefined {
    let first: number | undefined;
    for (const c of this.contexts) {
      const t = c.earliestExpiry();
      if (t !== undefined && (first === undefined || t < first)) first = t;
    }
    return first === undefined ? undefined : Math.max(0, Math.floor((first - now) / 86_400_000));
  }

  close(): void {
    this.statics.close();
    this.sds.close();
    this.opts.local?.provider.close();
  }
}
