// Secrets: static_resources.secrets and SDS Secret resources validated, and the secrets TLS contexts name, checked.

import type {
  ClusterConfig,
  CommonTlsContextConfig,
  ListenerConfig,
  SdsSecretRefConfig,
  SecretConfig,
} from './model.js';
import { Ctx, Fields, isPlainObject, quote } from './reader.js';
import type { ValidationResult } from './result.js';
import { tlsCertificate, validationContextOf } from './tls.js';

/** What a TLS context takes from a secret it names. */
export type SecretUse = 'tls_certificate' | 'validation_context';

export interface SecretRef {
  readonly ref: SdsSecretRefConfig;
  readonly use: SecretUse;
}

/**
 * One Secret: its name and exactly one kind. `tls_certificate` and `validation_context` are what TLS contexts take;
 * session ticket keys and generic secrets have no user in Remora yet.
 */
export function secret(ctx: Ctx, raw: unknown, path: string): SecretConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const name = f.string('name', { required: true });
  const kinds = ['tls_certificate', 'validation_context', 'session_ticket_keys', 'generic_secret'];
  const which = f.oneOf(kinds, { required: true });
  const tc = f.take('tls_certificate');
  const tlsCert = tc === undefined ? undefined : tlsCertificate(f, tc, f.pathOf('tls_certificate'));
  const vc = f.object('validation_context');
  const validation = vc === undefined ? undefined : validationContextOf(vc);
  f.unsupported(['session_ticket_keys', 'generic_secret']);
  f.finish();
  if (name === undefined) return undefined;
  if (which === 'tls_certificate' && tlsCert !== undefined) return { name, tlsCertificate: tlsCert };
  if (which === 'validation_context' && validation !== undefined)
    return { name, validationContext: validation };
  return undefined;
}

/** An SDS resource (proto3 JSON of an envoy.extensions.transport_sockets.tls.v3.Secret), errors under `path`. */
export function translateSecret(json: Record<string, unknown>, path: string): ValidationResult<SecretConfig> {
  const ctx = new Ctx();
  const value = secret(ctx, json, path);
  return ctx.failed || value === undefined ? { ok: false, errors: ctx.errors() } : { ok: true, value };
}

/** static_resources.secrets: each valid, names unique (Envoy refuses a duplicate static secret name). */
export function staticSecrets(f: Fields): SecretConfig[] {
  const out: SecretConfig[] = [];
  const seen = new Set<string>();
  for (const item of f.list('secrets')) {
    const name = isPlainObject(item.value) ? item.value.name : undefined;
    if (typeof name === 'string' && name !== '') {
      if (seen.has(name)) f.ctx.error(`${item.path}.name`, `duplicate secret name ${quote(name)}`);
      seen.add(name);
    }
    const s = secret(f.ctx, item.value, item.path);
    if (s !== undefined) out.push(s);
  }
  return out;
}

/** The secrets a TLS context names. */
export function secretRefsOf(common: CommonTlsContextConfig): SecretRef[] {
  const out: SecretRef[] = [];
  if (common.tlsCertificateSdsSecret)
    out.push({ ref: common.tlsCertificateSdsSecret, use: 'tls_certificate' });
  if (common.validationContextSdsSecret)
    out.push({ ref: common.validationContextSdsSecret, use: 'validation_context' });
  return out;
}

/** The TLS contexts of a listener's filter chains. */
export function listenerTlsContexts(l: ListenerConfig): CommonTlsContextConfig[] {
  const chains = l.defaultFilterChain ? [...l.filterChains, l.defaultFilterChain] : l.filterChains;
  return chains.flatMap((c) => (c.tls ? [c.tls.commonTlsContext] : []));
}

/** The TLS context of a cluster, as a list. */
export function clusterTlsContexts(c: ClusterConfig): CommonTlsContextConfig[] {
  return c.tls ? [c.tls.commonTlsContext] : [];
}

/**
 * Why a TLS context cannot take a static secret for `use`: there is no static secret of that name, or it is of
 * another kind. Undefined when it can.
 */
export function staticSecretProblem(
  secrets: readonly SecretConfig[],
  name: string,
  use: SecretUse,
): string | undefined {
  const s = secrets.find((x) => x.name === name);
  if (s === undefined)
    return `unknown secret ${quote(name)}: without sds_config, a secret is one of static_resources.secrets`;
  const has = use === 'tls_certificate' ? s.tlsCertificate !== undefined : s.validationContext !== undefined;
  return has ? undefined : `static secret ${quote(name)} has no ${use}`;
}

/**
 * Every static secret the bootstrap's listeners and clusters name exists and is of the kind they take, unless the
 * proxy supplies it itself (`localSecrets`).
 */
export function checkStaticSecretRefs(
  ctx: Ctx,
  secrets: readonly SecretConfig[],
  listeners: readonly ListenerConfig[],
  clusters: readonly ClusterConfig[],
  localSecrets: readonly string[] = [],
): void {
  const contexts = [...listeners.flatMap(listenerTlsContexts), ...clusters.flatMap(clusterTlsContexts)];
  for (const common of contexts) {
    for (const { ref, use } of secretRefsOf(common)) {
      if (ref.source !== 'static' || localSecrets.includes(ref.name)) continue;
      const problem = staticSecretProblem(secrets, ref.name, use);
      if (problem !== undefined) ctx.error(`${ref.field}.name`, problem);
    }
  }
}
