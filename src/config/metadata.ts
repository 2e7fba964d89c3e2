// core.v3.Metadata of endpoints and localities: filter_metadata, a free-form Struct per filter name.

import type { FilterMetadata } from './model.js';
import { type Fields, fieldPath, isPlainObject, jsonObject, typeOf } from './reader.js';

/**
 * The `metadata` field of `f`: its filter_metadata, each Struct copied as plain JSON with its keys as written.
 * Undefined when absent (or invalid, with the errors recorded). typed_filter_metadata holds Anys that no part of
 * Remora reads, so only an empty one is accepted.
 */
export function filterMetadataField(f: Fields): FilterMetadata | undefined {
  const md = f.object('metadata');
  if (md === undefined) return undefined;
  const fm = md.take('filter_metadata');
  const typed = md.take('typed_filter_metadata');
  if (typed !== undefined && !(isPlainObject(typed) && Object.keys(typed).length === 0)) {
    md.error('typed_filter_metadata', 'field not supported by Remora (filter_metadata is)');
  }
  md.finish();
  if (fm === undefined) return undefined;
  const path = md.pathOf('filter_metadata');
  if (!isPlainObject(fm)) {
    f.ctx.error(path, `expected an object (a map of filter name to Struct), got ${typeOf(fm)}`);
    return undefined;
  }
  const out: Record<string, Readonly<Record<string, unknown>>> = {};
  for (const [key, value] of Object.entries(fm)) {
    const at = fieldPath(path, key);
    if (!isPlainObject(value)) {
      f.ctx.error(at, `expected an object (a Struct), got ${typeOf(value)}`);
      continue;
    }
    // defineProperty: a filter named "__proto__" stays a plain key.
    Object.defineProperty(out, key, {
      value: jsonObject(f.ctx, value, at),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
