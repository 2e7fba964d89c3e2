// Writes manifests into etcd where the etcd source reads them: `<prefix><kind>/<namespace>/<name>`.

import { Etcd3 } from 'etcd3';
import { DEFAULT_ETCD_PREFIX } from './etcd.js';

/** The parts of a manifest that name it. */
export interface ManifestName {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
}

/** `/remora/Service/shop/reviews`; a missing namespace is `default`, as the manifests reader takes it. */
export function manifestKey(prefix: string, m: ManifestName): string {
  return `${prefix}${m.kind}/${m.metadata.namespace ?? 'default'}/${m.metadata.name}`;
}

export interface EtcdManifestWriterOptions {
  readonly endpoints: readonly string[];
  readonly prefix?: string;
}

/**
 * Puts and deletes manifests under the etcd source's prefix, one object per key, stored as JSON (which is YAML).
 * `etcdctl put /remora/Service/shop/reviews "$(cat reviews.yaml)"` does the same from a shell.
 */
export class EtcdManifestWriter {
  readonly prefix: string;
  private readonly client: Etcd3;

  constructor(options: EtcdManifestWriterOptions) {
    this.prefix = options.prefix ?? DEFAULT_ETCD_PREFIX;
    this.client = new Etcd3({ hosts: [...options.endpoints] });
  }

  /** Stores one manifest under its conventional key; returns the key. */
  async put(manifest: ManifestName): Promise<string> {
    const key = manifestKey(this.prefix, manifest);
    await this.client.put(key).value(JSON.stringify(manifest));
    return key;
  }

  /** Stores a value as given (YAML, JSON, several documents, or something invalid) under `prefix + relativeKey`. */
  async putText(relativeKey: string, text: string): Promise<string> {
    const key = this.prefix + relativeKey;
    await this.client.put(key).value(text);
    return key;
  }

  /** Deletes a manifest's conventional key. */
  async delete(manifest: ManifestName): Promise<void> {
    await this.client.delete().key(manifestKey(this.prefix, manifest));
  }

  async deleteKey(relativeKey: string): Promise<void> {
    await this.client.delete().key(this.prefix + relativeKey);
  }

  close(): void {
    this.client.close();
  }
}
