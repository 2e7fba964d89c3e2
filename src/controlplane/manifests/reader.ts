// Reads Kubernetes-style objects field by field: config's Fields with exact camelCase keys and Kubernetes integers.

import {
  type Ctx,
  Fields,
  fieldPath,
  type IntOptions,
  isPlainObject,
  type Naming,
  quote,
  typeOf,
} from '../../config/reader.js';

export type { IntOptions, Item } from '../../config/reader.js';

export interface Entry {
  readonly key: string;
  readonly value: unknown;
  readonly path: string;
}

/** `labels.app`, but `labels["kubernetes.io/service-name"]` for a key that is not a plain identifier. */
export function keyPath(parent: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? fieldPath(parent, key) : `${parent}[${JSON.stringify(key)}]`;
}

const KUBERNETES: Naming = { exactKeys: true, repeated: 'a list' };

/**
 * One object of a manifest: config's `Fields`, but keys are matched exactly as Kubernetes and Istio spell them
 * (`targetPort`, never `target_port`), integers are JSON numbers (int32 unless told otherwise), and maps, features
 * Remora lacks and read-only fields have getters of their own. A `null` value reads as absent, as in Kubernetes.
 */
export class Obj extends Fields {
  private constructor(ctx: Ctx, path: string, raw: Record<string, unknown>) {
    super(ctx, path, raw, KUBERNETES);
  }

  /** The object at `path`, or undefined (with an error) when the value is not an object. */
  static override of(ctx: Ctx, raw: unknown, path: string): Obj | undefined {
    if (!isPlainObject(raw)) {
      ctx.error(path, `expected an object, got ${typeOf(raw)}`);
      return undefined;
    }
    return new Obj(ctx, path, raw);
  }

  override object(name: string, opts: { required?: boolean } = {}): Obj | undefined {
    const v = this.take(name);
    if (v === undefined) return this.missing(name, opts.required);
    return Obj.of(this.ctx, v, this.pathOf(name));
  }

  /** An integer (Kubernetes int32 unless told otherwise: 0 to 2^31-1); unlike proto3 JSON, never a string. */
  override int(name: string, opts: IntOptions = {}): number | undefined {
    const v = this.take(name);
    if (v === undefined) return this.missing(name, opts.required);
    return checkInt(this.ctx, v, this.pathOf(name), opts);
  }

  /** The entries of a map field (`map<string, X>`), keys as written; [] when absent. */
  entries(name: string): Entry[] {
    const v = this.take(name);
    if (v === undefined) return [];
    const path = this.pathOf(name);
    if (!isPlainObject(v)) {
      this.ctx.error(path, `expected a map, got ${typeOf(v)}`);
      return [];
    }
    return Object.entries(v).map(([key, value]) => ({ key, value, path: keyPath(path, key) }));
  }

  /** A `map<string, string>` (labels, selectors); undefined when absent. Keys sorted, so equal maps compare equal. */
  stringMap(name: string): Record<string, string> | undefined {
    if (!this.has(name)) {
      this.take(name);
      return undefined;
    }
    const out: Record<string, string> = {};
    for (const e of this.entries(name).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
      if (typeof e.value !== 'string') {
        this.ctx.error(e.path, `expected a string, got ${typeOf(e.value)}`);
        continue;
      }
      Object.defineProperty(out, e.key, {
        value: e.value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }

  /**
   * Fields whose feature Remora does not have yet: an error when set, saying so (`what` names the feature when
   * the field name alone does not). An empty list or map counts as unset.
   */
  notYet(names: readonly string[], what: Readonly<Record<string, string>> = {}): void {
    for (const name of names) {
      const v = this.take(name);
      if (v === undefined) continue;
      if (Array.isArray(v) && v.length === 0) continue;
      if (isPlainObject(v) && Object.keys(v).length === 0) continue;
      const feature = what[name];
      this.error(
        name,
        `${feature ? `${feature} (${quote(name)})` : `field ${quote(name)}`} is not supported by Remora yet`,
      );
    }
  }

  /** Fields accepted and not used (read-only metadata, status written by a server). */
  ignore(names: readonly string[]): void {
    for (const name of names) this.take(name);
  }
}

export function checkInt(ctx: Ctx, v: unknown, path: string, opts: IntOptions = {}): number | undefined {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    ctx.error(path, `expected an integer, got ${typeof v === 'number' ? String(v) : typeOf(v)}`);
    return undefined;
  }
  const min = opts.min ?? 0;
  const max = opts.max ?? 2147483647;
  if (v < min || v > max) {
    ctx.error(path, `must be between ${min} and ${max}, got ${v}`);
    return undefined;
  }
  return v;
}
