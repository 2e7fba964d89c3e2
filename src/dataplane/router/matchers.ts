// Compiled string, header and query-parameter matchers (Envoy's StringMatcher/HeaderMatcher semantics).

import type {
  HeaderMatcherConfig,
  QueryParameterMatcherConfig,
  StringMatcherConfig,
} from '../../config/model.js';

export type StringPredicate = (value: string) => boolean;

/** safe_regex is a full match in Envoy (RE2); we anchor the JavaScript pattern the same way. */
export function compileRegex(source: string, ignoreCase = false): RegExp {
  return new RegExp(`^(?:${source})$`, ignoreCase ? 'is' : 's');
}

export function compileStringMatcher(m: StringMatcherConfig): StringPredicate {
  if (m.kind === 'safe_regex') {
    const re = compileRegex(m.value, m.ignoreCase);
    return (v) => re.test(v);
  }
  const want = m.ignoreCase ? m.value.toLowerCase() : m.value;
  const norm = m.ignoreCase ? (v: string) => v.toLowerCase() : (v: string) => v;
  switch (m.kind) {
    case 'exact':
      return (v) => norm(v) === want;
    case 'prefix':
      return (v) => norm(v).startsWith(want);
    case 'suffix':
      return (v) => norm(v).endsWith(want);
    case 'contains':
      return (v) => norm(v).includes(want);
  }
}

/** Reads a request header the way route matching sees it: several values joined with ",". */
export type HeaderLookup = (name: string) => string | undefined;

export function compileHeaderMatcher(m: HeaderMatcherConfig): (get: HeaderLookup) => boolean {
  const spec = m.spec;
  let test: (value: string | undefined) => boolean;
  if (spec.kind === 'present') {
    test = (v) => (v !== undefined) === spec.present;
  } else if (spec.kind === 'range') {
    test = (v) => {
      if (v === undefined || !/^-?\d+$/.test(v)) return false;
      const n = Number(v);
      return n >= spec.start && n < spec.end;
    };
  } else {
    const pred = compileStringMatcher(spec.matcher);
    test = (v) => {
      if (v === undefined) return m.treatMissingHeaderAsEmpty ? pred('') : false;
      return pred(v);
    };
  }
  const name = m.name;
  const invert = m.invertMatch;
  // Envoy: a missing header fails every matcher but present_match, inverted or not (unless treated as empty).
  const missingFails = spec.kind !== 'present' && !m.treatMissingHeaderAsEmpty;
  return (get) => {
    const v = get(name);
    if (v === undefined && missingFails) return false;
    return test(v) !== invert;
  };
}

export function compileQueryMatcher(m: QueryParameterMatcherConfig): (params: URLSearchParams) => boolean {
  const spec = m.spec;
  if (spec.kind === 'present') return (q) => q.has(m.name) === spec.present;
  const pred = compileStringMatcher(spec.matcher);
  return (q) => {
    const v = q.get(m.name);
    return v !== null && pred(v);
  };
}
