// The last good xDS config on disk, one file per type, each written atomically: a proxy that starts while its
// control plane is unreachable boots from it.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeOs } from '../../lazy_builtins.js';
import type { Any } from '../../xds/protos.js';
import type { Logger } from '../observe/log.js';
import type { XdsResourceType } from './resource_types.js';

/** Where caches go without --xds-cache-dir: one directory per node id below it. */
export function defaultCacheBase(): string {
  return join(nodeOs().tmpdir(), 'remora-xds-cache');
}

/** The directory of one node's cache: a node id may hold any character, so it is made file-name safe. */
export function cacheDirFor(base: string, nodeId: string): string {
  const safe = nodeId.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return join(base, safe === '' || safe === '.' || safe === '..' ? `node-${safe}` : safe);
}

export interface CachedType {
  readonly version: string;
  readonly resources: readonly Any[];
  readonly savedAt: string;
}

interface CacheFile {
  readonly node_id: string;
  readonly type_url: string;
  readonly version_info: string;
  readonly saved_at: string;
  /** Each resource as its type URL and base64 protobuf bytes, decoded and validated again when loaded. */
  readonly resources: readonly { type_url: string; value: string }[];
}

export class XdsDiskCache {
  /** Per type: the write in progress and the newest state waiting for it. */
  private readonly writes = new Map<string, { running: Promise<void>; next: CacheFile | undefined }>();

  constructor(
    readonly dir: string,
    private readonly nodeId: string,
    private readonly logger: Logger,
  ) {}

  /** What the cache holds of `type` for this node; undefined when nothing usable is there. */
  async load(type: XdsResourceType): Promise<CachedType | undefined> {
    let text: string;
    try {
      text = await readFile(this.file(type), 'utf8');
    } catch {
      return undefined;
    }
    try {
      const f = JSON.parse(text) as CacheFile;
      if (f.node_id !== this.nodeId || f.type_url !== type.typeUrl || !Array.isArray(f.resources))
        return undefined;
      return {
        version: String(f.version_info ?? ''),
        savedAt: String(f.saved_at ?? ''),
        resources: f.resources.map((r) => ({ type_url: r.type_url, value: Buffer.from(r.value, 'base64') })),
      };
    } catch (err) {
      this.logger.warn('ignoring an unreadable xDS cache file', {
        file: this.file(type),
        error: (err as Error).message,
      });
      return undefined;
    }
  }

  /** Records the state of a type; writes are serialized per type and only the newest waiting one is written. */
  save(type: XdsResourceType, version: string, resources: readonly Any[]): void {
    const content: CacheFile = {
      node_id: this.nodeId,
      type_url: type.typeUrl,
      version_info: version,
      saved_at: new Date().toISOString(),
      resources: resources.map((r) => ({
        type_url: r.type_url,
        value: Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength).toString('base64'),
      })),
    };
    const w = this.writes.get(type.typeUrl);
    if (w !== undefined) {
      w.next = content;
      return;
    }
    const entry = { running: Promise.resolve(), next: undefined as CacheFile | undefined };
    this.writes.set(type.typeUrl, entry);
    entry.running = (async () => {
      let current: CacheFile | undefined = content;
      while (current !== undefined) {
        await this.write(type, current);
        current = entry.next;
        entry.next = undefined;
      }
      this.writes.delete(type.typeUrl);
    })();
  }

  /** Resolves once every write asked for so far is on disk. */
  async flush(): Promise<void> {
    while (this.writes.size > 0) await Promise.all([...this.writes.values()].map((w) => w.running));
  }

  private async write(type: XdsResourceType, content: CacheFile): Promise<void> {
    const file = this.file(type);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await writeFile(tmp, JSON.stringify(content), { mode: 0o600 });
      // rename() replaces the file in one step: a reader sees the old version or the new one, never half.
      await rename(tmp, file);
    } catch (err) {
      this.logger.warn('cannot write the xDS cache', { file, error: (err as Error).message });
    }
  }

  private file(type: XdsResourceType): string {
    return join(this.dir, `${type.short.toLowerCase()}.json`);
  }
}
