// Matchers: RegexMatcher (safe_regex), StringMatcher, HeaderMatcher and QueryParameterMatcher.

import { isHeaderName } from './headers.js';
import type {
  HeaderMatcherConfig,
  HeaderMatchSpec,
  QueryParameterMatcherConfig,
  StringMatcherConfig,
} from './model.js';
import { type Ctx, Fields, quote } from './reader.js';

/** Pseudo-headers a route may match on. */
const MATCHABLE_PSEUDO_HEADERS = new Set([':authority', ':method', ':path', ':scheme']);

/** Checks that a regex compiles as a JavaScript RegExp; records the engine's message when it does not. */
export function checkRegex(ctx: Ctx, source: string, path: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch (err) {
    ctx.error(path, `invalid regex ${quote(source)}: ${err instanceof Error ? err.message : String(err)}`);
    return false;
  }
}

/** A RegexMatcher (`{google_re2: {}, regex: "..."}`): the regex source as written, or undefined. */
export function regexMatcher(ctx: Ctx, raw: unknown, path: string): string | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const re2 = f.object('google_re2');
  if (re2 !== undefined) {
    re2.unsupported(['max_program_size']);
    re2.finish();
  }
  const regex = f.string('regex', { required: true });
  f.finish();
  if (regex === undefined) return undefined;
  return checkRegex(ctx, regex, f.pathOf('regex')) ? regex : undefined;
}

const STRING_KINDS = ['exact', 'prefix', 'suffix', 'contains', 'safe_regex'] as const;

/** A StringMatcher: exactly one of exact, prefix, suffix, contains, safe_regex; plus ignore_case. */
export function stringMatcher(ctx: Ctx, raw: unknown, path: string): StringMatcherConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const kind = f.oneOf([...STRING_KINDS, 'custom'], { required: true });
  const ignoreCase = f.bool('ignore_case') ?? false;
  let value: string | undefined;
  if (kind === 'safe_regex') value = regexMatcher(ctx, f.take('safe_regex'), f.pathOf('safe_regex'));
  for (const k of STRING_KINDS) {
    if (k === 'safe_regex') continue;
    // Envoy requires a non-empty prefix, suffix and contains; exact may be "".
    const v = f.string(k, { nonEmpty: k !== 'exact' });
    if (k === kind) value = v;
  }
  f.unsupported(['custom']);
  f.finish();
  if (kind === undefined || kind === 'custom' || value === undefined) return undefined;
  return { kind: kind as StringMatcherConfig['kind'], value, ignoreCase };
}

/** A header name a matcher may look at, lower-cased. */
function matchedHeaderName(f: Fields): string | undefined {
  const name = f.string('name', { required: true });
  if (name === undefined) return undefined;
  const lower = name.toLowerCase();
  if (lower.startsWith(':') ? !MATCHABLE_PSEUDO_HEADERS.has(lower) : !isHeaderName(lower)) {
    f.error('name', `invalid header name ${quote(name)}`);
    return undefined;
  }
  return lower;
}

const HEADER_SPECIFIERS = [
  'exact_match',
  'safe_regex_match',
  'range_match',
  'present_match',
  'prefix_match',
  'suffix_match',
  'contains_match',
  'string_match',
] as const;

/** The deprecated one-field forms of a string match (`exact_match: "x"`). */
const LEGACY_STRING: Readonly<Record<string, StringMatcherConfig['kind']>> = {
  exact_match: 'exact',
  prefix_match: 'prefix',
  suffix_match: 'suffix',
  contains_match: 'contains',
};

export function headerMatcher(ctx: Ctx, raw: unknown, path: string): HeaderMatcherConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const name = matchedHeaderName(f);
  const none = HEADER_SPECIFIERS.every((k) => !f.has(k));
  const which = f.oneOf(HEADER_SPECIFIERS);
  // No specifier at all: the header must be present.
  const spec: HeaderMatchSpec | undefined = none
    ? { kind: 'present', present: true }
    : headerMatchSpec(f, which);
  // Fields of the oneof that were not chosen were either unset or already reported by oneOf.
  for (const k of HEADER_SPECIFIERS) f.take(k);
  const invertMatch = f.bool('invert_match') ?? false;
  const treatMissingHeaderAsEmpty = f.bool('treat_missing_header_as_empty') ?? false;
  f.finish();
  if (name === undefined || spec === undefined) return undefined;
  return { name, spec, invertMatch, treatMissingHeaderAsEmpty };
}

function headerMatchSpec(f: Fields, which: string | undefined): HeaderMatchSpec | undefined {
  if (which === undefined) return undefined;
  const legacy = LEGACY_STRING[which];
  if (legacy !== undefined) {
    const value = f.string(which, { nonEmpty: legacy !== 'exact' });
    return value === undefined
      ? undefined
      : { kind: 'string', matcher: { kind: legacy, value, ignoreCase: false } };
  }
  switch (which) {
    case 'safe_regex_match': {
      const value = regexMatcher(f.ctx, f.take(which), f.pathOf(which));
      return value === undefined
        ? undefined
        : { kind: 'string', matcher: { kind: 'safe_regex', value, ignoreCase: false } };
    }
    case 'present_match': {
      const present = f.bool(which);
      return present === undefined ? undefined : { kind: 'present', present };
    }
    case 'range_match':
      return rangeMatch(f.object(which));
    default: {
      const matcher = stringMatcher(f.ctx, f.take(which), f.pathOf(which));
      return matcher === undefined ? undefined : { kind: 'string', matcher };
    }
  }
}

const INT64 = { min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER };

/** Int64Range: [start, end). */
function rangeMatch(f: Fields | undefined): HeaderMatchSpec | undefined {
  if (f === undefined) return undefined;
  const start = f.int('start', INT64);
  const end = f.int('end', INT64);
  f.finish();
  if ((f.has('start') && start === undefined) || (f.has('end') && end === undefined)) return undefined;
  if ((start ?? 0) >= (end ?? 0)) {
    f.ctx.error(f.path, `empty range: start (${start ?? 0}) must be less than end (${end ?? 0})`);
    return undefined;
  }
  return { kind: 'range', start: start ?? 0, end: end ?? 0 };
}

export function queryParameterMatcher(
  ctx: Ctx,
  raw: unknown,
  path: string,
): QueryParameterMatcherConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const name = f.string('name', { required: true });
  if (name !== undefined && name.length > 1024) f.error('name', 'longer than 1024 bytes');
  const none = !f.has('string_match') && !f.has('present_match');
  const which = f.oneOf(['string_match', 'present_match']);
  let spec: QueryParameterMatcherConfig['spec'] | undefined;
  const present = f.bool('present_match');
  const sm = f.take('string_match');
  if (which === 'string_match') {
    const matcher = stringMatcher(ctx, sm, f.pathOf('string_match'));
    if (matcher !== undefined) spec = { kind: 'string', matcher };
  } else if (which === 'present_match') {
    if (present !== undefined) spec = { kind: 'present', present };
  } else if (none) {
    // Neither set: the parameter must be present.
    spec = { kind: 'present', present: true };
  }
  f.finish();
  if (name === undefined || spec === undefined) return undefined;
  return { name, spec };
}
