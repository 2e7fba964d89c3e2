// The value-level pieces of proto3 JSON: scalars, enums, 64-bit integers, and the JSON forms of Duration,
// Timestamp, Struct and Value.

import protobuf from 'protobufjs';
import type { ConfigError } from '../config/result.js';

/** Protobuf's own limit on message nesting; deeper input is refused rather than risking the stack. */
export const MAX_DEPTH = 100;
const MAX_DURATION_SECONDS = 315_576_000_000;
const FLOAT_MAX = 3.4028234663852886e38;

type Json = Record<string, unknown>;

const INT_RANGES: Record<string, readonly [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

export function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

export function isPlainObject(v: unknown): v is Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** protoc's JSON name: `accept_http_10` -> `acceptHttp10`. */
export function jsonName(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function isValueType(field: protobuf.Field): boolean {
  return (
    field.resolvedType?.fullName === '.google.protobuf.Value' ||
    field.resolvedType?.fullName === '.google.protobuf.NullValue'
  );
}

export function hasPresence(field: protobuf.Field): boolean {
  return field.hasPresence || field.resolvedType instanceof protobuf.Type;
}

export function isDefaultScalar(v: unknown): boolean {
  if (v === 0 || v === '' || v === false) return !Object.is(v, -0);
  if (v instanceof Uint8Array) return v.length === 0;
  if (typeof v === 'object' && v !== null && 'low' in v && 'high' in v) {
    return (v as { low: number }).low === 0 && (v as { high: number }).high === 0;
  }
  return false;
}

export function isDefaultDecoded(field: protobuf.Field, v: unknown): boolean {
  if (field.resolvedType instanceof protobuf.Enum) return v === 0;
  if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array)) return String(v) === '0';
  return isDefaultScalar(v);
}

export function enumFromJson(
  e: protobuf.Enum,
  value: unknown,
  path: string,
  errors: ConfigError[],
): number | undefined {
  if (e.fullName === '.google.protobuf.NullValue' && value === null) return 0;
  if (typeof value === 'string') {
    const n = e.values[value];
    if (n !== undefined) return n;
    const names = Object.keys(e.values);
    const shown = names.length > 12 ? `${names.slice(0, 12).join(', ')}, ...` : names.join(', ');
    errors.push({ path, message: `unknown value ${JSON.stringify(value)} (expected one of ${shown})` });
    return undefined;
  }
  if (typeof value === 'number' && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31)
    return value;
  errors.push({ path, message: `expected an enum name, got ${typeOf(value)}` });
  return undefined;
}

export function enumToJson(e: protobuf.Enum, value: number): string | number {
  return e.valuesById[value] ?? value;
}

export function scalarFromJson(kind: string, value: unknown, path: string, errors: ConfigError[]): unknown {
  const fail = (what: string) => {
    const shown = typeof value === 'number' ? String(value) : typeOf(value);
    errors.push({ path, message: `expected ${what}, got ${shown}` });
    return undefined;
  };
  switch (kind) {
    case 'string':
      return typeof value === 'string' ? value : fail('a string');
    case 'bool':
      return typeof value === 'boolean' ? value : fail('a boolean');
    case 'bytes':
      if (typeof value !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) return fail('base64 bytes');
      return Buffer.from(value, 'base64');
    case 'double':
    case 'float': {
      let n: number;
      if (typeof value === 'number') n = value;
      else if (value === 'NaN') n = Number.NaN;
      else if (value === 'Infinity') n = Number.POSITIVE_INFINITY;
      else if (value === '-Infinity') n = Number.NEGATIVE_INFINITY;
      else if (typeof value === 'string' && /^-?[0-9.]+([eE][-+]?[0-9]+)?$/.test(value)) n = Number(value);
      else return fail('a number');
      if (Number.isNaN(n) && value !== 'NaN') return fail('a number');
      if (kind === 'float' && Number.isFinite(n) && Math.abs(n) > FLOAT_MAX) {
        errors.push({ path, message: `${n} is out of range for a float` });
        return undefined;
      }
      return n;
    }
  }
  const range = INT_RANGES[kind];
  if (range === undefined) return fail(kind);
  let big: bigint;
  if (typeof value === 'number' && Number.isInteger(value)) big = BigInt(value);
  else if (typeof value === 'string' && /^-?[0-9]{1,20}$/.test(value)) big = BigInt(value);
  else return fail('an integer');
  if (big < range[0] || big > range[1]) {
    errors.push({ path, message: `must be between ${range[0]} and ${range[1]}, got ${big}` });
    return undefined;
  }
  if (big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(big);
  // The writer takes {low, high} halves for 64-bit values a double cannot hold.
  const u = BigInt.asUintN(64, big);
  return {
    low: Number(u & 0xffffffffn),
    high: Number(u >> 32n),
    unsigned: kind.startsWith('u') || kind.startsWith('f'),
  };
}

export function scalarToJson(kind: string, value: unknown): unknown {
  switch (kind) {
    case 'int64':
    case 'uint64':
    case 'sint64':
    case 'fixed64':
    case 'sfixed64':
      return String(value);
    case 'bytes':
      return Buffer.from(value as Uint8Array).toString('base64');
    case 'float':
    case 'double': {
      const n = value as number;
      if (Number.isNaN(n)) return 'NaN';
      if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity';
      return kind === 'float' ? shortestFloat(n) : n;
    }
    default:
      return value;
  }
}

/** The shortest decimal that reads back as the same float32 (a float 0.1 decodes as 0.10000000149011612). */
export function shortestFloat(n: number): number {
  for (let p = 1; p <= 9; p++) {
    const candidate = Number(n.toPrecision(p));
    if (Math.fround(candidate) === n) return candidate;
  }
  return n;
}

export function mapKey(keyType: string, key: string): string | undefined {
  if (keyType === 'string') return key;
  if (keyType === 'bool') return key === 'true' || key === 'false' ? key : undefined;
  return /^-?[0-9]+$/.test(key) ? key : undefined;
}

export function durationFromJson(text: string, path: string, errors: ConfigError[]): Json | undefined {
  const m = /^(-)?([0-9]{1,12})(?:\.([0-9]{1,9}))?s$/.exec(text);
  const seconds = m === null ? Number.NaN : Number(m[2]);
  if (m === null || seconds > MAX_DURATION_SECONDS) {
    errors.push({
      path,
      message: `invalid duration ${JSON.stringify(text.slice(0, 40))}: expected seconds with an "s" suffix, e.g. "5s" or "0.250s"`,
    });
    return undefined;
  }
  const sign = m[1] === '-' ? -1 : 1;
  const nanos = m[3] === undefined ? 0 : Number(m[3].padEnd(9, '0'));
  const out: Json = {};
  if (seconds !== 0) out.seconds = sign * seconds;
  if (nanos !== 0) out.nanos = sign * nanos;
  return out;
}

export function durationToJson(seconds: unknown, nanos: number): string {
  const s = BigInt(String(seconds ?? 0));
  const negative = s < 0n || nanos < 0;
  const abs = (s < 0n ? -s : s).toString();
  const n = Math.abs(nanos);
  return `${negative ? '-' : ''}${abs}${fraction(n)}s`;
}

/** protoc's fractional part: none, or 3, 6 or 9 digits. */
export function fraction(nanos: number): string {
  if (nanos === 0) return '';
  const digits = String(nanos).padStart(9, '0');
  if (nanos % 1_000_000 === 0) return `.${digits.slice(0, 3)}`;
  if (nanos % 1_000 === 0) return `.${digits.slice(0, 6)}`;
  return `.${digits}`;
}

export function timestampFromJson(text: string, path: string, errors: ConfigError[]): Json | undefined {
  const m =
    /^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})$/.exec(
      text,
    );
  const ms = m === null ? Number.NaN : Date.parse(`${m[1]}${m[3]}`);
  if (m === null || Number.isNaN(ms)) {
    errors.push({
      path,
      message: `invalid timestamp ${JSON.stringify(text.slice(0, 40))}: expected RFC 3339, e.g. "2024-01-02T03:04:05Z"`,
    });
    return undefined;
  }
  const out: Json = {};
  if (ms !== 0) out.seconds = ms / 1000;
  const nanos = m[2] === undefined ? 0 : Number(m[2].padEnd(9, '0'));
  if (nanos !== 0) out.nanos = nanos;
  return out;
}

export function timestampToJson(seconds: unknown, nanos: number): string {
  const iso = new Date(Number(String(seconds ?? 0)) * 1000).toISOString();
  return `${iso.slice(0, 19)}${fraction(nanos)}Z`;
}

/**
 * The field names of google.protobuf.Value: protobufjs bundles the google/protobuf types with camelCase names
 * (nullValue) whatever keepCase says, so they are read from the loaded type by field number.
 */
export interface ValueNames {
  readonly null: string;
  readonly number: string;
  readonly string: string;
  readonly bool: string;
  readonly struct: string;
  readonly list: string;
}

export function valueNames(type: protobuf.Type): ValueNames {
  const n = (id: number) => type.fieldsById[id]!.name;
  return { null: n(1), number: n(2), string: n(3), bool: n(4), struct: n(5), list: n(6) };
}

export function structFields(
  vn: ValueNames,
  json: unknown,
  path: string,
  errors: ConfigError[],
  depth: number,
): Json {
  if (!isPlainObject(json)) {
    errors.push({ path, message: `expected an object, got ${typeOf(json)}` });
    return {};
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(json)) {
    const value = valueFromJson(vn, v, join(path, k), errors, depth + 1);
    Object.defineProperty(out, k, { value, enumerable: true });
  }
  return out;
}

export function valueFromJson(
  vn: ValueNames,
  json: unknown,
  path: string,
  errors: ConfigError[],
  depth: number,
): Json {
  if (depth > MAX_DEPTH) {
    errors.push({ path, message: `nested deeper than ${MAX_DEPTH} levels` });
    return {};
  }
  if (json === null) return { [vn.null]: 0 };
  if (typeof json === 'number') {
    if (!Number.isFinite(json)) errors.push({ path, message: `expected a finite number, got ${json}` });
    return { [vn.number]: json };
  }
  if (typeof json === 'string') return { [vn.string]: json };
  if (typeof json === 'boolean') return { [vn.bool]: json };
  if (Array.isArray(json)) {
    return {
      [vn.list]: { values: json.map((v, i) => valueFromJson(vn, v, `${path}[${i}]`, errors, depth + 1)) },
    };
  }
  if (isPlainObject(json)) return { [vn.struct]: { fields: structFields(vn, json, path, errors, depth) } };
  errors.push({ path, message: `expected a JSON value, got ${typeOf(json)}` });
  return {};
}

export function structToJson(vn: ValueNames, m: Json): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries((m.fields as Json | undefined) ?? {})) {
    Object.defineProperty(out, k, { value: valueToJson(vn, v as Json), enumerable: true });
  }
  return out;
}

export function valueToJson(vn: ValueNames, m: Json): unknown {
  if (Object.hasOwn(m, vn.number)) return m[vn.number];
  if (Object.hasOwn(m, vn.string)) return m[vn.string];
  if (Object.hasOwn(m, vn.bool)) return m[vn.bool];
  if (Object.hasOwn(m, vn.struct)) return structToJson(vn, m[vn.struct] as Json);
  if (Object.hasOwn(m, vn.list)) {
    return (((m[vn.list] as Json).values as Json[] | undefined) ?? []).map((v) => valueToJson(vn, v));
  }
  return null;
}
