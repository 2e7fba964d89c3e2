// Tests of secrets in config: SdsSecretConfig in TLS contexts (ADS or static), combined_validation_context,
// static_resources.secrets, SDS Secret resources, and the cross-references between them, every error with its path.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { translateBootstrap, translateCluster, translateListener, translateSecret } from './bootstrap.js';
import type { CommonTlsContextConfig } from './model.js';
import { formatErrors } from './result.js';
import { TYPE_URLS } from './typed_config.js';

const DTC = 'l.filter_chains[0].transport_socket.typed_config';
const CTX = `${DTC}.common_tls_context`;
const ADS = { ads: {}, resource_api_version: 'V3' };
const CERT = {
  certificate_chain: { filename: '/certs/tls.crt' },
  private_key: { filename: '/certs/tls.key' },
};
const SAN = { san_type: 'URI', matcher: { prefix: 'spiffe://cluster.local/' } };

function listener(context: Record<string, unknown>): Record<string, unknown> {
  return {
    name: 'l',
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      {
        filters: [
          { name: 'tcp', typed_config: { '@type': TYPE_URLS.tcpProxy, stat_prefix: 't', cluster: 'c' } },
        ],
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: { '@type': TYPE_URLS.downstreamTlsContext, ...context },
        },
      },
    ],
  };
}

function cluster(context: Record<string, unknown>): Record<string, unknown> {
  return {
    name: 'c',
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: { '@type': TYPE_URLS.upstreamTlsContext, ...context },
    },
  };
}

function downstreamCommon(context: Record<string, unknown>): CommonTlsContextConfig {
  const r = translateListener(listener(context), 'l');
  if (!r.ok) assert.fail(formatErrors(r.errors));
  return r.value.filterChains[0]!.tls!.commonTlsContext;
}

function downstreamErrors(context: Record<string, unknown>): string[] {
  const r = translateListener(listener(context), 'l');
  assert.equal(r.ok, false, 'expected errors');
  return r.ok ? [] : formatErrors(r.errors).split('\n');
}

function bootstrapErrors(raw: unknown): string[] {
  const r = translateBootstrap(raw);
  assert.equal(r.ok, false, 'expected errors');
  return r.ok ? [] : formatErrors(r.errors).split('\n');
}

test('a certificate and a validation context by SDS over ADS, with their initial fetch timeouts', () => {
  const c = downstreamCommon({
    common_tls_context: {
      tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: ADS }],
      validation_context_sds_secret_config: {
        name: 'ROOTCA',
        sds_config: { ads: {}, initial_fetch_timeout: '0s' },
      },
    },
    require_client_certificate: true,
  });
  assert.deepEqual(c.tlsCertificates, []);
  assert.equal(c.validationContext, undefined);
  assert.deepEqual(c.tlsCertificateSdsSecret, {
    name: 'default',
    source: 'ads',
    initialFetchTimeoutMs: 15_000,
    field: `${CTX}.tls_certificate_sds_secret_configs[0]`,
  });
  assert.deepEqual(c.validationContextSdsSecret, {
    name: 'ROOTCA',
    source: 'ads',
    initialFetchTimeoutMs: 0,
    field: `${CTX}.validation_context_sds_secret_config`,
  });
});

test('without sds_config a secret is a static one, as in Envoy', () => {
  const c = downstreamCommon({
    common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'server_cert' }] },
  });
  assert.deepEqual(c.tlsCertificateSdsSecret, {
    name: 'server_cert',
    source: 'static',
    initialFetchTimeoutMs: 0,
    field: `${CTX}.tls_certificate_sds_secret_configs[0]`,
  });
});

test('combined_validation_context: the default part (SAN matchers without a CA) and the SDS part', () => {
  const r = translateCluster(
    cluster({
      common_tls_context: {
        tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: ADS }],
        combined_validation_context: {
          default_validation_context: { match_typed_subject_alt_names: [SAN] },
          validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: ADS },
        },
      },
      sni: 'outbound_.80_._.web.default.svc.cluster.local',
    }),
    'c',
  );
  if (!r.ok) assert.fail(formatErrors(r.errors));
  const c = r.value.tls!.commonTlsContext;
  assert.deepEqual(c.validationContext, {
    trustedCa: undefined,
    matchTypedSubjectAltNames: [
      { sanType: 'URI', matcher: { kind: 'prefix', value: 'spiffe://cluster.local/', ignoreCase: false } },
    ],
  });
  assert.equal(c.validationContextSdsSecret?.name, 'ROOTCA');
  assert.equal(
    c.validationContextSdsSecret?.field,
    'c.transport_socket.typed_config.common_tls_context.combined_validation_context.validation_context_sds_secret_config',
  );
});

test('SdsSecretConfig errors carry their field paths', () => {
  assert.deepEqual(
    downstreamErrors({
      common_tls_context: {
        tls_certificate_sds_secret_configs: [
          { sds_config: { path: '/etc/envoy/sds.yaml' } },
          { name: 'second', sds_config: ADS },
        ],
        validation_context_sds_secret_config: {
          name: 'v',
          sds_config: { api_config_source: { api_type: 'GRPC' } },
          bogus: true,
        },
      },
    }),
    [
      `${CTX}.tls_certificate_sds_secret_configs[0].name: missing required field`,
      `${CTX}.tls_certificate_sds_secret_configs[0].sds_config.path: not supported by Remora yet: resources come over ADS only (ads: {})`,
      `${CTX}.tls_certificate_sds_secret_configs[1]: only one certificate per TLS context is supported by Remora yet`,
      `${CTX}.validation_context_sds_secret_config.sds_config.api_config_source: not supported by Remora yet: resources come over ADS only (ads: {})`,
      `${CTX}.validation_context_sds_secret_config.bogus: unknown field "bogus"`,
    ],
  );
  assert.deepEqual(
    downstreamErrors({
      common_tls_context: {
        tls_certificates: [CERT],
        validation_context: { trusted_ca: { filename: '/ca.crt' } },
        combined_validation_context: { default_validation_context: {} },
      },
    }),
    [
      `${CTX}: only one of validation_context, validation_context_sds_secret_config, combined_validation_context may be set (got validation_context, combined_validation_context)`,
      `${CTX}.combined_validation_context.validation_context_sds_secret_config: missing required field`,
    ],
  );
  // A plain validation_context still needs its CA for SAN matchers: only combined's default may leave it to SDS.
  assert.deepEqual(
    downstreamErrors({
      common_tls_context: {
        tls_certificates: [CERT],
        validation_context: { match_typed_subject_alt_names: [SAN] },
      },
    }),
    [
      `${CTX}.validation_context.match_typed_subject_alt_names: SAN verification without trusted_ca is insecure and not allowed`,
    ],
  );
});

test('static_resources.secrets: valid ones are kept; mistakes are reported with their paths', () => {
  const ok = translateBootstrap({
    static_resources: {
      secrets: [
        { name: 'server_cert', tls_certificate: CERT },
        { name: 'validation', validation_context: { trusted_ca: { filename: '/ca.crt' } } },
      ],
      listeners: [
        listener({
          common_tls_context: {
            tls_certificate_sds_secret_configs: [{ name: 'server_cert' }],
            validation_context_sds_secret_config: { name: 'validation' },
          },
        }),
      ],
      clusters: [{ name: 'c', load_assignment: { cluster_name: 'c', endpoints: [] } }],
    },
  });
  if (!ok.ok) assert.fail(formatErrors(ok.errors));
  assert.deepEqual(
    ok.value.secrets?.map((s) => s.name),
    ['server_cert', 'validation'],
  );
  assert.equal(ok.value.secrets?.[0]?.tlsCertificate?.certificateChain.kind, 'file');
  assert.equal('secrets' in (translateBootstrap({}) as { value: object }).value, false);

  const S = 'static_resources.secrets';
  assert.deepEqual(
    bootstrapErrors({
      static_resources: {
        secrets: [
          { name: 'a', tls_certificate: CERT },
          { name: 'a', validation_context: {} },
          { tls_certificate: CERT, validation_context: {} },
          { name: 'keys', session_ticket_keys: { keys: [{ inline_string: 'x' }] } },
          { name: 'generic', generic_secret: { secret: { inline_string: 'x' } } },
          { name: 'empty' },
          { name: 'bad', tls_certificate: { certificate_chain: { inline_string: 'not pem' } } },
        ],
      },
    }),
    [
      `${S}[1].name: duplicate secret name "a"`,
      `${S}[2].name: missing required field`,
      `${S}[2]: only one of tls_certificate, validation_context, session_ticket_keys, generic_secret may be set (got tls_certificate, validation_context)`,
      `${S}[3].session_ticket_keys: field not supported by Remora`,
      `${S}[4].generic_secret: field not supported by Remora`,
      `${S}[5]: one of tls_certificate, validation_context, session_ticket_keys, generic_secret is required`,
      `${S}[6].tls_certificate.certificate_chain.inline_string: no PEM data (expected a "-----BEGIN ...-----" block)`,
      `${S}[6].tls_certificate.private_key: missing required field`,
    ],
  );
});

test('a static secret named by a context must exist and be of the kind it takes; ADS needs an ads_config', () => {
  const L = 'static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context';
  const C = 'static_resources.clusters[0].transport_socket.typed_config.common_tls_context';
  assert.deepEqual(
    bootstrapErrors({
      static_resources: {
        secrets: [{ name: 'ca', validation_context: { trusted_ca: { filename: '/ca.crt' } } }],
        listeners: [
          listener({
            common_tls_context: {
              tls_certificate_sds_secret_configs: [{ name: 'ca' }],
              validation_context_sds_secret_config: { name: 'nope' },
            },
          }),
        ],
        clusters: [
          {
            ...cluster({
              common_tls_context: {
                tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: ADS }],
              },
            }),
            load_assignment: { cluster_name: 'c', endpoints: [] },
          },
        ],
      },
    }),
    [
      `${C}.tls_certificate_sds_secret_configs[0].sds_config.ads: ADS is named here but the bootstrap has no dynamic_resources.ads_config`,
      `${L}.tls_certificate_sds_secret_configs[0].name: static secret "ca" has no tls_certificate`,
      `${L}.validation_context_sds_secret_config.name: unknown secret "nope": without sds_config, a secret is one of static_resources.secrets`,
    ],
  );
});

test('an SDS Secret resource: validated under its resource path', () => {
  const ok = translateSecret(
    {
      name: 'ROOTCA',
      validation_context: { trusted_ca: { inline_string: '-----BEGIN CERTIFICATE-----\nx' } },
    },
    'SDS["ROOTCA"]',
  );
  if (!ok.ok) assert.fail(formatErrors(ok.errors));
  assert.equal(
    ok.value.validationContext?.trustedCa?.field,
    'SDS["ROOTCA"].validation_context.trusted_ca.inline_string',
  );
  const bad = translateSecret(
    { name: 'default', tls_certificate: { certificate_chain: { inline_bytes: '!!' }, private_key: {} } },
    'SDS["default"]',
  );
  assert.ok(!bad.ok);
  assert.deepEqual(formatErrors(bad.errors).split('\n'), [
    'SDS["default"].tls_certificate.certificate_chain.inline_bytes: not valid base64',
    'SDS["default"].tls_certificate.private_key: one of filename, inline_string, inline_bytes, environment_variable is required',
  ]);
});
