// Pieces every manifest kind shares: metadata, durations in Istio's form ("1.5s", "250ms", "1h"), exportTo.

import { isIP } from 'node:net';
import { quote } from '../../config/reader.js';
import { isDnsLabel, isDnsSubdomain } from '../model/hosts.js';
import type { ObjectMeta } from '../model/objects.js';
import { type Item, keyPath, Obj } from './reader.js';

export const DEFAULT_NAMESPACE = 'default';

/** Metadata a server writes: accepted (so `kubectl get -o yaml` output loads) and not used. */
const SERVER_METADATA = [
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'managedFields',
  'ownerReferences',
  'finalizers',
  'selfLink',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
];

export interface Metadata {
  readonly meta: ObjectMeta;
  readonly annotations: Readonly<Record<string, string>>;
}

/** Label keys: an optional DNS-subdomain prefix and `/`, then a name of up to 63 characters. */
function checkLabelKey(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && !isDnsSubdomain(prefix))
    return `label key prefix ${quote(prefix)} must be a DNS subdomain`;
  if (name.length === 0 || name.length > 63 || !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name))
    return `label key ${quote(key)} is not a valid label name (up to 63 letters, digits, "-", "_", ".")`;
  return undefined;
}

/** A map of labels (metadata.labels, a selector, a WorkloadEntry's labels), keys and values checked. */
export function labelsOf(o: Obj, name: string): Record<string, string> | undefined {
  const map = o.stringMap(name);
  if (map === undefined) return undefined;
  for (const [k, v] of Object.entries(map)) {
    const path = keyPath(o.pathOf(name), k);
    const bad = checkLabelKey(k);
    if (bad !== undefined) o.ctx.error(path, bad);
    else if (v.length > 63 || (v !== '' && !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(v)))
      o.ctx.error(path, `label value ${quote(v)} is not valid (up to 63 letters, digits, "-", "_", ".")`);
  }
  return map;
}

/** `metadata`: name (required), namespace (default "default"), labels, annotations; server-written fields ignored. */
export function metadataOf(top: Obj, opts: { dnsLabelName?: boolean } = {}): Metadata | undefined {
  const m = top.object('metadata', { required: true });
  if (m === undefined) return undefined;
  const name = m.string('name', { required: true });
  if (name !== undefined) {
    const ok = opts.dnsLabelName ? isDnsLabel(name) : isDnsSubdomain(name);
    if (!ok)
      m.error(
        'name',
        `${quote(name)} is not a valid name (lower-case letters, digits and "-"${opts.dnsLabelName ? ', at most 63' : ' and "."'})`,
      );
  }
  const namespace = m.string('namespace', { nonEmpty: true }) ?? DEFAULT_NAMESPACE;
  if (!isDnsLabel(namespace)) m.error('namespace', `${quote(namespace)} is not a valid namespace name`);
  const labels = labelsOf(m, 'labels') ?? {};
  const annotations = m.stringMap('annotations') ?? {};
  m.ignore(SERVER_METADATA);
  // Beside a name (as in objects read from an API server) generateName is a record of how it was made.
  if (name !== undefined) m.ignore(['generateName']);
  else m.notYet(['generateName'], { generateName: 'a generated name' });
  m.finish();
  if (name === undefined) return undefined;
  return { meta: { name, namespace, labels }, annotations };
}

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * A duration as Istio accepts it: Go's form (`250ms`, `1m30s`, `1.5s`), which includes protobuf's JSON form
 * (`0.250s`). Returned in milliseconds; a positive duration never rounds down to 0.
 */
export function parseDuration(text: string): { ok: true; ms: number } | { ok: false; message: string } {
  const part = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let i = 0;
  while (i < text.length) {
    part.lastIndex = i;
    const m = part.exec(text);
    if (m === null) break;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    i = part.lastIndex;
  }
  if (text === '0') return { ok: true, ms: 0 };
  if (text.length === 0 || i !== text.length || !Number.isFinite(total)) {
    const hint = text.startsWith('-') ? ': must not be negative' : ' (expected e.g. "250ms", "5s", "1m30s")';
    return { ok: false, message: `invalid duration ${quote(text.slice(0, 40))}${hint}` };
  }
  const ms = Math.round(total);
  return { ok: true, ms: ms === 0 && total > 0 ? 1 : ms };
}

/** A duration field in milliseconds; `min` in milliseconds (Istio requires at least 1ms for its timeouts). */
export function durationField(o: Obj, name: string, opts: { min?: number } = {}): number | undefined {
  const v = o.take(name);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') {
    o.error(name, `expected a duration such as "5s", got ${typeof v}`);
    return undefined;
  }
  const r = parseDuration(v);
  if (!r.ok) {
    o.error(name, r.message);
    return undefined;
  }
  if (opts.min !== undefined && r.ms < opts.min) {
    o.error(name, `must be at least ${opts.min}ms, got ${quote(v)}`);
    return undefined;
  }
  return r.ms;
}

/** `exportTo` of a VirtualService, DestinationRule or ServiceEntry: `.`, `*` or namespace names. */
export function exportToOf(o: Obj): string[] | undefined {
  if (!o.has('exportTo')) {
    o.take('exportTo');
    return undefined;
  }
  const out: string[] = [];
  for (const item of o.strings('exportTo')) {
    const v = item.value as string;
    if (v === '.' || v === '*' || isDnsLabel(v)) out.push(v);
    else o.ctx.error(item.path, `${quote(v)} is not ".", "*" or a namespace name`);
  }
  return out;
}

/**
 * The objects of a list field (`items` from `list()`), each read by `read`; an item with the name of an earlier one
 * is reported at its `name` (`duplicate port name "http"`). Items that do not read are left out.
 */
export function uniquelyNamed<T extends { readonly name: string }>(
  parent: Obj,
  items: readonly Item[],
  what: string,
  read: (o: Obj) => T | undefined,
): T[] {
  const out: T[] = [];
  const names = new Set<string>();
  for (const item of items) {
    const o = Obj.of(parent.ctx, item.value, item.path);
    const v = o && read(o);
    if (v === undefined) continue;
    if (names.has(v.name)) parent.ctx.error(`${item.path}.name`, `duplicate ${what} name ${quote(v.name)}`);
    names.add(v.name);
    out.push(v);
  }
  return out;
}

export function checkIp(o: Obj, path: string, value: string, family?: 4 | 6): boolean {
  const f = isIP(value);
  if (f === 0 || (family !== undefined && f !== family)) {
    o.ctx.error(path, `${quote(value)} is not an IPv${family ?? '4 or IPv6'} address`);
    return false;
  }
  return true;
}
