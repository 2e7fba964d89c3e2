// The Source plug-in contract: where mesh objects come from (files, DNS; later etcd, Kubernetes, Consul).

import type { ManifestError } from '../manifests/parse.js';
import { type MeshObject, objectKey } from '../model/objects.js';

/** A problem a source found (an invalid manifest, a name that did not resolve); the rest keeps serving. */
export interface SourceProblem {
  /** Stable code, as listed in docs/control-plane.md (`RA0102`). */
  readonly code: string;
  /** The manifest problem, when it is one (file, object, field path). */
  readonly manifest?: ManifestError;
  /** One line, with where it is. */
  readonly message: string;
}

/**
 * What a source tells the registry. `full`: every object the source has now (anything missing is deleted).
 * `delta`: objects added or changed, and keys (`Kind/namespace/name`) removed. `problems` is always the source's
 * complete current list: an empty list clears earlier ones.
 */
export type SourceUpdate =
  | {
      readonly kind: 'full';
      readonly objects: readonly MeshObject[];
      readonly problems: readonly SourceProblem[];
    }
  | {
      readonly kind: 'delta';
      readonly upserts: readonly MeshObject[];
      readonly removals: readonly string[];
      readonly problems: readonly SourceProblem[];
    };

export type SourceListener = (update: SourceUpdate) => void;

/**
 * A source's objects by key after `u`: a full update replaces them (of two objects with one key, the first is kept),
 * a delta edits `objects` in place.
 */
export function applyUpdate(objects: Map<string, MeshObject>, u: SourceUpdate): Map<string, MeshObject> {
  if (u.kind === 'delta') {
    for (const k of u.removals) objects.delete(k);
    for (const o of u.upserts) objects.set(objectKey(o), o);
    return objects;
  }
  const next = new Map<string, MeshObject>();
  for (const o of u.objects) if (!next.has(objectKey(o))) next.set(objectKey(o), o);
  return next;
}

/**
 * A source of mesh objects. Contract:
 * - `start(listener)` begins watching; it resolves once the first `full` update has been delivered, so a caller
 *   that awaits it knows the source's initial state. Later updates follow as things change.
 * - Updates are delivered one at a time, in order; a source never calls the listener after `close()` resolves.
 * - `close()` stops every watch, timer and socket the source holds; it may be called more than once.
 * - A source that derives objects from other sources' objects (DNS resolves ServiceEntries) implements
 *   `observe`: the registry calls it with the merged objects of all sources after each change.
 */
export interface Source {
  /** Unique among the registry's sources; names objects' origin (`files`, `dns`). */
  readonly name: string;
  start(listener: SourceListener): Promise<void>;
  close(): Promise<void>;
  observe?(objects: readonly MeshObject[]): void;
}
