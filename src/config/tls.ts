// TLS transport sockets: a filter chain's DownstreamTlsContext and a cluster's UpstreamTlsContext, validated.

import { nodeTls } from '../lazy_builtins.js';
import { adsConfigSource } from './config_source.js';
import { durationField } from './durations.js';
import { stringMatcher } from './matchers.js';
import type {
  CertificateValidationContextConfig,
  CommonTlsContextConfig,
  DownstreamTlsConfig,
  PemSourceConfig,
  SanMatcherConfig,
  SanType,
  SdsSecretRefConfig,
  TlsCertificateConfig,
  TlsParamsConfig,
  TlsProtocolVersion,
  UpstreamTlsConfig,
} from './model.js';
import { Fields, quote } from './reader.js';
import { TYPE_URLS, typedConfig, wrongType } from './typed_config.js';

type Side = 'downstream' | 'upstream';

const VERSIONS: readonly TlsProtocolVersion[] = ['TLSv1_2', 'TLSv1_3'];
/** Node's OpenSSL 3 refuses these at its default security level: a config asking for them could not be honoured. */
const OLD_VERSIONS = ['TLSv1_0', 'TLSv1_1'];

/** Envoy's defaults: TLS 1.2 at least on both sides; at most 1.3 as a server, 1.2 as a client. */
const DEFAULT_VERSIONS: Readonly<Record<Side, { min: TlsProtocolVersion; max: TlsProtocolVersion }>> = {
  downstream: { min: 'TLSv1_2', max: 'TLSv1_3' },
  upstream: { min: 'TLSv1_2', max: 'TLSv1_2' },
};

/** The key exchange groups both BoringSSL (Envoy) and OpenSSL (Node) know by these names. */
const ECDH_CURVES = ['X25519', 'P-256', 'P-384', 'P-521'];

const SAN_TYPES: readonly SanType[] = ['DNS', 'URI', 'IP_ADDRESS', 'EMAIL'];

/** RFC 7301: a protocol name is 1 to 255 bytes. */
const MAX_ALPN_BYTES = 255;

/**
 * A filter chain's `transport_socket` (and `transport_socket_connect_timeout`, the handshake's time limit): the
 * TLS termination settings, or undefined for plaintext (no transport socket, or raw_buffer).
 */
export function downstreamTransportSocket(chain: Fields): DownstreamTlsConfig | undefined {
  const timeoutMs = durationField(chain, 'transport_socket_connect_timeout') ?? 0;
  const f = openTransportSocket(
    chain,
    'a filter chain',
    TYPE_URLS.downstreamTlsContext,
    TYPE_URLS.upstreamTlsContext,
  );
  if (f === undefined) return undefined;
  const common = commonTlsContext(f, 'downstream');
  const requireClientCertificate = f.bool('require_client_certificate') ?? false;
  const preferClientCiphers = f.bool('prefer_client_ciphers') ?? false;
  f.unsupported(
    [
      'require_sni',
      'session_ticket_keys',
      'session_ticket_keys_sds_secret_config',
      'disable_stateless_session_resumption',
      'disable_stateful_session_resumption',
      'session_timeout',
      'ocsp_staple_policy',
      'full_scan_certs_on_sni_mismatch',
    ],
    {
      require_sni: false,
      disable_stateless_session_resumption: false,
      disable_stateful_session_resumption: false,
      ocsp_staple_policy: 'LENIENT_STAPLING',
      full_scan_certs_on_sni_mismatch: false,
    },
  );
  f.finish();
  if (common === undefined) return undefined;
  if (common.tlsCertificates.length === 0 && common.tlsCertificateSdsSecret === undefined) {
    f.ctx.error(
      `${f.pathOf('common_tls_context')}.tls_certificates`,
      'a listener needs its certificate: one entry of tls_certificates or tls_certificate_sds_secret_configs is required',
    );
    return undefined;
  }
  // A CA from SDS is checked when the secret arrives (a secret without one is refused).
  if (
    requireClientCertificate &&
    common.validationContext?.trustedCa === undefined &&
    common.validationContextSdsSecret === undefined
  ) {
    f.error(
      'require_client_certificate',
      'needs common_tls_context.validation_context.trusted_ca (or a validation context from SDS) to verify client certificates against',
    );
    return undefined;
  }
  return {
    commonTlsContext: common,
    requireClientCertificate,
    preferClientCiphers,
    transportSocketConnectTimeoutMs: timeoutMs,
  };
}

/** A cluster's `transport_socket`: the TLS origination settings, or undefined for plaintext. */
export function upstreamTransportSocket(cluster: Fields): UpstreamTlsConfig | undefined {
  const f = openTransportSocket(
    cluster,
    'a cluster',
    TYPE_URLS.upstreamTlsContext,
    TYPE_URLS.downstreamTlsContext,
  );
  if (f === undefined) return undefined;
  const common = commonTlsContext(f, 'upstream');
  const sni = f.string('sni') ?? '';
  if (Buffer.byteLength(sni) > 255) f.error('sni', 'longer than 255 bytes');
  // Remora keeps no client session cache, which is what max_session_keys: 0 asks for.
  f.unsupported(
    [
      'auto_host_sni',
      'auto_sni_san_validation',
      'allow_renegotiation',
      'max_session_keys',
      'enforce_rsa_key_usage',
    ],
    { auto_host_sni: false, auto_sni_san_validation: false, allow_renegotiation: false, max_session_keys: 0 },
  );
  f.finish();
  if (common === undefined) return undefined;
  return { commonTlsContext: common, sni };
}

/**
 * Opens the `transport_socket` of `f` (`owner` says whose, for messages) and returns the fields of its
 * typed_config when it is of type `want`; undefined for no transport socket, a raw_buffer one, or an error
 * (recorded). `other` is the TLS context of the other side.
 */
function openTransportSocket(f: Fields, owner: string, want: string, other: string): Fields | undefined {
  const ts = f.object('transport_socket');
  if (ts === undefined) return undefined;
  ts.string('name', { required: true });
  const tc = typedConfig(ts, 'typed_config', { required: true });
  ts.finish();
  if (tc === undefined) return undefined;
  if (tc.typeUrl === TYPE_URLS.rawBuffer) {
    tc.fields.finish();
    return undefined;
  }
  if (tc.typeUrl === other) {
    const short = (url: string) => url.slice(url.lastIndexOf('.') + 1);
    tc.fields.error('@type', `the transport socket of ${owner} takes ${short(want)}, not ${short(other)}`);
    return undefined;
  }
  if (tc.typeUrl !== want) {
    wrongType(tc, 'envoy.extensions.transport_sockets.', 'transport socket');
    return undefined;
  }
  return tc.fields;
}

/** The `common_tls_context` of a Downstream/UpstreamTlsContext (`parent`); absent means all defaults. */
function commonTlsContext(parent: Fields, side: Side): CommonTlsContextConfig | undefined {
  const f = parent.object('common_tls_context');
  if (f === undefined) {
    return {
      tlsParams: tlsParams(undefined, side)!,
      tlsCertificates: [],
      validationContext: undefined,
      alpnProtocols: [],
    };
  }
  const params = tlsParams(f.object('tls_params'), side);
  const tlsCertificates: TlsCertificateConfig[] = [];
  let failed = false;
  const certificateItems = f.list('tls_certificates');
  for (const [i, item] of certificateItems.entries()) {
    const c = tlsCertificate(f, item.value, item.path);
    if (i > 0) f.ctx.error(item.path, 'only one certificate per TLS context is supported by Remora yet');
    else if (c === undefined) failed = true;
    else tlsCertificates.push(c);
  }
  let tlsCertificateSdsSecret: SdsSecretRefConfig | undefined;
  const sdsCertificates = f.list('tls_certificate_sds_secret_configs');
  for (const [i, item] of sdsCertificates.entries()) {
    const ref = sdsSecretConfig(Fields.of(f.ctx, item.value, item.path));
    if (i > 0) f.ctx.error(item.path, 'only one certificate per TLS context is supported by Remora yet');
    else if (ref === undefined) failed = true;
    else tlsCertificateSdsSecret = ref;
  }
  if (certificateItems.length > 0 && sdsCertificates.length > 0) {
    // Envoy refuses this mix in server contexts and ignores the SDS ones in client contexts: refused on both.
    f.error('tls_certificate_sds_secret_configs', 'SDS and non-SDS TLS certificates may not be mixed');
    failed = true;
  }
  const validation = validationContextType(f);
  if (validation === undefined) failed = true;
  const alpnProtocols: string[] = [];
  for (const item of f.strings('alpn_protocols', { nonEmptyItems: true })) {
    const name = item.value as string;
    if (Buffer.byteLength(name) > MAX_ALPN_BYTES)
      f.ctx.error(item.path, `longer than ${MAX_ALPN_BYTES} bytes`);
    else alpnProtocols.push(name);
  }
  f.unsupported(
    [
      'tls_certificate_provider_instance',
      'custom_tls_certificate_selector',
      'tls_certificate_certificate_provider',
      'tls_certificate_certificate_provider_instance',
      'validation_context_certificate_provider',
      'validation_context_certificate_provider_instance',
      'custom_handshaker',
      'key_log',
      'read_ahead_buffer_size',
    ],
    { read_ahead_buffer_size: 0 },
  );
  f.finish();
  if (params === undefined || failed || validation === undefined) return undefined;
  return {
    tlsParams: params,
    tlsCertificates,
    validationContext: validation.validationContext,
    alpnProtocols,
    ...(tlsCertificateSdsSecret && { tlsCertificateSdsSecret }),
    ...(validation.sds && { validationContextSdsSecret: validation.sds }),
  };
}

/**
 * The validation_context_type oneof: validation_context, validation_context_sds_secret_config, or
 * combined_validation_context (a default context the SDS one is merged over). Undefined on an error.
 */
function validationContextType(
  f: Fields,
):
  | { validationContext: CertificateValidationContextConfig | undefined; sds?: SdsSecretRefConfig }
  | undefined {
  f.oneOf(['validation_context', 'validation_context_sds_secret_config', 'combined_validation_context']);
  const vc = f.object('validation_context');
  const inline = vc === undefined ? undefined : validationContextOf(vc);
  const sc = f.object('validation_context_sds_secret_config');
  const sds = sc === undefined ? undefined : sdsSecretConfig(sc);
  const cc = f.object('combined_validation_context');
  let combined:
    | { validationContext: CertificateValidationContextConfig; sds: SdsSecretRefConfig }
    | undefined;
  let failed = (vc !== undefined && inline === undefined) || (sc !== undefined && sds === undefined);
  if (cc !== undefined) {
    const dv = cc.object('default_validation_context', { required: true });
    // Only the merged context must be complete: the default may hold SAN matchers whose CA comes by SDS.
    const def = dv === undefined ? undefined : validationContextOf(dv, { partial: true });
    const ref = sdsSecretConfig(cc.object('validation_context_sds_secret_config', { required: true }));
    cc.unsupported([
      'validation_context_certificate_provider',
      'validation_context_certificate_provider_instance',
    ]);
    cc.finish();
    if (def === undefined || ref === undefined) failed = true;
    else combined = { validationContext: def, sds: ref };
  }
  if (failed) return undefined;
  if (combined !== undefined) return combined;
  if (sds !== undefined) return { validationContext: undefined, sds };
  return { validationContext: inline };
}

/**
 * An SdsSecretConfig: a secret by `name`, from static_resources.secrets when there is no `sds_config` (as in
 * Envoy), else over SDS. The one config source supported is ADS (`ads: {}`): the secrets come on the stream the
 * rest of the config comes on.
 */
export function sdsSecretConfig(f: Fields | undefined): SdsSecretRefConfig | undefined {
  if (f === undefined) return undefined;
  const name = f.string('name', { required: true });
  const field = f.path;
  const hasSource = f.has('sds_config');
  const source = adsConfigSource(f.object('sds_config'));
  f.unsupported(['sds_resource_locator']);
  f.finish();
  if (name === undefined) return undefined;
  if (!hasSource) return { name, source: 'static', initialFetchTimeoutMs: 0, field };
  if (source === undefined) return undefined;
  return { name, source: 'ads', initialFetchTimeoutMs: source.initialFetchTimeoutMs, field };
}

function tlsParams(f: Fields | undefined, side: Side): TlsParamsConfig | undefined {
  const defaults = DEFAULT_VERSIONS[side];
  if (f === undefined) {
    return {
      tlsMinimumProtocolVersion: defaults.min,
      tlsMaximumProtocolVersion: defaults.max,
      cipherSuites: [],
      ecdhCurves: [],
    };
  }
  let invalid = false;
  const version = (name: string): TlsProtocolVersion | undefined => {
    const v = f.enumOf(name, ['TLS_AUTO', ...VERSIONS] as const, OLD_VERSIONS);
    if (v === undefined && f.has(name)) invalid = true;
    return v === 'TLS_AUTO' ? undefined : v;
  };
  const min = version('tls_minimum_protocol_version');
  const max = version('tls_maximum_protocol_version');
  const cipherSuites = cipherList(f);
  const ecdhCurves: string[] = [];
  for (const item of f.strings('ecdh_curves')) {
    const name = item.value as string;
    if (ECDH_CURVES.includes(name)) ecdhCurves.push(name);
    else
      f.ctx.error(item.path, `unsupported curve ${quote(name)} (expected one of ${ECDH_CURVES.join(', ')})`);
  }
  f.unsupported(['signature_algorithms', 'compliance_policies']);
  f.finish();
  if (invalid || cipherSuites === undefined) return undefined;
  const tlsMinimumProtocolVersion = min ?? defaults.min;
  // An explicit minimum above the default maximum raises the maximum with it, unless that is set too.
  let tlsMaximumProtocolVersion = max ?? defaults.max;
  if (max === undefined && rank(tlsMinimumProtocolVersion) > rank(tlsMaximumProtocolVersion)) {
    tlsMaximumProtocolVersion = tlsMinimumProtocolVersion;
  }
  if (rank(tlsMinimumProtocolVersion) > rank(tlsMaximumProtocolVersion)) {
    f.error(
      'tls_minimum_protocol_version',
      `${tlsMinimumProtocolVersion} is above tls_maximum_protocol_version ${tlsMaximumProtocolVersion}`,
    );
    return undefined;
  }
  return { tlsMinimumProtocolVersion, tlsMaximumProtocolVersion, cipherSuites, ecdhCurves };
}

function rank(v: TlsProtocolVersion): number {
  return VERSIONS.indexOf(v);
}

let knownCiphers: Set<string> | undefined;

/**
 * cipher_suites: names for TLS 1.0–1.2 as BoringSSL and OpenSSL both spell them, each alone or in an equal
 * preference group `[A|B]` (OpenSSL has no such groups: the names keep their order). Undefined on an error.
 */
function cipherList(f: Fields): string[] | undefined {
  knownCiphers ??= new Set(
    nodeTls()
      .getCiphers()
      .map((c) => c.toUpperCase()),
  );
  const out: string[] = [];
  let ok = true;
  for (const item of f.strings('cipher_suites', { nonEmptyItems: true })) {
    const entry = item.value as string;
    const group = /^\[(.*)\]$/.exec(entry);
    const names = group ? group[1]!.split('|') : [entry];
    for (const name of names) {
      if (name.startsWith('TLS_')) {
        f.ctx.error(
          item.path,
          `${quote(name)} is a TLS 1.3 suite: cipher_suites only applies to TLS 1.0–1.2`,
        );
        ok = false;
      } else if (!knownCiphers.has(name.toUpperCase())) {
        f.ctx.error(item.path, `unknown cipher suite ${quote(name)}`);
        ok = false;
      } else {
        out.push(name);
      }
    }
  }
  return ok ? out : undefined;
}

/** A TlsCertificate (of tls_certificates, or of a Secret). */
export function tlsCertificate(parent: Fields, raw: unknown, path: string): TlsCertificateConfig | undefined {
  const f = Fields.of(parent.ctx, raw, path);
  if (f === undefined) return undefined;
  const certificateChain = pemSource(f, 'certificate_chain', true);
  const privateKey = pemSource(f, 'private_key', true);
  f.unsupported([
    'pkcs12',
    'watched_directory',
    'private_key_provider',
    'password',
    'ocsp_staple',
    'signed_certificate_timestamp',
  ]);
  f.finish();
  if (certificateChain === undefined || privateKey === undefined) return undefined;
  return { certificateChain, privateKey };
}

/**
 * A CertificateValidationContext (of a TLS context, or of a Secret). `partial`: combined_validation_context's
 * default, which may leave trusted_ca to the SDS part.
 */
export function validationContextOf(
  f: Fields,
  opts: { partial?: boolean } = {},
): CertificateValidationContextConfig | undefined {
  const trustedCa = pemSource(f, 'trusted_ca', false);
  const matchers: SanMatcherConfig[] = [];
  let failed = f.has('trusted_ca') && trustedCa === undefined;
  for (const item of f.list('match_typed_subject_alt_names')) {
    const m = sanMatcher(f, item.value, item.path);
    if (m === undefined) failed = true;
    else matchers.push(m);
  }
  f.unsupported(
    [
      'ca_certificate_provider_instance',
      'watched_directory',
      'verify_certificate_spki',
      'verify_certificate_hash',
      'match_subject_alt_names',
      'require_signed_certificate_timestamp',
      'crl',
      'allow_expired_certificate',
      'trust_chain_verification',
      'custom_validator_config',
      'only_verify_leaf_cert_crl',
      'max_verify_depth',
    ],
    {
      allow_expired_certificate: false,
      trust_chain_verification: 'VERIFY_TRUST_CHAIN',
      only_verify_leaf_cert_crl: false,
    },
  );
  f.finish();
  if (matchers.length > 0 && !f.has('trusted_ca') && !opts.partial) {
    // Envoy refuses this too: without a CA anyone can present a certificate with any name.
    f.error(
      'match_typed_subject_alt_names',
      'SAN verification without trusted_ca is insecure and not allowed',
    );
    return undefined;
  }
  if (failed) return undefined;
  return { trustedCa, matchTypedSubjectAltNames: matchers };
}

function sanMatcher(parent: Fields, raw: unknown, path: string): SanMatcherConfig | undefined {
  const f = Fields.of(parent.ctx, raw, path);
  if (f === undefined) return undefined;
  const given = f.has('san_type');
  const sanType = f.enumOf('san_type', SAN_TYPES, ['OTHER_NAME']);
  if (!given) f.error('san_type', 'missing required field');
  const m = f.take('matcher');
  if (m === undefined) f.error('matcher', 'missing required field');
  const matcher = m === undefined ? undefined : stringMatcher(f.ctx, m, f.pathOf('matcher'));
  f.unsupported(['oid']);
  f.finish();
  if (sanType === undefined || matcher === undefined) return undefined;
  return { sanType, matcher };
}

const PEM_BEGIN = /-----BEGIN [A-Z0-9 ]+-----/;

/**
 * A DataSource of PEM text: `filename`, `inline_string` or `inline_bytes` (base64). Files are read by the data
 * plane when it starts (and `remora validate` checks them), not here.
 */
function pemSource(parent: Fields, name: string, required: boolean): PemSourceConfig | undefined {
  const f = parent.object(name, { required });
  if (f === undefined) return undefined;
  const kinds = ['filename', 'inline_string', 'inline_bytes', 'environment_variable'];
  const which = f.oneOf(kinds, { required: true });
  const filename = f.string('filename', { nonEmpty: true });
  const inlineString = f.string('inline_string', { nonEmpty: true });
  const inlineBytes = f.string('inline_bytes', { nonEmpty: true });
  f.unsupported(['environment_variable', 'watched_directory']);
  f.finish();
  if (which === 'filename' && filename !== undefined) {
    return { kind: 'file', filename, field: f.pathOf('filename') };
  }
  let pem: string | undefined;
  if (which === 'inline_string') pem = inlineString;
  if (which === 'inline_bytes' && inlineBytes !== undefined) {
    // proto3 JSON bytes: standard or URL-safe base64, padding optional.
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(inlineBytes.replace(/\s+/g, ''))) {
      f.error('inline_bytes', 'not valid base64');
      return undefined;
    }
    pem = Buffer.from(inlineBytes, 'base64').toString('utf8');
  }
  if (pem === undefined) return undefined;
  if (!PEM_BEGIN.test(pem)) {
    f.error(which!, 'no PEM data (expected a "-----BEGIN ...-----" block)');
    return undefined;
  }
  return { kind: 'inline', pem, field: f.pathOf(which!) };
}
