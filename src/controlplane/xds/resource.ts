// One xDS resource as the server holds it: its name, the packed Any, and a content hash that is its version.

import { createHash } from 'node:crypto';
import type { ValidationResult } from '../../config/result.js';
import { type Any, encodeResource, XDS_TYPE_URLS } from '../../xds/protos.js';

/** The field holding a resource's name; `name` for every type not listed. */
const NAME_FIELDS: Readonly<Record<string, string>> = {
  [XDS_TYPE_URLS.endpoint]: 'cluster_name',
};

/** Short names of the xDS types, for logs, metrics and status. */
export function shortTypeName(typeUrl: string): string {
  switch (typeUrl) {
    case XDS_TYPE_URLS.cluster:
      return 'CDS';
    case XDS_TYPE_URLS.endpoint:
      return 'EDS';
    case XDS_TYPE_URLS.listener:
      return 'LDS';
    case XDS_TYPE_URLS.route:
      return 'RDS';
    case XDS_TYPE_URLS.secret:
      return 'SDS';
    default:
      return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  }
}

/**
 * An immutable resource. The same object may sit in the snapshots of many proxies: it is encoded and hashed
 * once, and what is derived from it (references, for the consistency check) is computed once.
 */
export class XdsResource {
  /** Content hash of the type URL and the encoded bytes: the delta `version`, equal for equal content. */
  readonly version: string;
  /** Memo of `consistency.ts`: names this resource refers to, computed on first need. */
  references: readonly { typeUrl: string; name: string; path: string }[] | undefined;

  constructor(
    readonly typeUrl: string,
    readonly name: string,
    readonly any: Any,
  ) {
    this.version = createHash('sha256')
      .update(typeUrl)
      .update('\0')
      .update(any.value)
      .digest('base64url')
      .slice(0, 16);
  }

  /** Encodes a resource given as Envoy's proto3 JSON; its name is read from the JSON (`cluster_name` for EDS). */
  static fromJson(typeUrl: string, json: Record<string, unknown>): ValidationResult<XdsResource> {
    const nameField = NAME_FIELDS[typeUrl] ?? 'name';
    const name = json[nameField];
    if (typeof name !== 'string' || name === '') {
      return { ok: false, errors: [{ path: nameField, message: 'a resource needs a non-empty name' }] };
    }
    const any = encodeResource(typeUrl, json);
    return any.ok ? { ok: true, value: new XdsResource(typeUrl, name, any.value) } : any;
  }
}
