// Manifests held under keys (etcd keys, API objects), each keeping its last good objects while its value is invalid.

import { formatManifestError, type ParseResult, parseManifests } from '../manifests/parse.js';
import { describeObject, type MeshObject, objectKey } from '../model/objects.js';
import type { SourceProblem } from './source.js';

interface KeyState {
  /** The value as stored (etcd) or a digest of it: the same value again is no change. */
  readonly text: string | undefined;
  /** The key's valid objects, plus the last good ones its current value does not validly define. */
  readonly served: readonly MeshObject[];
  readonly problems: readonly SourceProblem[];
}

/**
 * The objects of a key-value store of manifests. A value with errors keeps serving the objects of the key's last
 * good value that it does not validly define (an error never deletes anything); deleting the key deletes them.
 * When two keys define the same object, the first key in sorted order serves it and the other is reported.
 */
export class KeyedManifests {
  private readonly keys = new Map<string, KeyState>();

  constructor(private readonly sourceName: string) {}

  get size(): number {
    return this.keys.size;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Parses a YAML or JSON value (several documents or a List are fine); errors name the key as their file. */
  setText(key: string, text: string): boolean {
    const old = this.keys.get(key);
    if (old !== undefined && old.text === text) return false;
    return this.setParsed(key, parseManifests(text, { source: this.sourceName, file: key }), text);
  }

  /**
   * Sets a key's already parsed objects. `text` identifies the value: when it equals the stored one nothing
   * changes (omit it to always replace).
   */
  setParsed(key: string, parsed: ParseResult, text?: string): boolean {
    const old = this.keys.get(key);
    if (old !== undefined && text !== undefined && old.text === text) return false;
    let served: readonly MeshObject[] = parsed.objects;
    if (parsed.errors.length > 0 && old !== undefined) {
      const now = new Set(parsed.objects.map(objectKey));
      served = [...parsed.objects, ...old.served.filter((o) => !now.has(objectKey(o)))];
    }
    const problems = parsed.errors.map((e) => ({
      code: e.code,
      manifest: e,
      message: formatManifestError(e),
    }));
    this.keys.set(key, { text, served, problems });
    return true;
  }

  /** Sets a problem of a key that has no manifest to parse (a value too large); its last objects keep serving. */
  setProblem(key: string, problem: SourceProblem, text?: string): boolean {
    const old = this.keys.get(key);
    if (old !== undefined && text !== undefined && old.text === text) return false;
    this.keys.set(key, { text, served: old?.served ?? [], problems: [problem] });
    return true;
  }

  delete(key: string): boolean {
    return this.keys.delete(key);
  }

  /** Drops every key not in `keep` (after a full re-read); returns whether any was dropped. */
  retain(keep: ReadonlySet<string>): boolean {
    let changed = false;
    for (const k of [...this.keys.keys()]) {
      if (!keep.has(k)) changed = this.keys.delete(k) || changed;
    }
    return changed;
  }

  current(): { objects: MeshObject[]; problems: SourceProblem[] } {
    const objects: MeshObject[] = [];
    const problems: SourceProblem[] = [];
    const owner = new Map<string, string>();
    for (const key of [...this.keys.keys()].sort()) {
      const k = this.keys.get(key)!;
      problems.push(...k.problems);
      for (const o of k.served) {
        const id = objectKey(o);
        const first = owner.get(id);
        if (first !== undefined) {
          problems.push({
            code: 'RA0104',
            message: `${key}: ${describeObject(o)} is also defined by ${first}: ignored here`,
          });
          continue;
        }
        owner.set(id, key);
        objects.push(o);
      }
    }
    return { objects, problems };
  }
}
