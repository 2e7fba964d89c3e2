// The PEM data of a TLS context (files or inline), read and checked piece by piece, turned into a SecureContext.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import {
  createSecureContext,
  type SecureContext,
  type SecureContextOptions,
  type SecureVersion,
} from 'node:tls';
import type {
  Bootstrap,
  CommonTlsContextConfig,
  PemSourceConfig,
  TlsProtocolVersion,
} from '../../config/model.js';
import type { ConfigError } from '../../config/result.js';

/** A PEM file larger than this is not a certificate or a key (and reading it would hold up the start). */
const MAX_PEM_BYTES = 1024 * 1024;

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
  /** Everything `tls.createSecureContext` (or `tls.Server#setSecureContext`) was given. */
  readonly options: SecureContextOptions;
  readonly context: SecureContext;
}

/** The files a context reads (watched for changes). */
export function materialFiles(common: CommonTlsContextConfig): string[] {
  const sources: PemSourceConfig[] = [];
  for (const c of common.tlsCertificates) sources.push(c.certificateChain, c.privateKey);
  const ca = common.validationContext?.trustedCa;
  if (ca !== undefined) sources.push(ca);
  return [...new Set(sources.flatMap((s) => (s.kind === 'file' ? [s.filename] : [])))];
}

/**
 * Reads and checks a context's data and builds its SecureContext; `extra` adds options of the side (cipher order).
 * Throws a TlsMaterialError naming the field and file at fault.
 */
export function loadTlsContext(
  common: CommonTlsContextConfig,
  extra: SecureContextOptions = {},
): LoadedContext {
  const certificate = common.tlsCertificates[0];
  let cert: string | undefined;
  let key: string | undefined;
  if (certificate !== undefined) {
    cert = readPem(certificate.certificateChain);
    checkCertificates(certificate.certificateChain, cert);
    key = readPem(certificate.privateKey);
    checkKey(certificate.privateKey, key);
  }
  const caSource = common.validationContext?.trustedCa;
  let ca: string | undefined;
  if (caSource !== undefined) {
    ca = readPem(caSource);
    checkCertificates(caSource, ca);
  }
  const material: TlsMaterial = { cert, key, ca };
  const p = common.tlsParams;
  const options: SecureContextOptions = {
    ...extra,
    minVersion: NODE_VERSIONS[p.tlsMinimumProtocolVersion],
    maxVersion: NODE_VERSIONS[p.tlsMaximumProtocolVersion],
  };
  if (cert !== undefined) {
    options.cert = cert;
    options.key = key;
  }
  if (ca !== undefined) options.ca = ca;
  if (p.cipherSuites.length > 0) options.ciphers = p.cipherSuites.join(':');
  if (p.ecdhCurves.length > 0) options.ecdhCurve = p.ecdhCurves.join(':');
  let context: SecureContext;
  try {
    context = createSecureContext(options);
  } catch (err) {
    const message = errorText(err);
    if (certificate !== undefined && /key values mismatch/i.test(message)) {
      throw new TlsMaterialError(
        certificate.privateKey.field,
        `the private key (${where(certificate.privateKey)}) does not belong to the certificate (${where(certificate.certificateChain)})`,
      );
    }
    const field = certificate?.certificateChain.field ?? caSource?.field ?? '';
    throw new TlsMaterialError(field, `cannot build the TLS context: ${message}`);
  }
  return { material, options, context };
}

export function sameMaterial(a: TlsMaterial, b: TlsMaterial): boolean {
  return a.cert === b.cert && a.key === b.key && a.ca === b.ca;
}

/**
 * Loads every TLS context of a bootstrap and returns what is wrong, with field paths: unreadable files, data that
 * is not a certificate or a key, a key that does not belong to its certificate. The proxy refuses to start on
 * any of these, and `remora validate` reports them.
 */
export function checkTlsMaterial(b: Bootstrap): ConfigError[] {
  const errors: ConfigError[] = [];
  const check = (common: CommonTlsContextConfig) => {
    try {
      loadTlsContext(common);
    } catch (err) {
      if (!(err instanceof TlsMaterialError)) throw err;
      errors.push({ path: err.field, message: err.detail });
    }
  };
  for (const l of b.listeners) {
    const chains = l.defaultFilterChain ? [...l.filterChains, l.defaultFilterChain] : l.filterChains;
    for (const c of chains) if (c.tls) check(c.tls.commonTlsContext);
  }
  for (const c of b.clusters) if (c.tls) check(c.tls.commonTlsContext);
  return errors;
}

function readPem(src: PemSourceConfig): string {
  if (src.kind === 'inline') return src.pem;
  try {
    const st = statSync(src.filename);
    if (!st.isFile())
      throw new TlsMaterialError(src.field, `cannot read ${src.filename}: not a regular file`);
    if (st.size > MAX_PEM_BYTES) {
      throw new TlsMaterialError(src.field, `${src.filename} is larger than ${MAX_PEM_BYTES} bytes`);
    }
    return readFileSync(src.filename, 'utf8');
  } catch (err) {
    if (err instanceof TlsMaterialError) throw err;
    throw new TlsMaterialError(src.field, `cannot read ${src.filename}: ${errorText(err)}`);
  }
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function checkCertificates(src: PemSourceConfig, pem: string): void {
  const blocks = pem.match(CERTIFICATE_BLOCK);
  if (blocks === null) throw new TlsMaterialError(src.field, `no PEM certificate in ${where(src)}`);
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      const which = blocks.length > 1 ? `certificate ${i + 1} of ${blocks.length}` : 'the certificate';
      throw new TlsMaterialError(src.field, `${which} in ${where(src)} is invalid: ${errorText(err)}`);
    }
  });
}

function checkKey(src: PemSourceConfig, pem: string): void {
  try {
    createPrivateKey(pem);
  } catch (err) {
    throw new TlsMaterialError(src.field, `no usable private key in ${where(src)}: ${errorText(err)}`);
  }
}

function where(src: PemSourceConfig): string {
  return src.kind === 'file' ? src.filename : 'the inline data';
}

/** An error's text without what it repeats: fs errors name the path, OpenSSL's start with a code. */
function errorText(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/, \w+ '.*'$/, '').replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/, '');
}
