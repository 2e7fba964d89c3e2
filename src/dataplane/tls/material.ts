// A TLS context's SecureContext built from its parts (a certificate, a validation context), and the check of every
// TLS context and static secret of a bootstrap before the proxy starts.

import type { SecureContext, SecureContextOptions, SecureVersion } from 'node:tls';
import type {
  Bootstrap,
  CommonTlsContextConfig,
  TlsParamsConfig,
  TlsProtocolVersion,
} from '../../config/model.js';
import type { ConfigError } from '../../config/result.js';
import {
  clusterTlsContexts,
  listenerTlsContexts,
  type SecretUse,
  staticSecretProblem,
} from '../../config/secrets.js';
import { nodeTls } from '../../lazy_builtins.js';
import {
  type CertificateMaterial,
  errorText,
  mergeValidation,
  readCertificate,
  readSecret,
  readValidation,
  type TlsSecret,
  type ValidationMaterial,
} from './secret.js';

const NODE_VERSIONS: Readonly<Record<TlsProtocolVersion, SecureVersion>> = {
  TLSv1_2: 'TLSv1.2',
  TLSv1_3: 'TLSv1.3',
};

/** What is wrong with a TLS context's data, and the config field that names it. */
export class TlsMaterialError extends Error {
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
  }
}

/** The PEM text of a context: its certificate chain and key (both or neither) and its trusted CAs. */
export interface TlsMaterial {
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly ca: string | undefined;
}

export interface LoadedContext {
  readonly material: TlsMaterial;
  readonly certificate: CertificateMaterial | undefined;
  /** The validation context in force (combined: the default and the secret's, merged). */
  readonly validation: ValidationMaterial | undefined;
  /** Everything `tls.createSecureContext` (or `tls.Server#setSecureContext`) was given. */
  readonly options: SecureContextOptions;
  readonly context: SecureContext;
}

/**
 * Builds a SecureContext from a certificate and a validation context; `extra` adds options of the side (cipher
 * order). Throws a TlsMaterialError naming the field at fault.
 */
export function buildContext(
  params: TlsParamsConfig,
  certificate: CertificateMaterial | undefined,
  validation: ValidationMaterial | undefined,
  extra: SecureContextOptions = {},
): LoadedContext {
  const options: SecureContextOptions = {
    ...extra,
    minVersion: NODE_VERSIONS[params.tlsMinimumProtocolVersion],
    maxVersion: NODE_VERSIONS[params.tlsMaximumProtocolVersion],
  };
  if (certificate !== undefined) {
    options.cert = certificate.chain;
    options.key = certificate.key;
  }
  if (validation?.trustedCa !== undefined) options.ca = validation.trustedCa;
  if (params.cipherSuites.length > 0) options.ciphers = params.cipherSuites.join(':');
  if (params.ecdhCurves.length > 0) options.ecdhCurve = params.ecdhCurves.join(':');
  let context: SecureContext;
  try {
    context = nodeTls().createSecureContext(options);
  } catch (err) {
    const field = certificate?.chainField ?? validation?.caField ?? '';
    throw new TlsMaterialError(field, `cannot build the TLS context: ${errorText(err)}`);
  }
  const material = { cert: certificate?.chain, key: certificate?.key, ca: validation?.trustedCa };
  return { material, certificate, validation, options, context };
}

/**
 * The data a context writes itself (tls_certificates, validation_context or combined's default), read and
 * checked: throws a TlsMaterialError naming the first field and file at fault.
 */
export function ownMaterial(common: CommonTlsContextConfig): {
  certificate: CertificateMaterial | undefined;
  validation: ValidationMaterial | undefined;
} {
  const errors: ConfigError[] = [];
  const c = common.tlsCertificates[0];
  const certificate = c && readCertificate(c, errors);
  const validation = common.validationContext && readValidation(common.validationContext, errors);
  if (errors.length > 0) throw new TlsMaterialError(errors[0]!.path, errors[0]!.message);
  return { certificate, validation };
}

/** Reads a context that names no secret and builds its SecureContext; throws a TlsMaterialError. */
export function loadTlsContext(
  common: CommonTlsContextConfig,
  extra: SecureContextOptions = {},
): LoadedContext {
  const own = ownMaterial(common);
  return buildContext(common.tlsParams, own.certificate, own.validation, extra);
}

/**
 * Why a secret cannot serve as `use` of a context: it holds another kind. The validation context in force must
 * have a CA when it has SAN matchers (Envoy refuses SAN checks without one).
 */
export function secretKindProblem(secret: TlsSecret, use: SecretUse): string | undefined {
  const has = use === 'tls_certificate' ? secret.certificate !== undefined : secret.validation !== undefined;
  return has ? undefined : `secret ${JSON.stringify(secret.name)} holds no ${use}`;
}

export function validationProblem(v: ValidationMaterial | undefined): string | undefined {
  if (v !== undefined && v.trustedCa === undefined && v.matchTypedSubjectAltNames.length > 0)
    return 'SAN verification without trusted_ca is insecure and not allowed';
  return undefined;
}

/**
 * Loads every TLS context and static secret of a bootstrap and returns what is wrong, with field paths:
 * unreadable files, data that is not a certificate or a key, a key that does not belong to its certificate. The
 * proxy refuses to start on any of these, and `remora validate` reports them. Secrets from SDS are checked when
 * they arrive.
 */
export function checkTlsMaterial(b: Bootstrap): ConfigError[] {
  const errors: ConfigError[] = [];
  const statics = new Map<string, TlsSecret>();
  for (const s of b.secrets ?? []) {
    const r = readSecret(s);
    if (r.ok) statics.set(s.name, r.value);
    else errors.push(...r.errors);
  }
  const check = (common: CommonTlsContextConfig) => {
    let own: ReturnType<typeof ownMaterial>;
    try {
      own = ownMaterial(common);
    } catch (err) {
      if (!(err instanceof TlsMaterialError)) throw err;
      errors.push({ path: err.field, message: err.detail });
      return;
    }
    const certRef = common.tlsCertificateSdsSecret;
    const vcRef = common.validationContextSdsSecret;
    // Only what is known now can be built: a context taking a secret from SDS is built when it arrives.
    if (certRef?.source === 'ads' || vcRef?.source === 'ads') return;
    const fromStatic = (name: string | undefined, use: SecretUse) =>
      name === undefined || staticSecretProblem(b.secrets ?? [], name, use) !== undefined
        ? undefined
        : statics.get(name);
    const certificate = certRef ? fromStatic(certRef.name, 'tls_certificate')?.certificate : own.certificate;
    const validation = vcRef
      ? mergeValidation(own.validation, fromStatic(vcRef.name, 'validation_context')?.validation)
      : own.validation;
    if ((certRef && certificate === undefined) || (vcRef && validation === undefined)) return;
    const problem = validationProblem(validation);
    if (problem !== undefined) {
      errors.push({ path: `${vcRef?.field ?? ''}.name`, message: problem });
      return;
    }
    try {
      buildContext(common.tlsParams, certificate, validation);
    } catch (err) {
      if (!(err instanceof TlsMaterialError)) throw err;
      errors.push({ path: err.field, message: err.detail });
    }
  };
  for (const l of b.listeners) for (const c of listenerTlsContexts(l)) check(c);
  for (const c of b.clusters) for (const x of clusterTlsContexts(c)) check(x);
  return errors;
}
