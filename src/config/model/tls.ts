// The TLS part of the validated configuration (config/tls.ts makes it): contexts, certificates, secrets.

import type { StringMatcherConfig } from '../model.js';

/**
 * A DataSource holding PEM text: a file, read when the proxy starts and watched for changes, or inline data.
 * `field` is its config path, for messages about what was read.
 */
export type PemSourceConfig =
  | { readonly kind: 'file'; readonly filename: string; readonly field: string }
  | { readonly kind: 'inline'; readonly pem: string; readonly field: string };

/** TlsParameters.TlsProtocol; TLS_AUTO is resolved to the side's default when the config is read. */
export type TlsProtocolVersion = 'TLSv1_2' | 'TLSv1_3';

export interface TlsParamsConfig {
  /** Default TLSv1_2 on both sides. */
  readonly tlsMinimumProtocolVersion: TlsProtocolVersion;
  /** Default TLSv1_3 downstream, TLSv1_2 upstream (Envoy's defaults). */
  readonly tlsMaximumProtocolVersion: TlsProtocolVersion;
  /** Cipher names for TLS 1.0–1.2, in order; `[A|B]` groups flattened. Empty = OpenSSL's defaults. */
  readonly cipherSuites: readonly string[];
  /** Key exchange groups (X25519, P-256 ...). Empty = defaults. */
  readonly ecdhCurves: readonly string[];
}

export interface TlsCertificateConfig {
  readonly certificateChain: PemSourceConfig;
  readonly privateKey: PemSourceConfig;
}

export type SanType = 'DNS' | 'URI' | 'IP_ADDRESS' | 'EMAIL';

/** SubjectAltNameMatcher: one SAN type and a StringMatcher for its value. */
export interface SanMatcherConfig {
  readonly sanType: SanType;
  readonly matcher: StringMatcherConfig;
}

export interface CertificateValidationContextConfig {
  /** The CAs a peer certificate must chain to; undefined = the peer is not verified. */
  readonly trustedCa: PemSourceConfig | undefined;
  /** Any one matching is enough; empty = no SAN check. Requires trusted_ca. */
  readonly matchTypedSubjectAltNames: readonly SanMatcherConfig[];
}

export interface CommonTlsContextConfig {
  readonly tlsParams: TlsParamsConfig;
  /** At most one (a listener needs exactly one, here or as tlsCertificateSdsSecret). */
  readonly tlsCertificates: readonly TlsCertificateConfig[];
  /**
   * validation_context; with a validationContextSdsSecret, combined_validation_context's default_validation_context
   * (undefined for a plain validation_context_sds_secret_config).
   */
  readonly validationContext: CertificateValidationContextConfig | undefined;
  /** Empty: no ALPN. */
  readonly alpnProtocols: readonly string[];
  /** tls_certificate_sds_secret_configs (at most one): the certificate is this secret's tls_certificate. */
  readonly tlsCertificateSdsSecret?: SdsSecretRefConfig;
  /**
   * validation_context_sds_secret_config, or combined_validation_context's: this secret's validation_context,
   * merged over `validationContext` as protobuf's MergeFrom does (Envoy's rule): the secret's trusted_ca wins,
   * SAN matchers of both apply.
   */
  readonly validationContextSdsSecret?: SdsSecretRefConfig;
}

/** An SdsSecretConfig: a secret a TLS context takes by name. */
export interface SdsSecretRefConfig {
  readonly name: string;
  /** static: one of static_resources.secrets (no sds_config, as in Envoy); ads: SDS over the ADS stream. */
  readonly source: 'static' | 'ads';
  /** ads: sds_config.initial_fetch_timeout, 15000 when unset, 0 = wait for ever; 0 for static. */
  readonly initialFetchTimeoutMs: number;
  /** Its config path, for messages. */
  readonly field: string;
}

/** A Secret: one of static_resources.secrets, or an SDS resource. Exactly one kind is set. */
export interface SecretConfig {
  readonly name: string;
  readonly tlsCertificate?: TlsCertificateConfig;
  readonly validationContext?: CertificateValidationContextConfig;
}

/** DownstreamTlsContext of a filter chain. */
export interface DownstreamTlsConfig {
  readonly commonTlsContext: CommonTlsContextConfig;
  /** A client certificate is required (and verified against trusted_ca). */
  readonly requireClientCertificate: boolean;
  readonly preferClientCiphers: boolean;
  /** The filter chain's transport_socket_connect_timeout: how long a handshake may take; 0 = no limit. */
  readonly transportSocketConnectTimeoutMs: number;
}

/** UpstreamTlsContext of a cluster. */
export interface UpstreamTlsConfig {
  readonly commonTlsContext: CommonTlsContextConfig;
  /** The SNI sent; "" sends none. */
  readonly sni: string;
}
