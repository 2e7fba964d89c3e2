// Secrets from SDS on the ADS stream: the names TLS contexts subscribe to (what the ADS client asks for) and the
// versions the control plane sends, each put in place only when every context using it can take it.

import type { TlsSecret } from './secret.js';
import { type SecretListener, type SecretProvider, SecretTable } from './secret_provider.js';

export class SdsSecrets implements SecretProvider {
  private readonly table = new SecretTable(() => this.namesChanged());
  private readonly nameWatchers = new Set<() => void>();

  get(name: string): TlsSecret | undefined {
    return this.table.get(name);
  }

  subscribe(name: string, onChange: SecretListener): () => void {
    return this.table.subscribe(name, onChange);
  }

  /** The names TLS contexts want: the SDS subscription. */
  names(): Set<string> {
    return this.table.subscribed();
  }

  /** Calls `listener` when the set of names changes; returns its cancel. */
  onNamesChanged(listener: () => void): () => void {
    this.nameWatchers.add(listener);
    return () => this.nameWatchers.delete(listener);
  }

  /**
   * A version from the control plane (already validated on its own). Returns why a context cannot use it — the
   * update is then NACKed and the previous version keeps serving — or undefined.
   */
  update(secret: TlsSecret): string | undefined {
    const refusals = this.table.set(secret.name, secret);
    return refusals.length === 0 ? undefined : refusals.join('; ');
  }

  /**
   * The control plane removed the secret (or nothing names it any more). Contexts keep the version they have, as
   * Envoy does; a context created later waits for a new one.
   */
  remove(name: string): void {
    this.table.delete(name);
  }

  close(): void {
    this.table.clear();
    this.nameWatchers.clear();
  }

  private namesChanged(): void {
    for (const w of [...this.nameWatchers]) w();
  }
}
