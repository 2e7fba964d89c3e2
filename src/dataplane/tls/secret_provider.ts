// Where TLS contexts get the secrets they name: the provider contract (files, SDS, a local workload identity all
// implement it) and the bookkeeping they share.

import type { TlsSecret } from './secret.js';

/**
 * Told of each new version of a secret. It may throw to say it cannot use that version (a validation context
 * without the CA it needs ...): the subscriber then keeps what it had, and the provider keeps the previous version
 * for everyone (SDS NACKs the update). `undefined` withdraws a first version that another subscriber refused.
 */
export type SecretListener = (secret: TlsSecret | undefined) => void;

/**
 * A source of named secrets for TLS contexts. The same names mean the same thing whatever feeds them, so a local
 * provider (the workload certificate the sidecar obtains itself) can supply `default` and `ROOTCA` in place of
 * SDS.
 *
 * Contract:
 * - `get(name)` is the current version, or undefined while none has arrived (a context naming it warms).
 * - `subscribe(name, onChange)` asks for `name` (SDS subscribes to it) and calls `onChange` with each later version,
 *   never with the current one; the returned function cancels. A removed secret is not announced: contexts keep
 *   what they have.
 * - `close()` stops watching and calling; `get` keeps answering with what was there.
 */
export interface SecretProvider {
  get(name: string): TlsSecret | undefined;
  subscribe(name: string, onChange: SecretListener): () => void;
  close(): void;
}

/**
 * The current secrets of a provider and who watches each. `set` announces a version to its subscribers; if any of
 * them refuses it, the previous version is put back (and those that took the new one are told the previous one
 * again, so every context agrees with the provider) and the refusals are returned.
 */
export class SecretTable {
  private readonly secrets = new Map<string, TlsSecret>();
  private readonly watchers = new Map<string, Set<SecretListener>>();

  /** `namesChanged` runs when a name gets its first subscriber or loses its last. */
  constructor(private readonly namesChanged: () => void = () => undefined) {}

  get(name: string): TlsSecret | undefined {
    return this.secrets.get(name);
  }

  /** Names someone subscribes to. */
  subscribed(): Set<string> {
    return new Set(this.watchers.keys());
  }

  subscribe(name: string, onChange: SecretListener): () => void {
    let set = this.watchers.get(name);
    const added = set === undefined;
    if (set === undefined) {
      set = new Set();
      this.watchers.set(name, set);
    }
    // The same function may subscribe twice: each subscription is its own entry.
    const entry: SecretListener = (s) => onChange(s);
    set.add(entry);
    if (added) this.namesChanged();
    return () => {
      const s = this.watchers.get(name);
      if (s === undefined || !s.delete(entry)) return;
      if (s.size === 0) {
        this.watchers.delete(name);
        this.namesChanged();
      }
    };
  }

  /** Puts a version in place; returns why subscribers refused it (the previous version then stays). */
  set(name: string, secret: TlsSecret): string[] {
    const previous = this.secrets.get(name);
    this.secrets.set(name, secret);
    const took: SecretListener[] = [];
    const refusals: string[] = [];
    for (const w of [...(this.watchers.get(name) ?? [])]) {
      try {
        w(secret);
        took.push(w);
      } catch (err) {
        refusals.push(err instanceof Error ? err.message : String(err));
      }
    }
    if (refusals.length === 0) return refusals;
    if (previous === undefined) this.secrets.delete(name);
    else this.secrets.set(name, previous);
    for (const w of took) {
      try {
        w(previous);
      } catch {
        // It took this version before: nothing better can be done than to keep what it has.
      }
    }
    return refusals;
  }

  delete(name: string): void {
    this.secrets.delete(name);
  }

  clear(): void {
    this.watchers.clear();
  }
}
