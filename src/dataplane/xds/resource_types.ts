// The xDS resource types the sidecar takes: how each is named, decoded and validated into the config model.

import {
  translateCluster,
  translateClusterLoadAssignment,
  translateListener,
  translateRouteConfiguration,
  translateSecret,
} from '../../config/bootstrap.js';
import type { ConfigError, ValidationResult } from '../../config/result.js';
import { type Any, decodeAny, XDS_TYPE_URLS } from '../../xds/protos.js';
import { readSecret, type TlsSecret } from '../tls/secret.js';

export interface XdsResourceType {
  readonly typeUrl: string;
  /** CDS, EDS, LDS, RDS, SDS. */
  readonly short: string;
  /** LDS and CDS: subscribed as a wildcard, and each state-of-the-world response is the full set. */
  readonly fullState: boolean;
  /** The field holding the resource's name. */
  readonly nameField: string;
  /** Validates a resource (canonical JSON) into the config model, every error with its path under `path`. */
  translate(json: Record<string, unknown>, path: string): ValidationResult<unknown>;
}

export const CDS: XdsResourceType = {
  typeUrl: XDS_TYPE_URLS.cluster,
  short: 'CDS',
  fullState: true,
  nameField: 'name',
  translate: translateCluster,
};

export const EDS: XdsResourceType = {
  typeUrl: XDS_TYPE_URLS.endpoint,
  short: 'EDS',
  fullState: false,
  nameField: 'cluster_name',
  translate: translateClusterLoadAssignment,
};

export const LDS: XdsResourceType = {
  typeUrl: XDS_TYPE_URLS.listener,
  short: 'LDS',
  fullState: true,
  nameField: 'name',
  translate: translateListener,
};

export const RDS: XdsResourceType = {
  typeUrl: XDS_TYPE_URLS.route,
  short: 'RDS',
  fullState: false,
  nameField: 'name',
  translate: translateRouteConfiguration,
};

/**
 * Secrets, subscribed by the names the TLS contexts of listeners and clusters take. A secret is checked on its own
 * here — PEM that parses, a key that belongs to its certificate, files that can be read — into a TlsSecret.
 */
export const SDS: XdsResourceType = {
  typeUrl: XDS_TYPE_URLS.secret,
  short: 'SDS',
  fullState: false,
  nameField: 'name',
  translate: (json, path): ValidationResult<TlsSecret> => {
    const config = translateSecret(json, path);
    return config.ok ? readSecret(config.value) : config;
  },
};

/**
 * In the order that drops no traffic: a cluster's endpoints before the listeners and routes that use it. Secrets
 * last: listeners and clusters subscribe to the ones they take (a disk cache is loaded in this order too).
 */
export const RESOURCE_TYPES: readonly XdsResourceType[] = [CDS, EDS, LDS, RDS, SDS];

export function resourceType(typeUrl: string): XdsResourceType | undefined {
  return RESOURCE_TYPES.find((t) => t.typeUrl === typeUrl);
}

/** One resource decoded from its Any: its name, canonical JSON (for /config_dump) and the validated config. */
export interface DecodedResource {
  readonly name: string;
  readonly json: Record<string, unknown>;
  readonly value: unknown;
}

/**
 * Decodes and validates one Any of a response. `where` names it in error paths (`LDS["web"]`, `LDS[2]` while the
 * name is unknown). Undefined name: the resource could not even be named.
 */
export function decodeResource(
  type: XdsResourceType,
  any: Any,
  index: number,
): { ok: true; value: DecodedResource } | { ok: false; name: string | undefined; errors: ConfigError[] } {
  const at = `${type.short}[${index}]`;
  if (any.type_url !== type.typeUrl) {
    const message = `expected a resource of type ${type.typeUrl}, got ${JSON.stringify(any.type_url)}`;
    return { ok: false, name: undefined, errors: [{ path: at, message }] };
  }
  const decoded = decodeAny(any);
  if (!decoded.ok) return { ok: false, name: undefined, errors: prefix(decoded.errors, at) };
  const json = decoded.value;
  const name = json[type.nameField];
  if (typeof name !== 'string' || name === '') {
    return {
      ok: false,
      name: undefined,
      errors: [{ path: `${at}.${type.nameField}`, message: 'a resource needs a non-empty name' }],
    };
  }
  const where = `${type.short}[${JSON.stringify(name)}]`;
  const value = type.translate(json, where);
  if (!value.ok) return { ok: false, name, errors: value.errors };
  return { ok: true, value: { name, json, value: value.value } };
}

function prefix(errors: readonly ConfigError[], at: string): ConfigError[] {
  return errors.map((e) => ({ path: e.path === '' ? at : `${at}.${e.path}`, message: e.message }));
}
