// A secret's data as TLS contexts use it — PEM text read from files or inline, checked piece by piece — and the
// merge of a validation context over another (combined_validation_context).

import type { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type {
  CertificateValidationContextConfig,
  PemSourceConfig,
  SanMatcherConfig,
  SecretConfig,
  TlsCertificateConfig,
} from '../../config/model.js';
import type { ConfigError, ValidationResult } from '../../config/result.js';
import { nodeCrypto } from '../../lazy_builtins.js';

/** A PEM file larger than this is not a certificate or a key (and reading it would hold up the start). */
const MAX_PEM_BYTES = 1024 * 1024;

/** Envoy's /certs `path` of data that is not a file. */
export const INLINE = '<inline>';

/** A certificate chain and its private key, both PEM. */
export interface CertificateMaterial {
  readonly chain: string;
  readonly key: string;
  /** The chain's file, or "<inline>". */
  readonly chainPath: string;
  /** The config fields, for messages about what was read. */
  readonly chainField: string;
  readonly keyField: string;
}

/** What a peer certificate is checked against. */
export interface ValidationMaterial {
  /** PEM of the trusted CAs (a bundle may hold several); undefined = the peer is not verified. */
  readonly trustedCa: string | undefined;
  /** The CA file, or "<inline>"; undefined without a CA. */
  readonly caPath: string | undefined;
  readonly caField: string | undefined;
  /** Any one matching is enough; empty = no SAN check. */
  readonly matchTypedSubjectAltNames: readonly SanMatcherConfig[];
}

/** A secret as TLS contexts take it: exactly one of its parts is set. */
export interface TlsSecret {
  readonly name: string;
  readonly certificate?: CertificateMaterial;
  readonly validation?: ValidationMaterial;
}

/**
 * Reads and checks a secret's data: files readable, every PEM certificate valid, the key usable and belonging to
 * the certificate. Every error has the field path of the data at fault.
 */
export function readSecret(config: SecretConfig): ValidationResult<TlsSecret> {
  const errors: ConfigError[] = [];
  const certificate = config.tlsCertificate && readCertificate(config.tlsCertificate, errors);
  const validation = config.validationContext && readValidation(config.validationContext, errors);
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      name: config.name,
      ...(certificate && { certificate }),
      ...(validation && { validation }),
    },
  };
}

/** A TlsCertificate's chain and key; undefined (with `errors` added to) when they cannot be used. */
export function readCertificate(
  c: TlsCertificateConfig,
  errors: ConfigError[],
): CertificateMaterial | undefined {
  const chain = readPem(c.certificateChain, errors);
  const key = readPem(c.privateKey, errors);
  const leaf = chain === undefined ? undefined : checkCertificates(c.certificateChain, chain, errors);
  const keyObject = key === undefined ? undefined : checkKey(c.privateKey, key, errors);
  if (chain === undefined || key === undefined || leaf === undefined || keyObject === undefined)
    return undefined;
  if (!leaf.checkPrivateKey(keyObject)) {
    errors.push({
      path: c.privateKey.field,
      message: `the private key (${where(c.privateKey)}) does not belong to the certificate (${where(c.certificateChain)})`,
    });
    return undefined;
  }
  return {
    chain,
    key,
    chainPath: pathOf(c.certificateChain),
    chainField: c.certificateChain.field,
    keyField: c.privateKey.field,
  };
}

/** A CertificateValidationContext's CA bundle and SAN matchers; undefined (with errors) when unusable. */
export function readValidation(
  v: CertificateValidationContextConfig,
  errors: ConfigError[],
): ValidationMaterial | undefined {
  if (v.trustedCa === undefined) {
    return {
      trustedCa: undefined,
      caPath: undefined,
      caField: undefined,
      matchTypedSubjectAltNames: v.matchTypedSubjectAltNames,
    };
  }
  const ca = readPem(v.trustedCa, errors);
  if (ca === undefined || checkCertificates(v.trustedCa, ca, errors) === undefined) return undefined;
  return {
    trustedCa: ca,
    caPath: pathOf(v.trustedCa),
    caField: v.trustedCa.field,
    matchTypedSubjectAltNames: v.matchTypedSubjectAltNames,
  };
}

/**
 * combined_validation_context: the dynamic part merged over the default as protobuf's MergeFrom does, which is
 * what Envoy does — a trusted_ca set in the dynamic part replaces the default's, repeated SAN matchers add up.
 */
export function mergeValidation(
  base: ValidationMaterial | undefined,
  over: ValidationMaterial | undefined,
): ValidationMaterial | undefined {
  if (base === undefined) return over;
  if (over === undefined) return base;
  const ca = over.trustedCa !== undefined ? over : base;
  return {
    trustedCa: ca.trustedCa,
    caPath: ca.caPath,
    caField: ca.caField,
    matchTypedSubjectAltNames: [...base.matchTypedSubjectAltNames, ...over.matchTypedSubjectAltNames],
  };
}

/** Whether two versions of a secret hold the same data (a file rewritten unchanged changes nothing). */
export function sameSecret(a: TlsSecret | undefined, b: TlsSecret | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const ca = a.certificate;
  const cb = b.certificate;
  const va = a.validation;
  const vb = b.validation;
  return (
    ca?.chain === cb?.chain &&
    ca?.key === cb?.key &&
    va?.trustedCa === vb?.trustedCa &&
    JSON.stringify(va?.matchTypedSubjectAltNames) === JSON.stringify(vb?.matchTypedSubjectAltNames)
  );
}

function readPem(src: PemSourceConfig, errors: ConfigError[]): string | undefined {
  if (src.kind === 'inline') return src.pem;
  try {
    const st = statSync(src.filename);
    if (!st.isFile()) {
      errors.push({ path: src.field, message: `cannot read ${src.filename}: not a regular file` });
      return undefined;
    }
    if (st.size > MAX_PEM_BYTES) {
      errors.push({ path: src.field, message: `${src.filename} is larger than ${MAX_PEM_BYTES} bytes` });
      return undefined;
    }
    return readFileSync(src.filename, 'utf8');
  } catch (err) {
    errors.push({ path: src.field, message: `cannot read ${src.filename}: ${errorText(err)}` });
    return undefined;
  }
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The PEM certificates of `pem`, each parsed; undefined (with an error) when one is not a certificate. */
export function parseCertificates(pem: string): X509Certificate[] {
  return (pem.match(CERTIFICATE_BLOCK) ?? []).map((block) => new (nodeCrypto().X509Certificate)(block));
}

/** Checks every certificate block; returns the first (the leaf of a chain). */
function checkCertificates(
  src: PemSourceConfig,
  pem: string,
  errors: ConfigError[],
): X509Certificate | undefined {
  const blocks = pem.match(CERTIFICATE_BLOCK);
  if (blocks === null) {
    errors.push({ path: src.field, message: `no PEM certificate in ${where(src)}` });
    return undefined;
  }
  const parsed: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      parsed.push(new (nodeCrypto().X509Certificate)(block));
    } catch (err) {
      const which = blocks.length > 1 ? `certificate ${i + 1} of ${blocks.length}` : 'the certificate';
      errors.push({ path: src.field, message: `${which} in ${where(src)} is invalid: ${errorText(err)}` });
      return undefined;
    }
  }
  return parsed[0];
}

function checkKey(src: PemSourceConfig, pem: string, errors: ConfigError[]) {
  try {
    return nodeCrypto().createPrivateKey(pem);
  } catch (err) {
    errors.push({ path: src.field, message: `no usable private key in ${where(src)}: ${errorText(err)}` });
    return undefined;
  }
}

function pathOf(src: PemSourceConfig): string {
  return src.kind === 'file' ? src.filename : INLINE;
}

export function where(src: PemSourceConfig): string {
  return src.kind === 'file' ? src.filename : 'the inline data';
}

/** An error's text without what it repeats: fs errors name the path, OpenSSL's start with a code. */
export function errorText(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/, \w+ '.*'$/, '').replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/, '');
}

/** The files a secret's data come from (watched for changes). */
export function secretFiles(config: SecretConfig): string[] {
  const sources: PemSourceConfig[] = [];
  if (config.tlsCertificate)
    sources.push(config.tlsCertificate.certificateChain, config.tlsCertificate.privateKey);
  if (config.validationContext?.trustedCa) sources.push(config.validationContext.trustedCa);
  return [...new Set(sources.flatMap((s) => (s.kind === 'file' ? [s.filename] : [])))];
}
