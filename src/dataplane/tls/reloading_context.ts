// A TLS context's SecureContext, rebuilt when its files change on disk; new files that do not work keep the old one.

import type { SecureContextOptions } from 'node:tls';
import type { CommonTlsContextConfig } from '../../config/model.js';
import type { Logger } from '../observe/log.js';
import { FileWatcher } from './file_watcher.js';
import { type LoadedContext, loadTlsContext, materialFiles, sameMaterial } from './material.js';
import type { SslStats } from './stats.js';

export interface ReloadingContextOptions {
  /** Names the context in log lines: `listener "web" filter chain "tls"`. */
  readonly name: string;
  readonly logger: Logger;
  /** The stats to count reloads in (a function: a listener's scope is known once it is bound). */
  readonly stats: () => SslStats;
  /** Options of the side, kept across reloads (cipher order ...). */
  readonly extra?: SecureContextOptions;
  /** Called after a reload put a new context in place. */
  readonly onUpdate?: (loaded: LoadedContext) => void;
  readonly debounceMs?: number;
}

/**
 * Envoy reloads certificate files only when SDS names them; Remora watches the files of static configs too, so a
 * rotated certificate (cert-manager, Kubernetes secrets) is served without a restart. Connections already open
 * keep the certificate they were made with.
 */
export class ReloadingContext {
  private loaded: LoadedContext;
  private readonly watcher: FileWatcher | undefined;

  /** Throws TlsMaterialError when the files cannot be used. */
  constructor(
    private readonly common: CommonTlsContextConfig,
    private readonly opts: ReloadingContextOptions,
  ) {
    this.loaded = loadTlsContext(common, opts.extra);
    const files = materialFiles(common);
    this.watcher =
      files.length > 0 ? new FileWatcher(files, () => this.reload(), opts.debounceMs) : undefined;
  }

  get current(): LoadedContext {
    return this.loaded;
  }

  /** Re-reads the files; uses them when they changed and work. */
  reload(): void {
    let next: LoadedContext;
    try {
      next = loadTlsContext(this.common, this.opts.extra);
    } catch (err) {
      this.opts.stats()['ssl.context_update_by_file_error'].inc();
      this.opts.logger.warn(
        `${this.opts.name}: TLS files changed but cannot be used; keeping the current ones`,
        {
          error: (err as Error).message,
        },
      );
      return;
    }
    if (sameMaterial(next.material, this.loaded.material)) return;
    this.loaded = next;
    this.opts.onUpdate?.(next);
    this.opts.stats()['ssl.context_update_by_file'].inc();
    this.opts.logger.info(`${this.opts.name}: TLS files changed; new connections use them`);
  }

  close(): void {
    this.watcher?.close();
  }
}
