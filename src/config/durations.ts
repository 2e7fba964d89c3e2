// google.protobuf.Duration in proto3 JSON ("5s", "0.250s") or as {seconds, nanos}, converted to milliseconds.

import { Fields, typeOf } from './reader.js';

/** The largest Duration protobuf allows: 10,000 years. */
const MAX_SECONDS = 315_576_000_000;

export type DurationResult =
  | { readonly ok: true; readonly ms: number }
  | { readonly ok: false; readonly message: string };

/**
 * Parses the proto3 JSON string form: seconds with up to 9 fractional digits and an "s" suffix. Negative
 * durations are refused (no Envoy timeout accepts one). The result is rounded to whole milliseconds, and a
 * positive duration never rounds down to 0 (which would mean "disabled").
 */
export function parseDuration(text: string): DurationResult {
  const m = /^([0-9]{1,12})(?:\.([0-9]{1,9}))?s$/.exec(text);
  if (m === null) {
    if (/^-/.test(text))
      return { ok: false, message: `invalid duration ${JSON.stringify(text)}: must not be negative` };
    const unit = /^[0-9.]+(ms|us|ns|m|h|d)$/.exec(text);
    const hint = unit
      ? ': the unit must be seconds with an "s" suffix, e.g. "0.100s" for 100ms'
      : ': expected seconds with an "s" suffix, e.g. "5s" or "0.250s"';
    return { ok: false, message: `invalid duration ${JSON.stringify(text.slice(0, 40))}${hint}` };
  }
  const seconds = Number(m[1]);
  const nanos = m[2] === undefined ? 0 : Number(m[2].padEnd(9, '0'));
  return fromParts(seconds, nanos);
}

function fromParts(seconds: number, nanos: number): DurationResult {
  if (seconds > MAX_SECONDS) return { ok: false, message: `duration too long (max ${MAX_SECONDS}s)` };
  const exact = seconds * 1000 + nanos / 1e6;
  const ms = Math.round(exact);
  return { ok: true, ms: ms === 0 && exact > 0 ? 1 : ms };
}

export interface DurationOptions {
  /** The field must be greater than zero (Envoy's `gt: {}`). */
  readonly positive?: boolean;
  readonly required?: boolean;
}

/** Reads a Duration field of `f` in milliseconds; undefined when absent or invalid (with an error). */
export function durationField(f: Fields, name: string, opts: DurationOptions = {}): number | undefined {
  const v = f.take(name);
  if (v === undefined) {
    if (opts.required) f.error(name, 'missing required field');
    return undefined;
  }
  const path = f.pathOf(name);
  let result: DurationResult;
  if (typeof v === 'string') {
    result = parseDuration(v);
  } else if (typeof v === 'object' && !Array.isArray(v)) {
    const parts = durationObject(f, v, path);
    if (parts === undefined) return undefined;
    result = parts;
  } else {
    f.error(name, `expected a duration such as "5s" or {seconds, nanos}, got ${typeOf(v)}`);
    return undefined;
  }
  if (!result.ok) {
    f.ctx.error(path, result.message);
    return undefined;
  }
  if (opts.positive && result.ms === 0) {
    f.ctx.error(path, 'must be greater than 0s');
    return undefined;
  }
  return result.ms;
}

function durationObject(parent: Fields, raw: unknown, path: string): DurationResult | undefined {
  const f = Fields.of(parent.ctx, raw, path);
  if (f === undefined) return undefined;
  const seconds = f.int('seconds', { min: 0, max: MAX_SECONDS });
  const nanos = f.int('nanos', { min: 0, max: 999_999_999 });
  f.finish();
  const bad = (f.has('seconds') && seconds === undefined) || (f.has('nanos') && nanos === undefined);
  return bad ? undefined : fromParts(seconds ?? 0, nanos ?? 0);
}
