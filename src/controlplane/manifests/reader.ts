// Reads Kubernetes-style objects field by field: exact camelCase keys, every error with its path (on config's Ctx).

import { type Ctx, fieldPath, indexPath, isPlainObject, quote, typeOf } from '../../config/reader.js';

export interface Item {
  readonly value: unknown;
  readonly path: string;
}

export interface Entry {
  readonly key: string;
  readonly value: unknown;
  readonly path: string;
}

export interface IntOptions {
  readonly min?: number;
  readonly max?: number;
  readonly required?: boolean;
}

/** `labels.app`, but `labels["kubernetes.io/service-name"]` for a key that is not a plain identifier. */
export function keyPath(parent: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? fieldPath(parent, key) : `${parent}[${JSON.stringify(key)}]`;
}

/**
 * One object of a manifest. Unlike config's `Fields` (Envoy's proto3 JSON, which also accepts snake_case), keys
 * are matched exactly as Kubernetes and Istio spell them: `targetPort`, never `target_port`. Every getter marks
 * its field read; `finish()` reports the others as unknown. A `null` value reads as absent, as in Kubernetes.
 */
export class Obj {
  private readonly read = new Set<string>();

  private constructor(
    readonly ctx: Ctx,
    readonly path: string,
    private readonly raw: Record<string, unknown>,
  ) {}

  /** The object at `path`, or undefined (with an error) when the value is not an object. */
  static of(ctx: Ctx, raw: unknown, path: string): Obj | undefined {
    if (!isPlainObject(raw)) {
      ctx.error(path, `expected an object, got ${typeOf(raw)}`);
      return undefined;
    }
    return new Obj(ctx, path, raw);
  }

  has(name: string): boolean {
    const v = this.raw[name];
    return Object.hasOwn(this.raw, name) && v !== null && v !== undefined;
  }

  pathOf(name: string): string {
    return fieldPath(this.path, name);
  }

  error(name: string, message: string): void {
    this.ctx.error(this.pathOf(name), message);
  }

  /** The raw value (undefined when absent or null), marked read. */
  take(name: string): unknown {
    this.read.add(name);
    if (!Object.hasOwn(this.raw, name)) return undefined;
    const v = this.raw[name];
    return v === null ? undefined : v;
  }

  private missing(name: string, required: boolean | undefined): undefined {
    if (required) this.error(name, 'missing required field');
    return undefined;
  }

  string(name: string, opts: { required?: boolean; nonEmpty?: boolean } = {}): string | undefined {
    const v = this.take(name);
    if (v === undefined) return this.missing(name, opts.required);
    if (typeof v !== 'string') {
      this.error(name, `expected a string, got ${typeOf(v)}`);
      return undefined;
    }
    if (v === '' && (opts.nonEmpty || opts.required)) {
      this.error(name, 'must not be empty');
      return undefined;
    }
    return v;
  }

  bool(name: string): boolean | undefined {
    const v = this.take(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') {
      this.error(name, `expected a boolean, got ${typeOf(v)}`);
      return undefined;
    }
    return v;
  }

  /** An integer (Kubernetes int32 unless told otherwise: 0 to 2^31-1). */
  int(name: string, opts: IntOptions = {}): number | undefined {
    const v = this.take(name);
    if (v === undefined) return this.missing(name, opts.required);
    return checkInt(this.ctx, v, this.pathOf(name), opts);
  }

  object(name: string, opts: { required?: boolean } = {}): Obj | undefined {
    const v = this.take(name);
    if (v === undefined) return this.missing(name, opts.required);
    return Obj.of(this.ctx, v, this.pathOf(name));
  }

  /** The items of a list field with their paths; [] when absent or not a list (with an error). */
  list(name: string, opts: { required?: boolean; nonEmpty?: boolean } = {}): Item[] {
    const v = this.take(name);
    if (v === undefined) {
      this.missing(name, opts.required || opts.nonEmpty);
      return [];
    }
    const path = this.pathOf(name);
    if (!Array.isArray(v)) {
      this.ctx.error(path, `expected a list, got ${typeOf(v)}`);
      return [];
    }
    if (v.length === 0 && opts.nonEmpty) this.ctx.error(path, 'must not be empty');
    return v.map((value, i) => ({ value, path: indexPath(path, i) }));
  }

  /** A list of strings; items that are not strings (or empty, when `nonEmptyItems`) are reported and left out. */
  strings(name: string, opts: { nonEmpty?: boolean; nonEmptyItems?: boolean } = {}): Item[] {
    const out: Item[] = [];
    for (const item of this.list(name, { nonEmpty: opts.nonEmpty })) {
      if (typeof item.value !== 'string')
        this.ctx.error(item.path, `expected a string, got ${typeOf(item.value)}`);
      else if (opts.nonEmptyItems && item.value === '') this.ctx.error(item.path, 'must not be empty');
      else out.push(item);
    }
    return out;
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

  /** An enum by name; values Istio or Kubernetes know but Remora does not implement are reported as such. */
  enumOf<T extends string>(
    name: string,
    supported: readonly T[],
    notYet: readonly string[] = [],
  ): T | undefined {
    const v = this.take(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') {
      this.error(name, `expected a string, got ${typeOf(v)}`);
      return undefined;
    }
    if ((supported as readonly string[]).includes(v)) return v as T;
    const expected = supported.join(', ');
    if (notYet.includes(v))
      this.error(name, `value ${quote(v)} is not supported by Remora yet (supported: ${expected})`);
    else this.error(name, `unsupported value ${quote(v)} (expected one of ${expected})`);
    return undefined;
  }

  /** The one field set among alternatives, or undefined; more than one set is an error. */
  oneOf(names: readonly string[], opts: { required?: boolean } = {}): string | undefined {
    const set = names.filter((n) => this.has(n));
    if (set.length > 1) {
      this.ctx.error(this.path, `only one of ${names.join(', ')} may be set (got ${set.join(', ')})`);
      return undefined;
    }
    if (set.length === 0 && opts.required)
      this.ctx.error(this.path, `one of ${names.join(', ')} is required`);
    return set[0];
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

  /** Reports every field no getter read. Call once, after all getters. */
  finish(): void {
    for (const key of Object.keys(this.raw)) {
      if (!this.read.has(key)) this.ctx.error(fieldPath(this.path, key), `unknown field ${quote(key)}`);
    }
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
