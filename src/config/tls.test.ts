// Tests of TLS transport socket config: DownstreamTlsContext on filter chains, UpstreamTlsContext on clusters.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { translateCluster, translateListener } from './bootstrap.js';
import type { DownstreamTlsConfig, UpstreamTlsConfig } from './model.js';
import { formatErrors } from './result.js';
import { TYPE_URLS } from './typed_config.js';

const TS = 'l.filter_chains[0].transport_socket';
const DTC = `${TS}.typed_config`;
const UTC = 'c.transport_socket.typed_config';

const CERT = {
  certificate_chain: { filename: '/certs/tls.crt' },
  private_key: { filename: '/certs/tls.key' },
};

function listener(chainExtra: Record<string, unknown>): unknown {
  return {
    name: 'l',
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'tcp',
            typed_config: { '@type': TYPE_URLS.tcpProxy, stat_prefix: 't', cluster: 'c' },
          },
        ],
        ...chainExtra,
      },
    ],
  };
}

function downstream(context: Record<string, unknown>, chainExtra: Record<string, unknown> = {}): unknown {
  return listener({
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: { '@type': TYPE_URLS.downstreamTlsContext, ...context },
    },
    ...chainExtra,
  });
}

function downstreamOf(context: Record<string, unknown>, chainExtra = {}): DownstreamTlsConfig {
  const r = translateListener(downstream(context, chainExtra), 'l');
  if (!r.ok) assert.fail(formatErrors(r.errors));
  const tls = r.value.filterChains[0]!.tls;
  assert.ok(tls);
  return tls;
}

function downstreamErrors(context: Record<string, unknown>, chainExtra = {}): string[] {
  const r = translateListener(downstream(context, chainExtra), 'l');
  assert.equal(r.ok, false);
  return r.ok ? [] : formatErrors(r.errors).split('\n');
}

function cluster(transportSocket: unknown): unknown {
  return {
    name: 'c',
    load_assignment: { cluster_name: 'c', endpoints: [] },
    transport_socket: transportSocket,
  };
}

function upstream(context: Record<string, unknown>): unknown {
  return cluster({
    name: 'envoy.transport_sockets.tls',
    typed_config: { '@type': TYPE_URLS.upstreamTlsContext, ...context },
  });
}

function upstreamOf(context: Record<string, unknown>): UpstreamTlsConfig {
  const r = translateCluster(upstream(context), 'c');
  if (!r.ok) assert.fail(formatErrors(r.errors));
  assert.ok(r.value.tls);
  return r.value.tls;
}

function upstreamErrors(context: Record<string, unknown>): string[] {
  const r = translateCluster(upstream(context), 'c');
  assert.equal(r.ok, false);
  return r.ok ? [] : formatErrors(r.errors).split('\n');
}

test('a downstream TLS context with defaults: one certificate, TLS 1.2 to 1.3, no ALPN, no client certificate', () => {
  const tls = downstreamOf({ common_tls_context: { tls_certificates: [CERT] } });
  assert.deepEqual(tls, {
    commonTlsContext: {
      tlsParams: {
        tlsMinimumProtocolVersion: 'TLSv1_2',
        tlsMaximumProtocolVersion: 'TLSv1_3',
        cipherSuites: [],
        ecdhCurves: [],
      },
      tlsCertificates: [
        {
          certificateChain: {
            kind: 'file',
            filename: '/certs/tls.crt',
            field: `${DTC}.common_tls_context.tls_certificates[0].certificate_chain.filename`,
          },
          privateKey: {
            kind: 'file',
            filename: '/certs/tls.key',
            field: `${DTC}.common_tls_context.tls_certificates[0].private_key.filename`,
          },
        },
      ],
      validationContext: undefined,
      alpnProtocols: [],
    },
    requireClientCertificate: false,
    preferClientCiphers: false,
    transportSocketConnectTimeoutMs: 0,
  });
});

test('a downstream TLS context with every supported field', () => {
  const pem = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
  const tls = downstreamOf(
    {
      commonTlsContext: {
        tlsCertificates: [
          {
            certificateChain: { inlineString: pem },
            privateKey: { inlineBytes: Buffer.from('-----BEGIN PRIVATE KEY-----\n').toString('base64') },
          },
        ],
        alpnProtocols: ['h2', 'http/1.1'],
        tlsParams: {
          tlsMinimumProtocolVersion: 'TLSv1_3',
          tlsMaximumProtocolVersion: 'TLS_AUTO',
          cipherSuites: [
            '[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]',
            'ECDHE-RSA-AES256-GCM-SHA384',
          ],
          ecdhCurves: ['X25519', 'P-256'],
        },
        validationContext: {
          trustedCa: { filename: '/certs/ca.crt' },
          matchTypedSubjectAltNames: [
            { sanType: 'URI', matcher: { prefix: 'spiffe://cluster.local/' } },
            { sanType: 'DNS', matcher: { exact: 'client.example.test', ignore_case: true } },
          ],
          trust_chain_verification: 'VERIFY_TRUST_CHAIN',
        },
      },
      requireClientCertificate: true,
      preferClientCiphers: true,
      require_sni: false,
      ocsp_staple_policy: 'LENIENT_STAPLING',
    },
    { transport_socket_connect_timeout: '2.5s' },
  );
  const common = tls.commonTlsContext;
  assert.deepEqual(common.tlsParams, {
    tlsMinimumProtocolVersion: 'TLSv1_3',
    tlsMaximumProtocolVersion: 'TLSv1_3',
    cipherSuites: [
      'ECDHE-ECDSA-AES128-GCM-SHA256',
      'ECDHE-ECDSA-CHACHA20-POLY1305',
      'ECDHE-RSA-AES256-GCM-SHA384',
    ],
    ecdhCurves: ['X25519', 'P-256'],
  });
  assert.deepEqual(common.tlsCertificates[0]!.certificateChain, {
    kind: 'inline',
    pem,
    field: `${DTC}.commonTlsContext.tlsCertificates[0].certificateChain.inlineString`,
  });
  assert.equal(common.tlsCertificates[0]!.privateKey.kind, 'inline');
  assert.deepEqual(common.alpnProtocols, ['h2', 'http/1.1']);
  assert.deepEqual(common.validationContext?.matchTypedSubjectAltNames, [
    { sanType: 'URI', matcher: { kind: 'prefix', value: 'spiffe://cluster.local/', ignoreCase: false } },
    { sanType: 'DNS', matcher: { kind: 'exact', value: 'client.example.test', ignoreCase: true } },
  ]);
  assert.equal(common.validationContext?.trustedCa?.kind, 'file');
  assert.equal(tls.requireClientCertificate, true);
  assert.equal(tls.preferClientCiphers, true);
  assert.equal(tls.transportSocketConnectTimeoutMs, 2500);
});

test('raw_buffer or no transport socket is plaintext', () => {
  const raw = translateListener(
    listener({ transport_socket: { name: 'raw', typed_config: { '@type': TYPE_URLS.rawBuffer } } }),
    'l',
  );
  assert.ok(raw.ok);
  assert.equal(raw.value.filterChains[0]!.tls, undefined);
  assert.equal('tls' in raw.value.filterChains[0]!, false);
  const none = translateCluster(cluster(undefined), 'c');
  assert.ok(none.ok);
  assert.equal('tls' in none.value, false);
});

test('downstream TLS errors carry their field paths', () => {
  assert.deepEqual(downstreamErrors({}), [
    `${DTC}.common_tls_context.tls_certificates: a listener needs its certificate: one entry of tls_certificates or tls_certificate_sds_secret_configs is required`,
  ]);
  assert.deepEqual(downstreamErrors({ common_tls_context: { tls_certificates: [CERT, CERT] } }), [
    `${DTC}.common_tls_context.tls_certificates[1]: only one certificate per TLS context is supported by Remora yet`,
  ]);
  assert.deepEqual(
    downstreamErrors({ common_tls_context: { tls_certificates: [CERT] }, require_client_certificate: true }),
    [
      `${DTC}.require_client_certificate: needs common_tls_context.validation_context.trusted_ca (or a validation context from SDS) to verify client certificates against`,
    ],
  );
  assert.deepEqual(
    downstreamErrors({
      common_tls_context: { tls_certificates: [{ certificate_chain: { filename: '' } }] },
      session_ticket_keys: { keys: [] },
      require_sni: true,
    }),
    [
      `${DTC}.common_tls_context.tls_certificates[0].certificate_chain.filename: must not be empty`,
      `${DTC}.common_tls_context.tls_certificates[0].private_key: missing required field`,
      `${DTC}.require_sni: field not supported by Remora`,
      `${DTC}.session_ticket_keys: field not supported by Remora`,
    ],
  );
  assert.deepEqual(
    downstreamErrors({
      common_tls_context: {
        tls_certificates: [
          {
            certificate_chain: { inline_string: 'not pem' },
            private_key: { environment_variable: 'KEY' },
            password: { inline_string: 'x' },
          },
        ],
        tls_certificate_sds_secret_configs: [{ name: 'x' }],
        alpn_protocols: ['', 'x'.repeat(256)],
      },
    }),
    [
      `${DTC}.common_tls_context.tls_certificates[0].certificate_chain.inline_string: no PEM data (expected a "-----BEGIN ...-----" block)`,
      `${DTC}.common_tls_context.tls_certificates[0].private_key.environment_variable: field not supported by Remora`,
      `${DTC}.common_tls_context.tls_certificates[0].password: field not supported by Remora`,
      `${DTC}.common_tls_context.tls_certificate_sds_secret_configs: SDS and non-SDS TLS certificates may not be mixed`,
      `${DTC}.common_tls_context.alpn_protocols[0]: must not be empty`,
      `${DTC}.common_tls_context.alpn_protocols[1]: longer than 255 bytes`,
    ],
  );
  assert.deepEqual(
    downstreamErrors(
      { common_tls_context: { tls_certificates: [CERT] }, bogus: 1 },
      { transport_socket_connect_timeout: '1m' },
    ),
    [
      `l.filter_chains[0].transport_socket_connect_timeout: invalid duration "1m": the unit must be seconds with an "s" suffix, e.g. "0.100s" for 100ms`,
      `${DTC}.bogus: unknown field "bogus"`,
    ],
  );
});

test('TLS parameters are checked', () => {
  const errors = (tlsParams: unknown) =>
    downstreamErrors({ common_tls_context: { tls_certificates: [CERT], tls_params: tlsParams } });
  const P = `${DTC}.common_tls_context.tls_params`;
  assert.deepEqual(
    errors({ tls_minimum_protocol_version: 'TLSv1_3', tls_maximum_protocol_version: 'TLSv1_2' }),
    [`${P}.tls_minimum_protocol_version: TLSv1_3 is above tls_maximum_protocol_version TLSv1_2`],
  );
  assert.deepEqual(errors({ tls_minimum_protocol_version: 'SSLv3' }), [
    `${P}.tls_minimum_protocol_version: unsupported value "SSLv3" (expected one of TLS_AUTO, TLSv1_2, TLSv1_3)`,
  ]);
  assert.deepEqual(errors({ tls_minimum_protocol_version: 'TLSv1_0' }), [
    `${P}.tls_minimum_protocol_version: value "TLSv1_0" is not supported by Remora yet (supported: TLS_AUTO, TLSv1_2, TLSv1_3)`,
  ]);
  assert.deepEqual(
    errors({ cipher_suites: ['NOPE-CIPHER', 'TLS_AES_128_GCM_SHA256', '[ECDHE-RSA-AES128-GCM-SHA256|BAD]'] }),
    [
      `${P}.cipher_suites[0]: unknown cipher suite "NOPE-CIPHER"`,
      `${P}.cipher_suites[1]: "TLS_AES_128_GCM_SHA256" is a TLS 1.3 suite: cipher_suites only applies to TLS 1.0–1.2`,
      `${P}.cipher_suites[2]: unknown cipher suite "BAD"`,
    ],
  );
  assert.deepEqual(errors({ ecdh_curves: ['P-192'], signature_algorithms: ['ecdsa_secp256r1_sha256'] }), [
    `${P}.ecdh_curves[0]: unsupported curve "P-192" (expected one of X25519, P-256, P-384, P-521)`,
    `${P}.signature_algorithms: field not supported by Remora`,
  ]);
});

test('SAN matchers need a trusted CA and a known SAN type', () => {
  const V = `${DTC}.common_tls_context.validation_context`;
  const errors = (vc: unknown) =>
    downstreamErrors({ common_tls_context: { tls_certificates: [CERT], validation_context: vc } });
  assert.deepEqual(
    errors({ match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'a' } }] }),
    [`${V}.match_typed_subject_alt_names: SAN verification without trusted_ca is insecure and not allowed`],
  );
  assert.deepEqual(
    errors({
      trusted_ca: { filename: '/ca.crt' },
      match_typed_subject_alt_names: [
        { san_type: 'OTHER_NAME', matcher: { exact: 'a' }, oid: '1.2.3' },
        { matcher: { exact: 'a' } },
        { san_type: 'URI' },
        { san_type: 'DNS', matcher: { prefix: '' } },
      ],
      verify_certificate_hash: ['ab'],
      crl: { filename: '/crl.pem' },
      allow_expired_certificate: false,
    }),
    [
      `${V}.match_typed_subject_alt_names[0].san_type: value "OTHER_NAME" is not supported by Remora yet (supported: DNS, URI, IP_ADDRESS, EMAIL)`,
      `${V}.match_typed_subject_alt_names[0].oid: field not supported by Remora`,
      `${V}.match_typed_subject_alt_names[1].san_type: missing required field`,
      `${V}.match_typed_subject_alt_names[2].matcher: missing required field`,
      `${V}.match_typed_subject_alt_names[3].matcher.prefix: must not be empty`,
      `${V}.verify_certificate_hash: field not supported by Remora`,
      `${V}.crl: field not supported by Remora`,
    ],
  );
});

test('an upstream TLS context: no certificate needed, TLS 1.2 by default as Envoy, SNI', () => {
  const tls = upstreamOf({});
  assert.deepEqual(tls, {
    commonTlsContext: {
      tlsParams: {
        tlsMinimumProtocolVersion: 'TLSv1_2',
        tlsMaximumProtocolVersion: 'TLSv1_2',
        cipherSuites: [],
        ecdhCurves: [],
      },
      tlsCertificates: [],
      validationContext: undefined,
      alpnProtocols: [],
    },
    sni: '',
  });
  const full = upstreamOf({
    sni: 'api.example.test',
    common_tls_context: {
      tls_certificates: [CERT],
      alpn_protocols: ['h2'],
      tls_params: { tls_minimum_protocol_version: 'TLSv1_3' },
      validation_context: {
        trusted_ca: { filename: '/ca.crt' },
        match_typed_subject_alt_names: [{ san_type: 'IP_ADDRESS', matcher: { exact: '10.0.0.1' } }],
      },
    },
    allow_renegotiation: false,
    max_session_keys: 0,
  });
  assert.equal(full.sni, 'api.example.test');
  // A minimum above the default maximum raises the maximum.
  assert.equal(full.commonTlsContext.tlsParams.tlsMaximumProtocolVersion, 'TLSv1_3');
  assert.equal(full.commonTlsContext.tlsCertificates.length, 1);
  assert.deepEqual(full.commonTlsContext.alpnProtocols, ['h2']);
});

test('upstream TLS errors carry their field paths', () => {
  assert.deepEqual(upstreamErrors({ sni: 'x'.repeat(256), allow_renegotiation: true, auto_host_sni: true }), [
    `${UTC}.sni: longer than 255 bytes`,
    `${UTC}.auto_host_sni: field not supported by Remora`,
    `${UTC}.allow_renegotiation: field not supported by Remora`,
  ]);
  assert.deepEqual(
    upstreamErrors({
      common_tls_context: { tls_certificates: [{ certificate_chain: CERT.certificate_chain }] },
    }),
    [`${UTC}.common_tls_context.tls_certificates[0].private_key: missing required field`],
  );
});

test('the transport socket type must fit the side', () => {
  const onListener = translateListener(
    listener({ transport_socket: { name: 'tls', typed_config: { '@type': TYPE_URLS.upstreamTlsContext } } }),
    'l',
  );
  assert.ok(!onListener.ok);
  assert.deepEqual(formatErrors(onListener.errors).split('\n'), [
    `${DTC}.@type: the transport socket of a filter chain takes DownstreamTlsContext, not UpstreamTlsContext`,
  ]);
  const other = translateCluster(
    cluster({
      name: 'alts',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.alts.v3.Alts' },
    }),
    'c',
  );
  assert.ok(!other.ok);
  assert.deepEqual(formatErrors(other.errors).split('\n'), [
    `${UTC}.@type: transport socket type "type.googleapis.com/envoy.extensions.transport_sockets.alts.v3.Alts" is not supported by Remora yet`,
  ]);
  const empty = translateCluster(cluster({}), 'c');
  assert.ok(!empty.ok);
  assert.deepEqual(formatErrors(empty.errors).split('\n'), [
    'c.transport_socket.name: missing required field',
    'c.transport_socket.typed_config: missing required field',
  ]);
  const bytes = translateCluster(
    upstream({ common_tls_context: { validation_context: { trusted_ca: { inline_bytes: '!!!' } } } }),
    'c',
  );
  assert.ok(!bytes.ok);
  assert.deepEqual(formatErrors(bytes.errors).split('\n'), [
    `${UTC}.common_tls_context.validation_context.trusted_ca.inline_bytes: not valid base64`,
  ]);
});
