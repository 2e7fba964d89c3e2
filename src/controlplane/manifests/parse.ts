// Multi-document YAML (or JSON) manifests -> validated mesh objects, and every problem with its file and field path.

import { parseAllDocuments } from 'yaml';
import { Ctx, isPlainObject, quote } from '../../config/reader.js';
import type { ConfigError } from '../../config/result.js';
import type { MeshObject, Origin } from '../model/objects.js';
import { type Metadata, metadataOf } from './common.js';
import { destinationRuleOf } from './destination_rule.js';
import { endpointSliceOf, namespaceOf, serviceOf } from './kubernetes.js';
import { Obj } from './reader.js';
import { authorizationPolicyOf, peerAuthenticationOf } from './security.js';
import { sidecarOf } from './sidecar.js';
import { virtualServiceOf } from './virtual_service.js';
import { serviceEntryOf, workloadEntryOf } from './workloads.js';

/** One problem in a manifest. */
export interface ManifestError {
  readonly file: string | undefined;
  /** Where in the file: `document 2`, or `document 2, items[3]` inside a List. */
  readonly where: string;
  /** `VirtualService default/reviews`, when the object's kind and name could be read. */
  readonly object: string | undefined;
  /** Field path inside the object (`spec.http[0].route[1].weight`); "" for the whole document. */
  readonly path: string;
  readonly message: string;
  /** RA0101 YAML syntax, RA0102 invalid field, RA0103 unknown kind or apiVersion (docs/control-plane.md). */
  readonly code: 'RA0101' | 'RA0102' | 'RA0103';
}

/** `mesh/reviews.yaml: VirtualService default/reviews: spec.http[0].timeout: invalid duration "5"`. */
export function formatManifestError(e: ManifestError): string {
  const parts: string[] = [];
  if (e.file !== undefined) parts.push(e.file);
  parts.push(e.object ?? e.where);
  if (e.path !== '') parts.push(e.path);
  return `${parts.join(': ')}: ${e.message.replace(/[\r\n]+/g, ' ')}`;
}

export interface ParseResult {
  readonly objects: MeshObject[];
  readonly errors: ManifestError[];
}

type KindReader = (top: Obj, md: Metadata, origin: Origin) => MeshObject | undefined;

const ISTIO_VERSIONS = [
  'networking.istio.io/v1',
  'networking.istio.io/v1beta1',
  'networking.istio.io/v1alpha3',
];

const SECURITY_VERSIONS = ['security.istio.io/v1', 'security.istio.io/v1beta1'];

interface KindSpec {
  readonly apiVersions: readonly string[];
  readonly read: KindReader;
  /** Service names are DNS labels (RFC 1035), stricter than other objects' names. */
  readonly dnsLabelName?: boolean;
}

const KINDS: Readonly<Record<string, KindSpec>> = {
  Namespace: { apiVersions: ['v1'], read: namespaceOf, dnsLabelName: true },
  Service: { apiVersions: ['v1'], read: serviceOf, dnsLabelName: true },
  EndpointSlice: { apiVersions: ['discovery.k8s.io/v1'], read: endpointSliceOf },
  WorkloadEntry: { apiVersions: ISTIO_VERSIONS, read: workloadEntryOf },
  ServiceEntry: { apiVersions: ISTIO_VERSIONS, read: serviceEntryOf },
  VirtualService: { apiVersions: ISTIO_VERSIONS, read: virtualServiceOf },
  DestinationRule: { apiVersions: ISTIO_VERSIONS, read: destinationRuleOf },
  Sidecar: { apiVersions: ISTIO_VERSIONS, read: sidecarOf },
  PeerAuthentication: { apiVersions: SECURITY_VERSIONS, read: peerAuthenticationOf },
  AuthorizationPolicy: { apiVersions: SECURITY_VERSIONS, read: authorizationPolicyOf },
};

/** Istio kinds whose features Remora does not have yet: named as such rather than as unknown. */
const ISTIO_NOT_YET = new Set([
  'Gateway',
  'WorkloadGroup',
  'EnvoyFilter',
  'ProxyConfig',
  'RequestAuthentication',
  'Telemetry',
  'WasmPlugin',
]);

export const SUPPORTED_KINDS = Object.keys(KINDS);

const MAX_ALIAS_COUNT = 100;

/** Every object of a YAML/JSON text. Valid objects are returned even when others in the same text are not. */
export function parseManifests(text: string, origin: Origin): ParseResult {
  const objects: MeshObject[] = [];
  const errors: ManifestError[] = [];
  const file = origin.file;
  let docs: ReturnType<typeof parseAllDocuments>;
  try {
    docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    errors.push(syntaxError(file, 'document 1', err instanceof Error ? err.message : String(err)));
    return { objects, errors };
  }
  if (!Array.isArray(docs)) return { objects, errors };
  docs.forEach((doc, i) => {
    const where = `document ${i + 1}`;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = e.linePos?.[0];
        const at = pos === undefined ? '' : ` at line ${pos.line}, column ${pos.col}`;
        const what = (e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
        errors.push(syntaxError(file, where, `YAML syntax error${at}: ${what}`));
      }
      return;
    }
    let raw: unknown;
    try {
      raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      errors.push(
        syntaxError(
          file,
          where,
          `cannot read the document: ${err instanceof Error ? err.message : String(err)}`,
        ),
      );
      return;
    }
    if (raw === null || raw === undefined) return; // an empty document (e.g. a trailing "---")
    readDocument(raw, where, origin, objects, errors);
  });
  return { objects, errors };
}

function syntaxError(file: string | undefined, where: string, message: string): ManifestError {
  return { file, where, object: undefined, path: '', message, code: 'RA0101' };
}

function readDocument(
  raw: unknown,
  where: string,
  origin: Origin,
  objects: MeshObject[],
  errors: ManifestError[],
): void {
  const kind = isPlainObject(raw) ? raw.kind : undefined;
  const isList =
    typeof kind === 'string' && (kind === 'List' || (kind.endsWith('List') && kind.slice(0, -4) in KINDS));
  if (!isList) {
    collect(validateObject(raw, origin), where, origin, objects, errors);
    return;
  }
  const list = raw as Record<string, unknown>;
  const push = (path: string, message: string) =>
    errors.push({ file: origin.file, where, object: undefined, path, message, code: 'RA0102' });
  for (const key of Object.keys(list)) {
    if (!['apiVersion', 'kind', 'metadata', 'items'].includes(key)) push(key, `unknown field ${quote(key)}`);
  }
  if (!Array.isArray(list.items)) {
    push('items', list.items === undefined ? 'missing required field' : 'expected a list');
    return;
  }
  // A typed list (`ServiceList`) may leave apiVersion and kind out of its items.
  const itemKind = kind === 'List' ? undefined : kind.slice(0, -4);
  list.items.forEach((item, j) => {
    let value = item;
    if (itemKind !== undefined && isPlainObject(item) && item.kind === undefined)
      value = { apiVersion: list.apiVersion, kind: itemKind, ...item };
    collect(validateObject(value, origin), `${where}, items[${j}]`, origin, objects, errors);
  });
}

function collect(
  r: ObjectResult,
  where: string,
  origin: Origin,
  objects: MeshObject[],
  errors: ManifestError[],
): void {
  if (r.object !== undefined) objects.push(r.object);
  for (const e of r.errors) {
    const code = e.path === 'kind' || e.path === 'apiVersion' ? 'RA0103' : 'RA0102';
    errors.push({ file: origin.file, where, object: r.describe, path: e.path, message: e.message, code });
  }
}

export interface ObjectResult {
  /** The validated object; undefined when it has any error. */
  readonly object: MeshObject | undefined;
  readonly errors: readonly ConfigError[];
  /** `Kind namespace/name` when those could be read. */
  readonly describe: string | undefined;
}

/** Validates one parsed object (apiVersion, kind, metadata, spec). Any error leaves the object out. */
export function validateObject(raw: unknown, origin: Origin): ObjectResult {
  const ctx = new Ctx();
  const top = Obj.of(ctx, raw, '');
  if (top === undefined) return { object: undefined, errors: ctx.errors(), describe: undefined };
  const apiVersion = top.string('apiVersion', { required: true });
  const kind = top.string('kind', { required: true });
  const describe = describeRaw(raw, kind);
  if (apiVersion === undefined || kind === undefined)
    return { object: undefined, errors: ctx.errors(), describe };
  const spec = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
  if (spec === undefined) {
    const known = SUPPORTED_KINDS.join(', ');
    if (ISTIO_NOT_YET.has(kind) && apiVersion.includes('istio.io/'))
      ctx.error('kind', `${kind} is not supported by Remora yet (supported kinds: ${known})`);
    else
      ctx.error(
        'kind',
        `${quote(kind)} (${apiVersion}) is not a kind Remora reads (supported kinds: ${known})`,
      );
    return { object: undefined, errors: ctx.errors(), describe };
  }
  if (!spec.apiVersions.includes(apiVersion)) {
    ctx.error(
      'apiVersion',
      `${quote(apiVersion)} is not an apiVersion of ${kind} (expected ${spec.apiVersions.join(' or ')})`,
    );
    return { object: undefined, errors: ctx.errors(), describe };
  }
  const md = metadataOf(top, { dnsLabelName: spec.dnsLabelName });
  const object = md === undefined ? undefined : spec.read(top, md, origin);
  top.finish();
  if (ctx.failed || object === undefined) return { object: undefined, errors: ctx.errors(), describe };
  return { object, errors: [], describe };
}

/** `VirtualService default/reviews` from the raw object, before (or despite) validation. */
function describeRaw(raw: unknown, kind: string | undefined): string | undefined {
  if (kind === undefined || !isPlainObject(raw) || !isPlainObject(raw.metadata)) return undefined;
  const name = raw.metadata.name;
  if (typeof name !== 'string' || name === '') return undefined;
  const ns =
    typeof raw.metadata.namespace === 'string' && raw.metadata.namespace !== ''
      ? raw.metadata.namespace
      : 'default';
  return `${kind} ${kind === 'Namespace' ? name : `${ns}/${name}`}`;
}
