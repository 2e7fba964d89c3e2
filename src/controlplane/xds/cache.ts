// The snapshot cache: per node key, the versioned set of resources the ADS server serves, replaced whole.

import { createHash } from 'node:crypto';
import type { ConfigError, ValidationResult } from '../../config/result.js';
import type { NodeJson } from '../../xds/protos.js';
import { missingReferences } from './consistency.js';
import { shortTypeName, type XdsResource } from './resource.js';

const EMPTY: ReadonlyMap<string, XdsResource> = new Map();

interface TypeSet {
  readonly version: string;
  readonly byName: ReadonlyMap<string, XdsResource>;
}

/**
 * An immutable set of resources for one proxy (or group of proxies), by type URL then name. Each type has a
 * version that is a hash of its content: equal content gives equal versions, in any replica.
 */
export class Snapshot {
  private constructor(private readonly types: ReadonlyMap<string, TypeSet>) {}

  /** Groups resources by type; two resources of one type with one name are an error. */
  static of(resources: Iterable<XdsResource>): ValidationResult<Snapshot> {
    const byType = new Map<string, Map<string, XdsResource>>();
    const errors: ConfigError[] = [];
    for (const r of resources) {
      let names = byType.get(r.typeUrl);
      if (names === undefined) {
        names = new Map();
        byType.set(r.typeUrl, names);
      }
      if (names.has(r.name)) {
        errors.push({
          path: `${shortTypeName(r.typeUrl)}[${JSON.stringify(r.name)}]`,
          message: 'duplicate name',
        });
      }
      names.set(r.name, r);
    }
    if (errors.length > 0) return { ok: false, errors };
    const types = new Map<string, TypeSet>();
    for (const [typeUrl, byName] of byType) types.set(typeUrl, { version: typeVersion(byName), byName });
    return { ok: true, value: new Snapshot(types) };
  }

  /** `Snapshot.of` for resources known to be unique; throws otherwise. */
  static from(resources: Iterable<XdsResource>): Snapshot {
    const s = Snapshot.of(resources);
    if (!s.ok)
      throw new Error(`invalid snapshot: ${s.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
    return s.value;
  }

  /** The type's version; a type the snapshot does not hold has the version of the empty set. */
  version(typeUrl: string): string {
    return this.types.get(typeUrl)?.version ?? EMPTY_VERSION;
  }

  resources(typeUrl: string): ReadonlyMap<string, XdsResource> {
    return this.types.get(typeUrl)?.byName ?? EMPTY;
  }

  typeUrls(): string[] {
    return [...this.types.keys()];
  }
}

function typeVersion(byName: ReadonlyMap<string, XdsResource>): string {
  const h = createHash('sha256');
  for (const name of [...byName.keys()].sort())
    h.update(name).update('\0').update(byName.get(name)!.version).update('\0');
  return h.digest('base64url').slice(0, 16);
}

const EMPTY_VERSION = typeVersion(EMPTY);

/** What changed in one type between two snapshots (names sorted). */
export interface TypeChange {
  /** Added, or with new content. */
  readonly changed: readonly string[];
  readonly removed: readonly string[];
}

/** Only the types whose version differs. */
export type SnapshotChanges = ReadonlyMap<string, TypeChange>;

export function diffSnapshots(prev: Snapshot | undefined, next: Snapshot): SnapshotChanges {
  const out = new Map<string, TypeChange>();
  const types = new Set([...(prev?.typeUrls() ?? []), ...next.typeUrls()]);
  for (const typeUrl of types) {
    if (prev !== undefined && prev.version(typeUrl) === next.version(typeUrl)) continue;
    const before = prev?.resources(typeUrl) ?? EMPTY;
    const after = next.resources(typeUrl);
    const changed = [...after.values()]
      .filter((r) => before.get(r.name)?.version !== r.version)
      .map((r) => r.name);
    const removed = [...before.keys()].filter((name) => !after.has(name));
    if (changed.length + removed.length > 0)
      out.set(typeUrl, { changed: changed.sort(), removed: removed.sort() });
  }
  return out;
}

export type SetSnapshotResult =
  | { readonly ok: true; readonly changes: SnapshotChanges }
  | { readonly ok: false; readonly errors: readonly ConfigError[] };

export interface Rejection {
  readonly errors: readonly ConfigError[];
  readonly at: number;
}

export type ChangeListener = (key: string, snapshot: Snapshot, changes: SnapshotChanges) => void;

export interface SnapshotCacheOptions {
  /**
   * Which snapshot a proxy gets: default its node id. Proxies that share a key share a snapshot. Throwing refuses
   * the node: its stream ends with INVALID_ARGUMENT and the error's message.
   */
  readonly nodeKey?: (node: NodeJson) => string;
  readonly now?: () => number;
}

/** Snapshots by node key. Listeners hear of every accepted snapshot that changes something. */
export class SnapshotCache {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly rejections = new Map<string, Rejection>();
  private readonly listeners = new Set<ChangeListener>();
  private readonly keyOf: (node: NodeJson) => string;
  private readonly now: () => number;
  /** Snapshots refused by the consistency check, since start. */
  rejectedTotal = 0;

  constructor(opts: SnapshotCacheOptions = {}) {
    this.keyOf = opts.nodeKey ?? ((node) => node.id ?? '');
    this.now = opts.now ?? Date.now;
  }

  nodeKey(node: NodeJson): string {
    return this.keyOf(node);
  }

  /**
   * Replaces the snapshot of `key` when it is consistent (every EDS name a cluster uses and every RDS name a
   * listener uses is in it). An inconsistent one is refused with every missing name, and the last consistent
   * snapshot stays in place.
   */
  set(key: string, snapshot: Snapshot): SetSnapshotResult {
    const errors = missingReferences((typeUrl) => snapshot.resources(typeUrl));
    if (errors.length > 0) {
      this.rejectedTotal++;
      this.rejections.set(key, { errors, at: this.now() });
      return { ok: false, errors };
    }
    this.rejections.delete(key);
    const prev = this.snapshots.get(key);
    this.snapshots.set(key, snapshot);
    const changes = diffSnapshots(prev, snapshot);
    if (changes.size > 0 || prev === undefined)
      for (const l of [...this.listeners]) l(key, snapshot, changes);
    return { ok: true, changes };
  }

  get(key: string): Snapshot | undefined {
    return this.snapshots.get(key);
  }

  /** The last refusal for `key` since its last accepted snapshot. */
  rejection(key: string): Rejection | undefined {
    return this.rejections.get(key);
  }

  /** Forgets `key`: its proxies keep what they have and get nothing new until a snapshot is set again. */
  delete(key: string): void {
    this.snapshots.delete(key);
    this.rejections.delete(key);
  }

  keys(): string[] {
    return [...this.snapshots.keys()];
  }

  /** Calls `listener` after each accepted change; returns its cancel function. */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
