// Subject alternative names of a peer certificate, matched as Envoy matches match_typed_subject_alt_names.

import type { SanMatcherConfig, SanType } from '../../config/model.js';
import { compileStringMatcher } from '../router/matchers.js';

export interface SubjectAltName {
  readonly type: SanType;
  readonly value: string;
}

/** Node's spelling of each SAN kind in `subjectaltname`; other kinds (DirName, othername ...) are not matched. */
const PREFIXES: readonly (readonly [string, SanType])[] = [
  ['DNS:', 'DNS'],
  ['URI:', 'URI'],
  ['IP Address:', 'IP_ADDRESS'],
  ['email:', 'EMAIL'],
];

/** A JSON string literal at the start of the text: how Node quotes a SAN value with special characters. */
const JSON_STRING = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/;

/**
 * The SANs of Node's `subjectaltname` text ("DNS:a, IP Address:10.0.0.1, URI:spiffe://x"). Entries are separated
 * by ", "; a value holding a comma or a quote is a JSON string. Text that cannot be split yields no names at all,
 * so a malformed certificate never matches.
 */
export function parseSubjectAltNames(text: string | undefined): SubjectAltName[] {
  if (!text) return [];
  const entries: string[] = [];
  let current = '';
  let at = 0;
  while (at < text.length) {
    const sep = text.indexOf(', ', at);
    const quote = text.indexOf('"', at);
    if (quote !== -1 && (sep === -1 || quote < sep)) {
      current += text.slice(at, quote);
      const m = JSON_STRING.exec(text.slice(quote));
      if (m === null) return [];
      current += JSON.parse(m[0]) as string;
      at = quote + m[0].length;
    } else if (sep !== -1) {
      entries.push(current + text.slice(at, sep));
      current = '';
      at = sep + 2;
    } else {
      current += text.slice(at);
      at = text.length;
    }
  }
  entries.push(current);
  const out: SubjectAltName[] = [];
  for (const e of entries) {
    for (const [prefix, type] of PREFIXES) {
      if (!e.startsWith(prefix)) continue;
      const value = e.slice(prefix.length);
      out.push({ type, value: type === 'IP_ADDRESS' ? canonicalIp(value) : value });
      break;
    }
  }
  return out;
}

/** IPv6 in its short lower-case form (`::1`), as Envoy prints an IP SAN; Node prints all eight groups. */
function canonicalIp(value: string): string {
  if (!value.includes(':')) return value;
  try {
    return new URL(`http://[${value}]/`).hostname.slice(1, -1);
  } catch {
    return value.toLowerCase();
  }
}

/**
 * Envoy's DNS matching of an exact name against a certificate's DNS SAN `pattern`: equal ignoring case, or the
 * pattern's first label holds one `*` (not in an A-label) that stands for part of the name's first label, and
 * the rest is equal: `*.example.com` and `api*.example.com` match `api.example.com`; `*.com` never matches a
 * name with two more labels.
 */
export function dnsNameMatch(name: string, pattern: string): boolean {
  const n = name.toLowerCase();
  const p = pattern.toLowerCase();
  if (n === p) return true;
  const pDot = p.indexOf('.');
  const nDot = n.indexOf('.');
  if (pDot < 0 || nDot < 0) return false;
  const pLabel = p.slice(0, pDot);
  const nLabel = n.slice(0, nDot);
  if (!pLabel.includes('*') || p.slice(pDot + 1).includes('*') || pLabel.startsWith('xn--')) return false;
  if (n.slice(nDot + 1) !== p.slice(pDot + 1)) return false;
  return labelWildcardMatch(nLabel, pLabel);
}

function labelWildcardMatch(label: string, pattern: string): boolean {
  if (pattern === '*') return true;
  const star = pattern.indexOf('*');
  if (pattern.indexOf('*', star + 1) !== -1) return false;
  const before = pattern.slice(0, star);
  const after = pattern.slice(star + 1);
  return pattern.length <= label.length + 1 && label.startsWith(before) && label.endsWith(after);
}

/** True when any matcher matches any SAN of its type. */
export type SanPredicate = (sans: readonly SubjectAltName[]) => boolean;

export function compileSanMatchers(matchers: readonly SanMatcherConfig[]): SanPredicate {
  const tests = matchers.map((m): ((san: SubjectAltName) => boolean) => {
    const type = m.sanType;
    // An exact DNS matcher follows DNS rules: the certificate's name may be a wildcard.
    if (type === 'DNS' && m.matcher.kind === 'exact') {
      const want = m.matcher.value;
      return (san) => san.type === type && dnsNameMatch(want, san.value);
    }
    const pred = compileStringMatcher(m.matcher);
    return (san) => san.type === type && pred(san.value);
  });
  return (sans) => tests.some((t) => sans.some(t));
}

/** For messages: `URI prefix "spiffe://x/"`. */
export function describeSanMatcher(m: SanMatcherConfig): string {
  const ic = m.matcher.ignoreCase ? ' (ignore case)' : '';
  return `${m.sanType} ${m.matcher.kind} ${JSON.stringify(m.matcher.value)}${ic}`;
}

/** For messages: `DNS:localhost`. */
export function formatSan(san: SubjectAltName): string {
  return `${san.type}:${san.value}`;
}

/** Why a certificate's SANs fail the matchers, or undefined when they pass. */
export function sanMismatch(
  matchers: readonly SanMatcherConfig[],
  match: SanPredicate,
  subjectAltName: string | undefined,
): string | undefined {
  const sans = parseSubjectAltNames(subjectAltName);
  if (match(sans)) return undefined;
  const expected = matchers.map(describeSanMatcher).join(', ');
  return `SAN mismatch: expected one of [${expected}], got [${sans.map(formatSan).join(', ')}]`;
}
