// Envoy's canonical proto3 JSON <-> protobufjs messages: field names, enums, 64-bit integers and the well-known
// types (Any with `@type`, Duration "1.5s", wrappers, Struct), which protobufjs's own fromObject/toObject miss.

import protobuf from 'protobufjs';
import type { ConfigError } from '../config/result.js';
import {
  durationFromJson,
  durationToJson,
  enumFromJson,
  enumToJson,
  hasPresence,
  isDefaultDecoded,
  isDefaultScalar,
  isPlainObject,
  isValueType,
  join,
  jsonName,
  MAX_DEPTH,
  mapKey,
  scalarFromJson,
  scalarToJson,
  structFields,
  structToJson,
  timestampFromJson,
  timestampToJson,
  typeOf,
  type ValueNames,
  valueFromJson,
  valueNames,
  valueToJson,
} from './proto_json_values.js';

/** A type that the codec cannot read or write (an Any of a type not loaded, a malformed message). */
export class ProtoJsonError extends Error {
  readonly code = 'REMORA_ERR_PROTO_JSON';
  constructor(
    readonly path: string,
    /** The message without the path. */
    readonly detail: string,
  ) {
    super(path === '' ? detail : `${path}: ${detail}`);
  }
}

export interface ToJsonOptions {
  /**
   * true: an Any becomes `{"@type": url, ...fields}` (canonical JSON). false: it stays `{type_url, value}` with
   * the bytes, for stream messages whose resources are handled one by one.
   */
  readonly expandAny: boolean;
}

/** The raw form of google.protobuf.Any. */
export interface RawAny {
  readonly type_url: string;
  readonly value: Uint8Array;
}

type Json = Record<string, unknown>;

const WRAPPERS = new Set(
  ['Double', 'Float', 'Int64', 'UInt64', 'Int32', 'UInt32', 'Bool', 'String', 'Bytes'].map(
    (n) => `.google.protobuf.${n}Value`,
  ),
);
/** Well-known types whose JSON is not an object of their fields; inside an Any they sit under "value". */
const SPECIAL_JSON = new Set([
  ...WRAPPERS,
  '.google.protobuf.Any',
  '.google.protobuf.Duration',
  '.google.protobuf.Timestamp',
  '.google.protobuf.Struct',
  '.google.protobuf.Value',
  '.google.protobuf.ListValue',
  '.google.protobuf.FieldMask',
]);

/** Converts between proto3 JSON and messages of the types loaded into one protobufjs Root. */
export class ProtoJson {
  private readonly typesByName = new Map<string, protobuf.Type | null>();
  private readonly fieldsByType = new Map<protobuf.Type, Map<string, protobuf.Field>>();

  private readonly vn: ValueNames;

  constructor(private readonly root: protobuf.Root) {
    this.vn = valueNames(root.lookupType('google.protobuf.Value'));
  }

  /** The message type an Any's type URL names (the part after the last "/"), or undefined when not loaded. */
  typeOfUrl(typeUrl: string): protobuf.Type | undefined {
    const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
    let t = this.typesByName.get(name);
    if (t === undefined) {
      const found = name === '' ? null : this.root.lookup(`.${name}`);
      t = found instanceof protobuf.Type ? found : null;
      this.typesByName.set(name, t);
    }
    return t ?? undefined;
  }

  // ------------------------------------------------------------------ JSON -> message

  /**
   * A plain object that `type.encode` writes, from proto3 JSON (proto field names or lowerCamelCase JSON names).
   * Every problem is added to `errors` with its path; the result is then incomplete.
   */
  fromJson(type: protobuf.Type, json: unknown, path: string, errors: ConfigError[], depth = 0): Json {
    if (depth > MAX_DEPTH) {
      errors.push({ path, message: `nested deeper than ${MAX_DEPTH} levels` });
      return {};
    }
    const special = this.specialFromJson(type, json, path, errors, depth);
    if (special !== undefined) return special;
    if (!isPlainObject(json)) {
      errors.push({ path, message: `expected an object for ${type.fullName.slice(1)}, got ${typeOf(json)}` });
      return {};
    }
    const out: Json = {};
    const fields = this.fieldMap(type);
    const seen = new Map<string, string>();
    const oneofs = new Map<string, string>();
    for (const [key, value] of Object.entries(json)) {
      const fieldPath = join(path, key);
      const field = fields.get(key);
      if (field === undefined) {
        errors.push({ path: fieldPath, message: `unknown field ${JSON.stringify(key)}` });
        continue;
      }
      const earlier = seen.get(field.name);
      if (earlier !== undefined) {
        errors.push({
          path: fieldPath,
          message: `duplicate field (also given as ${JSON.stringify(earlier)})`,
        });
        continue;
      }
      seen.set(field.name, key);
      if (value === null && !isValueType(field)) continue;
      if (field.partOf !== null) {
        const other = oneofs.get(field.partOf.name);
        if (other !== undefined) {
          errors.push({
            path: fieldPath,
            message: `only one of oneof ${field.partOf.name} may be set (got ${other})`,
          });
          continue;
        }
        oneofs.set(field.partOf.name, key);
      }
      const converted = this.fieldFromJson(field, value, fieldPath, errors, depth);
      if (converted !== undefined) out[field.name] = converted;
    }
    return out;
  }

  private fieldFromJson(
    field: protobuf.Field,
    value: unknown,
    path: string,
    errors: ConfigError[],
    depth: number,
  ): unknown {
    if (field.map) {
      if (!isPlainObject(value)) {
        errors.push({ path, message: `expected an object (map), got ${typeOf(value)}` });
        return undefined;
      }
      const out: Json = {};
      const keyType = (field as unknown as protobuf.MapField).keyType;
      for (const [k, v] of Object.entries(value)) {
        const key = mapKey(keyType, k);
        if (key === undefined) {
          errors.push({ path: join(path, k), message: `invalid map key for ${keyType}` });
          continue;
        }
        const converted = this.singleFromJson(field, v, join(path, k), errors, depth);
        if (converted !== undefined) Object.defineProperty(out, key, { value: converted, enumerable: true });
      }
      return Object.keys(out).length === 0 ? undefined : out;
    }
    if (field.repeated) {
      if (!Array.isArray(value)) {
        errors.push({ path, message: `expected an array, got ${typeOf(value)}` });
        return undefined;
      }
      const out: unknown[] = [];
      value.forEach((v, i) => {
        const itemPath = `${path}[${i}]`;
        if (v === null && !isValueType(field)) {
          errors.push({ path: itemPath, message: 'null is not allowed in a repeated field' });
          return;
        }
        const converted = this.singleFromJson(field, v, itemPath, errors, depth);
        if (converted !== undefined) out.push(converted);
      });
      return out.length === 0 ? undefined : out;
    }
    const converted = this.singleFromJson(field, value, path, errors, depth);
    // proto3 fields without presence are not written when they hold their default: keep the encoding canonical.
    if (converted !== undefined && !hasPresence(field) && isDefaultScalar(converted)) return undefined;
    return converted;
  }

  private singleFromJson(
    field: protobuf.Field,
    value: unknown,
    path: string,
    errors: ConfigError[],
    depth: number,
  ): unknown {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Type) return this.fromJson(rt, value, path, errors, depth + 1);
    if (rt instanceof protobuf.Enum) return enumFromJson(rt, value, path, errors);
    return scalarFromJson(field.type, value, path, errors);
  }

  /** The JSON forms of the well-known types; undefined when `type` has none or `json` is its plain-object form. */
  private specialFromJson(
    type: protobuf.Type,
    json: unknown,
    path: string,
    errors: ConfigError[],
    depth: number,
  ): Json | undefined {
    const name = type.fullName;
    if (!SPECIAL_JSON.has(name)) return undefined;
    switch (name) {
      case '.google.protobuf.Any':
        return this.anyFromJson(json, path, errors, depth);
      case '.google.protobuf.Duration':
        return typeof json === 'string' ? (durationFromJson(json, path, errors) ?? {}) : undefined;
      case '.google.protobuf.Timestamp':
        return typeof json === 'string' ? (timestampFromJson(json, path, errors) ?? {}) : undefined;
      case '.google.protobuf.Struct':
        return { fields: structFields(this.vn, json, path, errors, depth) };
      case '.google.protobuf.Value':
        return valueFromJson(this.vn, json, path, errors, depth);
      case '.google.protobuf.ListValue':
        if (!Array.isArray(json)) {
          errors.push({ path, message: `expected an array, got ${typeOf(json)}` });
          return {};
        }
        return { values: json.map((v, i) => valueFromJson(this.vn, v, `${path}[${i}]`, errors, depth + 1)) };
      case '.google.protobuf.FieldMask':
        if (typeof json !== 'string') return undefined;
        return {
          paths:
            json === '' ? [] : json.split(',').map((p) => p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)),
        };
      default: {
        // A wrapper: the bare value is its JSON; an object is taken as the message form {value: ...}.
        if (isPlainObject(json)) return undefined;
        const v = scalarFromJson(type.fields.value!.type, json, path, errors);
        return v === undefined || isDefaultScalar(v) ? {} : { value: v };
      }
    }
  }

  private anyFromJson(json: unknown, path: string, errors: ConfigError[], depth: number): Json {
    if (!isPlainObject(json)) {
      errors.push({ path, message: `expected an object (google.protobuf.Any), got ${typeOf(json)}` });
      return {};
    }
    const url = json['@type'];
    if (url === undefined && typeof json.type_url === 'string' && json.value instanceof Uint8Array) {
      return { type_url: json.type_url, value: json.value };
    }
    if (typeof url !== 'string' || url === '') {
      errors.push({ path: join(path, '@type'), message: 'missing required field "@type"' });
      return {};
    }
    const type = this.typeOfUrl(url);
    if (type === undefined || !url.includes('/')) {
      errors.push({ path: join(path, '@type'), message: `unknown type ${JSON.stringify(url)}` });
      return {};
    }
    let inner: Json;
    if (SPECIAL_JSON.has(type.fullName)) {
      for (const k of Object.keys(json)) {
        if (k !== '@type' && k !== 'value')
          errors.push({ path: join(path, k), message: `unknown field ${JSON.stringify(k)}` });
      }
      inner = this.fromJson(type, json.value ?? {}, join(path, 'value'), errors, depth + 1);
    } else {
      const { '@type': _, ...rest } = json;
      inner = this.fromJson(type, rest, path, errors, depth + 1);
    }
    return { type_url: url, value: type.encode(inner).finish() };
  }

  private fieldMap(type: protobuf.Type): Map<string, protobuf.Field> {
    let m = this.fieldsByType.get(type);
    if (m === undefined) {
      m = new Map();
      for (const f of type.fieldsArray) {
        m.set(f.name, f);
        m.set(jsonName(f.name), f);
      }
      this.fieldsByType.set(type, m);
    }
    return m;
  }

  // ------------------------------------------------------------------ message -> JSON

  /**
   * Canonical proto3 JSON of a decoded message, with proto field names (snake_case, as Envoy's YAML examples
   * write them). Fields without presence holding their default are left out. Throws ProtoJsonError when an Any
   * holds a type that is not loaded (with expandAny).
   */
  toJson(type: protobuf.Type, message: object, opts: ToJsonOptions, path = '', depth = 0): unknown {
    if (depth > MAX_DEPTH) throw new ProtoJsonError(path, `nested deeper than ${MAX_DEPTH} levels`);
    const m = message as Record<string, unknown>;
    switch (type.fullName) {
      case '.google.protobuf.Any':
        return this.anyToJson(m, opts, path, depth);
      case '.google.protobuf.Duration':
        return durationToJson(m.seconds, Number(m.nanos ?? 0));
      case '.google.protobuf.Timestamp':
        return timestampToJson(m.seconds, Number(m.nanos ?? 0));
      case '.google.protobuf.Struct':
        return structToJson(this.vn, m);
      case '.google.protobuf.Value':
        return valueToJson(this.vn, m);
      case '.google.protobuf.ListValue':
        return ((m.values as object[] | undefined) ?? []).map((v) => valueToJson(this.vn, v as Json));
      case '.google.protobuf.FieldMask':
        return ((m.paths as string[] | undefined) ?? []).map(jsonName).join(',');
    }
    if (WRAPPERS.has(type.fullName)) {
      const field = type.fields.value!;
      return scalarToJson(field.type, m.value ?? field.typeDefault);
    }
    const out: Json = {};
    for (const field of type.fieldsArray) {
      if (!Object.hasOwn(m, field.name)) continue;
      const value = m[field.name];
      if (value === null || value === undefined) continue;
      const fieldPath = join(path, field.name);
      if (field.map) {
        const obj: Json = {};
        for (const [k, v] of Object.entries(value as Json)) {
          const converted = this.singleToJson(field, v, opts, join(fieldPath, k), depth);
          Object.defineProperty(obj, k, { value: converted, enumerable: true });
        }
        if (Object.keys(obj).length > 0) out[field.name] = obj;
      } else if (field.repeated) {
        const arr = value as unknown[];
        if (arr.length > 0)
          out[field.name] = arr.map((v, i) => this.singleToJson(field, v, opts, `${fieldPath}[${i}]`, depth));
      } else {
        if (!hasPresence(field) && isDefaultDecoded(field, value)) continue;
        out[field.name] = this.singleToJson(field, value, opts, fieldPath, depth);
      }
    }
    return out;
  }

  private singleToJson(
    field: protobuf.Field,
    value: unknown,
    opts: ToJsonOptions,
    path: string,
    depth: number,
  ): unknown {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Type) return this.toJson(rt, value as object, opts, path, depth + 1);
    if (rt instanceof protobuf.Enum) return enumToJson(rt, value as number);
    return scalarToJson(field.type, value);
  }

  private anyToJson(m: Json, opts: ToJsonOptions, path: string, depth: number): unknown {
    const url = (m.type_url as string | undefined) ?? '';
    const bytes = (m.value as Uint8Array | undefined) ?? new Uint8Array(0);
    if (!opts.expandAny) return { type_url: url, value: bytes };
    const type = this.typeOfUrl(url);
    if (type === undefined)
      throw new ProtoJsonError(join(path, '@type'), `unknown type ${JSON.stringify(url)}`);
    let inner: object;
    try {
      inner = type.decode(bytes);
    } catch (err) {
      throw new ProtoJsonError(path, `malformed ${type.fullName.slice(1)}: ${(err as Error).message}`);
    }
    const json = this.toJson(type, inner, opts, path, depth + 1);
    return SPECIAL_JSON.has(type.fullName)
      ? { '@type': url, value: json }
      : { '@type': url, ...(json as Json) };
  }
}
