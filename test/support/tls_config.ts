// Test support: Envoy TLS transport_socket config (Downstream/UpstreamTlsContext) for listeners and clusters.

import type { KeyPair } from './certs.js';
import type { Json } from './proxy.js';

export const DOWNSTREAM_TLS =
  'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const UPSTREAM_TLS =
  'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

/** A tls_certificates entry naming the files of `pair` (any pair of files, for tests of bad ones). */
export function certificate(pair: Pick<KeyPair, 'certFile' | 'keyFile'>): Json {
  return { certificate_chain: { filename: pair.certFile }, private_key: { filename: pair.keyFile } };
}

/**
 * Context fields presenting `pair`; `common` joins common_tls_context (alpn_protocols, tls_params,
 * validation_context ...), `extra` the context itself (require_client_certificate ...).
 */
export function serving(
  pair: Pick<KeyPair, 'certFile' | 'keyFile'>,
  common: Json = {},
  extra: Json = {},
): Json {
  return { common_tls_context: { tls_certificates: [certificate(pair)], ...common }, ...extra };
}

/** Context fields verifying the peer against `ca`; `vcExtra` joins validation_context, `common` common_tls_context. */
export function trusting(ca: KeyPair, vcExtra: Json = {}, common: Json = {}): Json {
  return {
    common_tls_context: {
      validation_context: { trusted_ca: { filename: ca.certFile }, ...vcExtra },
      ...common,
    },
  };
}

/** A listener filter chain's transport_socket terminating TLS with a DownstreamTlsContext of `context`. */
export function downstreamTlsSocket(context: Json): Json {
  return { name: 'envoy.transport_sockets.tls', typed_config: { '@type': DOWNSTREAM_TLS, ...context } };
}

/** A cluster's transport_socket originating TLS with an UpstreamTlsContext of `context`. */
export function upstreamTlsSocket(context: Json): Json {
  return { name: 'envoy.transport_sockets.tls', typed_config: { '@type': UPSTREAM_TLS, ...context } };
}

/** Puts a DownstreamTlsContext of `context` on the listener's first filter chain; `chainExtra` joins that chain. */
export function withTls(listener: Json, context: Json, chainExtra: Json = {}): Json {
  const chains = listener.filter_chains as Json[];
  chains[0] = { ...chains[0], transport_socket: downstreamTlsSocket(context), ...chainExtra };
  return listener;
}

/** Cluster fields (staticCluster's `extra`) originating TLS with an UpstreamTlsContext of `context`. */
export function upstreamTls(context: Json): Json {
  return { transport_socket: upstreamTlsSocket(context) };
}
