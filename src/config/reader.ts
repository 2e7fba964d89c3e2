// Reads Envoy JSON objects field by field: typed getters that record every error with its path, camelCase keys.

import type { ConfigError } from './result.js';

/** Past this many errors the rest are counted, not listed: a hostile input must not produce megabytes of text. */
export const MAX_ERRORS = 1000;

/** A cluster named by a route or a TCP proxy, checked against the static clusters by the bootstrap. */
export interface ClusterRef {
  readonly name: string;
  readonly path: string;
}

/** State of one translation: the errors found so far and the cross-references to check at the end. */
export class Ctx {
  private readonly list: ConfigError[] = [];
  private dropped = 0;
  readonly clusterRefs: ClusterRef[] = [];
  /** Paths of ConfigSources that name ADS: a bootstrap holding any needs dynamic_resources.ads_config. */
  readonly adsRefs: string[] = [];

  error(path: string, message: string): void {
    if (this.list.length < MAX_ERRORS) this.list.push({ path, message });
    else this.dropped++;
  }

  get failed(): boolean {
    return this.list.length > 0;
  }

  errors(): ConfigError[] {
    if (this.dropped === 0) return [...this.list];
    return [...this.list, { path: '', message: `${this.dropped} more errors not shown` }];
  }
}

export function fieldPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

export function indexPath(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

/** `other` shortened for a message about `path`: from the first field where the two differ (`clusters[0]`). */
export function relativePath(other: string, path: string): string {
  let i = 0;
  while (i < other.length && i < path.length && other[i] === path[i]) i++;
  const start = other.lastIndexOf('.', i - 1) + 1;
  return other.slice(start);
}

/** The JSON type of a value, as used in "expected a string, got number". */
export function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** A user-supplied string quoted for an error message: escaped, and cut when long. */
export function quote(value: string): string {
  const cut = value.length > 120 ? `${value.slice(0, 117)}...` : value;
  return JSON.stringify(cut);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** proto3 JSON names (`staticResources`) to proto field names (`static_resources`); other keys unchanged. */
export function snakeCase(key: string): string {
  if (!/^[a-z][a-zA-Z0-9_]*$/.test(key)) return key;
  const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return DIGIT_FIELDS[snake] ?? snake;
}

/**
 * proto3 JSON drops the underscore before a digit (`accept_http_10` is `acceptHttp10`), so those names cannot be
 * told from `http2_...` style ones by rule: the supported ones are listed.
 */
const DIGIT_FIELDS: Readonly<Record<string, string>> = {
  accept_http10: 'accept_http_10',
  default_host_for_http10: 'default_host_for_http_10',
};

export interface Item {
  readonly value: unknown;
  readonly path: string;
}

interface Entry {
  readonly key: string;
  readonly value: unknown;
}

export interface IntOptions {
  readonly min?: number;
  readonly max?: number;
  readonly required?: boolean;
}

export interface StringOptions {
  readonly required?: boolean;
  readonly nonEmpty?: boolean;
}

/**
 * How an input spells its fields. Envoy's proto3 JSON takes each field as snake_case or lowerCamelCase and calls a
 * repeated field an array; Kubernetes and Istio take keys exactly as written (`targetPort`, never `target_port`)
 * and call it a list.
 */
export interface Naming {
  readonly exactKeys: boolean;
  /** As in "expected an array, got object". */
  readonly repeated: string;
}

const PROTO3_JSON: Naming = { exactKeys: false, repeated: 'an array' };

/**
 * One object of the input. Every getter marks its field as read; `finish()` reports each field never read as
 * unknown. A `null` value is proto3 JSON for "unset" and reads as absent.
 */
export class Fields {
  private readonly byName = new Map<string, Entry>();
  private readonly read = new Set<string>();

  protected constructor(
    readonly ctx: Ctx,
    readonly path: string,
    raw: Record<string, unknown>,
    private readonly naming: Naming = PROTO3_JSON,
  ) {
    for (const [key, value] of Object.entries(raw)) {
      const name = naming.exactKeys ? key : snakeCase(key);
      const seen = this.byName.get(name);
      if (seen !== undefined) {
        ctx.error(fieldPath(path, key), `duplicate field ${quote(key)} (also given as ${quote(seen.key)})`);
        continue;
      }
      this.byName.set(name, { key, value });
    }
  }

  /** The object at `path`, or undefined (with an error) when the value is not an object. */
  static of(ctx: Ctx, raw: unknown, path: string): Fields | undefined {
    if (!isPlainObject(raw)) {
      ctx.error(path, `expected an object, got ${typeOf(raw)}`);
      return undefined;
    }
    return new Fields(ctx, path, raw);
  }

  /** True when the field is present and not null. Does not mark it read. */
  has(name: string): boolean {
    const e = this.byName.get(name);
    return e !== undefined && e.value !== null;
  }

  /** Path of a field, spelled as the user wrote it when present. */
  pathOf(name: string): string {
    return fieldPath(this.path, this.byName.get(name)?.key ?? name);
  }

  error(name: string, message: string): void {
    this.ctx.error(this.pathOf(name), message);
  }

  /** The raw value of a field (undefined when absent or null), marked read. */
  take(name: string): unknown {
    this.read.add(name);
    const v = this.byName.get(name)?.value;
    return v === null ? undefined : v;
  }

  protected missing(name: string, required: boolean | undefined): undefined {
    if (required) this.error(name, 'missing required field');
    return undefined;
  }

  string(name: string, opts: StringOptions = {}): string | undefined {
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

  /** An integer; proto3 JSON also allows it as a decimal string ("8080"). Default range is uint32. */
  int(name: string, opts: IntOptions = {}): number | undefined {
    const v = this.take(name);
    if (v === undefined) return this.missing(name, opts.required);
    const n = toInteger(v);
    if (n === undefined) {
      const shown = typeof v === 'number' ? String(v) : typeOf(v);
      this.error(name, `expected an integer, got ${shown}`);
      return undefined;
    }
    const min = opts.min ?? 0;
    const max = opts.max ?? 4294967295;
    if (n < min || n > max) {
      this.error(name, `must be between ${min} and ${max}, got ${n}`);
      return undefined;
    }
    return n;
  }

  object(name: string, opts: { required?: boolean } = {}): Fields | undefined {
    const v = this.take(name);
    if (v === undefined) return this.missing(name, opts.required);
    return Fields.of(this.ctx, v, this.pathOf(name));
  }

  /** The items of a repeated field with their paths; [] when absent or not an array (with an error). */
  list(name: string, opts: { required?: boolean; nonEmpty?: boolean } = {}): Item[] {
    const v = this.take(name);
    if (v === undefined) {
      this.missing(name, opts.required || opts.nonEmpty);
      return [];
    }
    const path = this.pathOf(name);
    if (!Array.isArray(v)) {
      this.ctx.error(path, `expected ${this.naming.repeated}, got ${typeOf(v)}`);
      return [];
    }
    if (v.length === 0 && opts.nonEmpty) this.ctx.error(path, 'must not be empty');
    return v.map((value, i) => ({ value, path: indexPath(path, i) }));
  }

  /** A repeated string field. */
  strings(name: string, opts: { nonEmpty?: boolean; nonEmptyItems?: boolean } = {}): Item[] {
    const out: Item[] = [];
    for (const item of this.list(name, { nonEmpty: opts.nonEmpty })) {
      if (typeof item.value !== 'string') {
        this.ctx.error(item.path, `expected a string, got ${typeOf(item.value)}`);
      } else if (opts.nonEmptyItems && item.value === '') {
        this.ctx.error(item.path, 'must not be empty');
      } else {
        out.push(item);
      }
    }
    return out;
  }

  /** An enum given by name. Values Envoy knows but Remora does not implement are reported as such. */
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
    if (notYet.includes(v)) {
      this.error(name, `value ${quote(v)} is not supported by Remora yet (supported: ${expected})`);
    } else {
      this.error(name, `unsupported value ${quote(v)} (expected one of ${expected})`);
    }
    return undefined;
  }

  /**
   * The one field set among a proto oneof, or undefined. More than one set is an error; none set is an error
   * when `required`.
   */
  oneOf(names: readonly string[], opts: { required?: boolean } = {}): string | undefined {
    const set = names.filter((n) => this.has(n));
    if (set.length > 1) {
      this.ctx.error(this.path, `only one of ${names.join(', ')} may be set (got ${set.join(', ')})`);
      return undefined;
    }
    if (set.length === 0 && opts.required) {
      this.ctx.error(this.path, `one of ${names.join(', ')} is required`);
    }
    return set[0];
  }

  /**
   * Envoy fields Remora does not implement: an error when set. An empty list is proto3's "unset"; `defaults`
   * names values that mean the same as unset (e.g. `bind_to_port: true`) and are accepted.
   */
  unsupported(names: readonly string[], defaults: Readonly<Record<string, unknown>> = {}): void {
    for (const name of names) {
      const v = this.take(name);
      if (v === undefined) continue;
      if (Array.isArray(v) && v.length === 0) continue;
      if (Object.hasOwn(defaults, name) && defaults[name] === v) continue;
      this.error(name, 'field not supported by Remora');
    }
  }

  /** Reports every field that no getter read. Call once, after all getters. */
  finish(): void {
    for (const [name, e] of this.byName) {
      if (!this.read.has(name)) this.ctx.error(fieldPath(this.path, e.key), `unknown field ${quote(e.key)}`);
    }
  }
}

function toInteger(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : undefined;
  if (typeof v === 'string' && /^-?[0-9]{1,16}$/.test(v)) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

const MAX_JSON_DEPTH = 32;

/**
 * A copy of a free-form JSON value (metadata, json_format), keys kept as written. Rejects values that are not
 * JSON and nesting deeper than 32 levels.
 */
export function jsonValue(ctx: Ctx, raw: unknown, path: string, depth = 0): unknown {
  if (raw === null || typeof raw === 'string' || typeof raw === 'boolean') return raw;
  if (typeof raw === 'number') {
    if (Number.isFinite(raw)) return raw;
    ctx.error(path, `expected a finite number, got ${raw}`);
    return null;
  }
  if (depth >= MAX_JSON_DEPTH) {
    ctx.error(path, `nested deeper than ${MAX_JSON_DEPTH} levels`);
    return null;
  }
  if (Array.isArray(raw)) return raw.map((v, i) => jsonValue(ctx, v, indexPath(path, i), depth + 1));
  if (isPlainObject(raw)) return jsonObject(ctx, raw, path, depth);
  ctx.error(path, `expected a JSON value, got ${typeOf(raw)}`);
  return null;
}

export function jsonObject(
  ctx: Ctx,
  raw: Record<string, unknown>,
  path: string,
  depth = 0,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    // defineProperty: a key named "__proto__" stays a plain data property.
    Object.defineProperty(out, key, {
      value: jsonValue(ctx, value, fieldPath(path, key), depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
