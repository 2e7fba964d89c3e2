// Whether one HTTP match catches every request another would: finds VirtualService routes that can never match.

import type { HeaderMatch, HttpMatch, HttpRoute, StringMatch } from './model/objects.js';

const CATCH_ALL: HttpMatch = {
  name: undefined,
  uri: undefined,
  method: undefined,
  authority: undefined,
  headers: [],
  queryParams: [],
  ignoreUriCase: false,
  port: undefined,
};

function fullMatch(regex: string, text: string): boolean {
  try {
    return new RegExp(`^(?:${regex})$`).test(text);
  } catch {
    return false;
  }
}

/** True when every value `b` accepts, `a` accepts too (conservative: false when unsure). */
function stringCovers(a: StringMatch | undefined, b: StringMatch | undefined, fold = false): boolean {
  if (a === undefined) return true;
  if (b === undefined) return false;
  const av = fold ? a.value.toLowerCase() : a.value;
  const bv = fold ? b.value.toLowerCase() : b.value;
  switch (a.kind) {
    case 'exact':
      return b.kind === 'exact' && av === bv;
    case 'prefix':
      return b.kind !== 'regex' && bv.startsWith(av);
    case 'regex':
      return (
        (b.kind === 'regex' && a.value === b.value) || (b.kind === 'exact' && fullMatch(a.value, b.value))
      );
  }
}

/** Every condition of `a` on a named header (or query parameter) is implied by `b`'s conditions. */
function namedCovers(a: readonly HeaderMatch[], b: readonly HeaderMatch[]): boolean {
  return a.every((ah) => {
    const bh = b.find((x) => x.name === ah.name);
    if (bh === undefined) return false;
    if (ah.match === undefined) return true; // presence: any condition on the header implies it is there
    return stringCovers(ah.match, bh.match);
  });
}

/** True when match `a` accepts every request match `b` accepts. */
export function matchCovers(a: HttpMatch, b: HttpMatch): boolean {
  if (a.port !== undefined && a.port !== b.port) return false;
  if (a.uri !== undefined) {
    // A case-sensitive match does not cover a case-insensitive one ("/FOO" passes b, not a).
    if (b.ignoreUriCase && !a.ignoreUriCase) return false;
    if (!stringCovers(a.uri, b.uri, a.ignoreUriCase)) return false;
  }
  return (
    stringCovers(a.method, b.method) &&
    stringCovers(a.authority, b.authority) &&
    namedCovers(a.headers, b.headers) &&
    namedCovers(a.queryParams, b.queryParams)
  );
}

/** A route's matches; a route without any matches every request. */
function matchesOf(r: HttpRoute): readonly HttpMatch[] {
  return r.match.length === 0 ? [CATCH_ALL] : r.match;
}

export interface Unreachable {
  /** Index of the route that can never match. */
  readonly index: number;
  /** Indexes of the earlier routes that catch its requests. */
  readonly shadowedBy: readonly number[];
}

/** Routes every one of whose matches is caught by a match of an earlier route (first match wins). */
export function unreachableRoutes(routes: readonly HttpRoute[]): Unreachable[] {
  const out: Unreachable[] = [];
  routes.forEach((r, i) => {
    const by = new Set<number>();
    const all = matchesOf(r).every((m) => {
      for (let k = 0; k < i; k++) {
        if (matchesOf(routes[k]!).some((em) => matchCovers(em, m))) {
          by.add(k);
          return true;
        }
      }
      return false;
    });
    if (all) out.push({ index: i, shadowedBy: [...by].sort((a, b) => a - b) });
  });
  return out;
}
