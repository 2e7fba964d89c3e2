// Generated JSON -> encoded xDS resources (google.protobuf.Any), each distinct resource encoded once: proxies of
// many groups, and successive rebuilds, share the resources that did not change.

import type { ConfigError, ValidationResult } from '../../config/result.js';
import { XDS_TYPE_URLS } from '../../xds/protos.js';
import { XdsResource } from '../xds/resource.js';
import type { GeneratedConfig } from './generate.js';
import type { Json } from './names.js';

/**
 * A memo of encoded resources by type and content. `nextRound()` forgets what was not used since the previous
 * call, so the memo holds at most two generations and needs no other eviction.
 */
export class ResourceEncoder {
  private current = new Map<string, XdsResource>();
  private previous = new Map<string, XdsResource>();

  /** Frozen inputs (assignments, shared across groups) by identity: their content cannot have changed. */
  private readonly frozen = new WeakMap<Json, { typeUrl: string; key: string; resource: XdsResource }>();

  encode(typeUrl: string, json: Json): ValidationResult<XdsResource> {
    const same = this.frozen.get(json);
    if (same !== undefined && same.typeUrl === typeUrl) {
      this.current.set(same.key, same.resource);
      return { ok: true, value: same.resource };
    }
    const key = `${typeUrl}\0${JSON.stringify(json)}`;
    let resource = this.current.get(key) ?? this.previous.get(key);
    if (resource === undefined) {
      const r = XdsResource.fromJson(typeUrl, json);
      if (!r.ok) return r;
      resource = r.value;
    }
    this.current.set(key, resource);
    if (Object.isFrozen(json)) this.frozen.set(json, { typeUrl, key, resource });
    return { ok: true, value: resource };
  }

  nextRound(): void {
    this.previous = this.current;
    this.current = new Map();
  }

  /** Resources held (for tests and metrics). */
  get size(): number {
    return new Set([...this.current.values(), ...this.previous.values()]).size;
  }
}

const PARTS = [
  ['listeners', XDS_TYPE_URLS.listener],
  ['routes', XDS_TYPE_URLS.route],
  ['clusters', XDS_TYPE_URLS.cluster],
  ['endpoints', XDS_TYPE_URLS.endpoint],
] as const;

/**
 * Encodes a generated configuration (or some of its parts). An error is a generator bug (it emitted a field the
 * protos do not have): every one is returned, with `<part>[<name>].<path>`.
 */
export function encodeConfig(
  config: Partial<GeneratedConfig>,
  encoder: ResourceEncoder = new ResourceEncoder(),
): ValidationResult<XdsResource[]> {
  const out: XdsResource[] = [];
  const errors: ConfigError[] = [];
  for (const [part, typeUrl] of PARTS) {
    for (const json of config[part] ?? []) {
      const r = encoder.encode(typeUrl, json);
      if (r.ok) out.push(r.value);
      else {
        const name = JSON.stringify(json.name ?? json.cluster_name);
        for (const e of r.errors)
          errors.push({ path: `${part}[${name}]${e.path === '' ? '' : `.${e.path}`}`, message: e.message });
      }
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: out };
}
