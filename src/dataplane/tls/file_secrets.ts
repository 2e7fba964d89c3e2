// Secrets whose data are DataSources (files or inline PEM): static_resources.secrets, and what a TLS context writes
// inline. Read when created; files re-read when they change on disk, a version that does not work left unused.

import type { SecretConfig } from '../../config/model.js';
import { type ConfigError, formatErrors } from '../../config/result.js';
import type { Logger } from '../observe/log.js';
import { FileWatcher } from './file_watcher.js';
import { TlsMaterialError } from './material.js';
import { readSecret, sameSecret, secretFiles, type TlsSecret } from './secret.js';
import { type SecretListener, type SecretProvider, SecretTable } from './secret_provider.js';

export interface FileSecretsOptions {
  readonly logger: Logger;
  /** Names the secrets in log lines: `static_resources.secrets`, `listener "web" filter chain "tls"`. */
  readonly name: string;
  /** Changed files that cannot be used: the previous version stays. */
  readonly onReloadError?: (errors: readonly ConfigError[]) => void;
  readonly debounceMs?: number;
}

/**
 * Envoy reloads certificate files only when SDS names them; Remora watches the files of static configs too, so a
 * rotated certificate (cert-manager, Kubernetes secrets) is served without a restart. Connections already open
 * keep the certificate they were made with.
 */
export class FileSecrets implements SecretProvider {
  private readonly table = new SecretTable();
  private readonly watcher: FileWatcher | undefined;

  /** Reads every secret now: throws TlsMaterialError (the first problem, with its field) when one cannot be used. */
  constructor(
    private readonly configs: readonly SecretConfig[],
    private readonly opts: FileSecretsOptions,
  ) {
    for (const c of configs) {
      const r = readSecret(c);
      if (!r.ok) throw new TlsMaterialError(r.errors[0]!.path, r.errors[0]!.message);
      this.table.set(c.name, r.value);
    }
    const files = [...new Set(configs.flatMap(secretFiles))];
    this.watcher =
      files.length > 0 ? new FileWatcher(files, () => this.reload(), opts.debounceMs) : undefined;
  }

  get(name: string): TlsSecret | undefined {
    return this.table.get(name);
  }

  subscribe(name: string, onChange: SecretListener): () => void {
    return this.table.subscribe(name, onChange);
  }

  /** Re-reads the files now; each secret whose data changed and work is put in place. */
  reload(): void {
    for (const c of this.configs) {
      if (secretFiles(c).length === 0) continue;
      const r = readSecret(c);
      if (!r.ok) {
        this.failed(c.name, r.errors);
        continue;
      }
      if (sameSecret(r.value, this.table.get(c.name))) continue;
      // A context that cannot use the new data says so itself (and counts it); the current version then stays.
      if (this.table.set(c.name, r.value).length === 0)
        this.opts.logger.info(`${this.opts.name}: TLS files changed; new connections use them`, {
          secret: c.name,
        });
    }
  }

  private failed(name: string, errors: readonly ConfigError[]): void {
    this.opts.onReloadError?.(errors);
    this.opts.logger.warn(
      `${this.opts.name}: TLS files changed but cannot be used; keeping the current ones`,
      {
        secret: name,
        error: formatErrors(errors),
      },
    );
  }

  close(): void {
    this.watcher?.close();
    this.table.clear();
  }
}
