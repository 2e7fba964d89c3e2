// Content digests of model values: equal content gives an equal digest, whatever the key order or object identity.

import { createHash } from 'node:crypto';

/** JSON with object keys sorted; `undefined` members dropped (as JSON does); keys in `skip` left out at any depth. */
export function canonicalJson(value: unknown, skip: ReadonlySet<string> = new Set()): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, skip)).join(',')}]`;
  const keys = Object.keys(value)
    .filter((k) => !skip.has(k) && (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k], skip)}`).join(',')}}`;
}

/** A short digest (16 hex digits of SHA-256) of the canonical JSON of `value`. */
export function digest(value: unknown, skip?: ReadonlySet<string>): string {
  return createHash('sha256').update(canonicalJson(value, skip)).digest('hex').slice(0, 16);
}

/** Freezes a value and everything reachable from it, so a snapshot cannot be changed by the code that reads it. */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  if (value instanceof Map) {
    for (const v of value.values()) deepFreeze(v);
  } else {
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return Object.freeze(value);
}
