// Tests of reading TLS material: what is wrong is named with its field and file; reloads keep the last good files.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Certs, makeCerts } from '../../../test/support/certs.js';
import { translateBootstrap } from '../../config/bootstrap.js';
import type { CommonTlsContextConfig, PemSourceConfig } from '../../config/model.js';
import { Logger } from '../observe/log.js';
import { StatsStore, scopes } from '../observe/stats.js';
import { checkTlsMaterial, loadTlsContext, TlsMaterialError } from './material.js';
import { ReloadingContext } from './reloading_context.js';
import { UPSTREAM_TLS_STATS } from './stats.js';

let certs: Certs;
before(async () => {
  certs = await makeCerts();
});
after(() => certs.close());

const file = (filename: string, field = 'f'): PemSourceConfig => ({ kind: 'file', filename, field });

function common(cert: PemSourceConfig, key: PemSourceConfig, ca?: PemSourceConfig): CommonTlsContextConfig {
  return {
    tlsParams: {
      tlsMinimumProtocolVersion: 'TLSv1_2',
      tlsMaximumProtocolVersion: 'TLSv1_3',
      cipherSuites: [],
      ecdhCurves: [],
    },
    tlsCertificates: [{ certificateChain: cert, privateKey: key }],
    validationContext: ca ? { trustedCa: ca, matchTypedSubjectAltNames: [] } : undefined,
    alpnProtocols: [],
  };
}

function failure(c: CommonTlsContextConfig): { field: string; detail: string } {
  try {
    loadTlsContext(c);
  } catch (err) {
    assert.ok(err instanceof TlsMaterialError, String(err));
    return { field: err.field, detail: err.detail };
  }
  assert.fail('expected a TlsMaterialError');
}

test('files and inline PEM load into a SecureContext', () => {
  const fromFiles = loadTlsContext(
    common(file(certs.server.certFile), file(certs.server.keyFile), file(certs.ca.certFile)),
  );
  assert.equal(fromFiles.material.cert, certs.server.cert);
  assert.equal(fromFiles.options.minVersion, 'TLSv1.2');
  assert.equal(fromFiles.options.maxVersion, 'TLSv1.3');
  const inline = (pem: string): PemSourceConfig => ({ kind: 'inline', pem, field: 'i' });
  assert.equal(
    loadTlsContext(common(inline(certs.client.cert), inline(certs.client.key))).material.key,
    certs.client.key,
  );
});

test('what cannot be used is named with its field and file', () => {
  const dir = join(certs.dir, 'bad');
  mkdirSync(dir, { recursive: true });
  const notPem = join(dir, 'not.pem');
  writeFileSync(notPem, 'hello\n');
  const broken = join(dir, 'broken.crt');
  writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  const key = file(certs.server.keyFile, 'key');
  assert.deepEqual(failure(common(file(join(dir, 'missing.crt'), 'chain'), key)), {
    field: 'chain',
    detail: `cannot read ${join(dir, 'missing.crt')}: ENOENT: no such file or directory`,
  });
  assert.deepEqual(failure(common(file(dir, 'chain'), key)), {
    field: 'chain',
    detail: `cannot read ${dir}: not a regular file`,
  });
  assert.deepEqual(failure(common(file(notPem, 'chain'), key)), {
    field: 'chain',
    detail: `no PEM certificate in ${notPem}`,
  });
  const bad = failure(common(file(broken, 'chain'), key));
  assert.equal(bad.field, 'chain');
  assert.match(bad.detail, new RegExp(`^the certificate in ${broken} is invalid: `));
  const badKey = failure(common(file(certs.server.certFile), file(notPem, 'key')));
  assert.equal(badKey.field, 'key');
  assert.match(badKey.detail, new RegExp(`^no usable private key in ${notPem}: `));
  assert.deepEqual(failure(common(file(certs.server.certFile), file(certs.client.keyFile, 'key'))), {
    field: 'key',
    detail: `the private key (${certs.client.keyFile}) does not belong to the certificate (${certs.server.certFile})`,
  });
  assert.deepEqual(failure(common(file(certs.server.certFile), key, file(notPem, 'ca'))), {
    field: 'ca',
    detail: `no PEM certificate in ${notPem}`,
  });
});

test('checkTlsMaterial reports every context of a bootstrap with its config path', () => {
  const ts = (type: string, context: unknown) => ({
    name: 'tls',
    typed_config: {
      '@type': `type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.${type}`,
      ...(context as object),
    },
  });
  const b = translateBootstrap({
    static_resources: {
      listeners: [
        {
          name: 'l',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'tcp',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                    stat_prefix: 't',
                    cluster: 'c',
                  },
                },
              ],
              transport_socket: ts('DownstreamTlsContext', {
                common_tls_context: {
                  tls_certificates: [
                    {
                      certificate_chain: { filename: certs.server.certFile },
                      private_key: { filename: certs.server.keyFile },
                    },
                  ],
                },
              }),
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'c',
          transport_socket: ts('UpstreamTlsContext', {
            common_tls_context: { validation_context: { trusted_ca: { filename: '/nonexistent/ca.crt' } } },
          }),
        },
      ],
    },
  });
  assert.ok(b.ok);
  assert.deepEqual(checkTlsMaterial(b.value), [
    {
      path: 'static_resources.clusters[0].transport_socket.typed_config.common_tls_context.validation_context.trusted_ca.filename',
      message: 'cannot read /nonexistent/ca.crt: ENOENT: no such file or directory',
    },
  ]);
});

test('a reload uses changed files that work, and keeps the current ones otherwise', () => {
  const dir = join(certs.dir, 'reload');
  mkdirSync(dir, { recursive: true });
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  writeFileSync(certFile, certs.server.cert);
  writeFileSync(keyFile, certs.server.key);
  const store = new StatsStore();
  const stats = store.scope(scopes.cluster('r'), UPSTREAM_TLS_STATS);
  const updates: string[] = [];
  const ctx = new ReloadingContext(common(file(certFile), file(keyFile)), {
    name: 'test',
    logger: new Logger('off'),
    stats: () => ({
      byFile: stats['ssl.context_update_by_file'],
      byFileError: stats['ssl.context_update_by_file_error'],
      bySds: stats['client_ssl_socket_factory.ssl_context_update_by_sds'],
    }),
    onUpdate: (loaded) => updates.push(loaded.material.cert ?? ''),
  });
  try {
    ctx.reload();
    assert.deepEqual(updates, [], 'unchanged files: nothing to do');
    writeFileSync(certFile, certs.client.cert);
    ctx.reload();
    assert.equal(stats['ssl.context_update_by_file_error'].value, 1, 'a certificate without its key');
    assert.equal(ctx.current?.material.cert, certs.server.cert);
    writeFileSync(keyFile, certs.client.key);
    ctx.reload();
    assert.deepEqual(updates, [certs.client.cert]);
    assert.equal(ctx.current?.material.key, certs.client.key);
    assert.equal(stats['ssl.context_update_by_file'].value, 1);
  } finally {
    ctx.close();
  }
});

test('checkTlsMaterial: static secrets, and contexts built from them', () => {
  const S = 'static_resources.secrets';
  const C = 'static_resources.clusters[0].transport_socket.typed_config.common_tls_context';
  const b = translateBootstrap({
    static_resources: {
      secrets: [
        {
          name: 'missing',
          tls_certificate: {
            certificate_chain: { filename: '/nonexistent/tls.crt' },
            private_key: { filename: certs.server.keyFile },
          },
        },
        {
          name: 'mismatch',
          tls_certificate: {
            certificate_chain: { filename: certs.server.certFile },
            private_key: { filename: certs.client.keyFile },
          },
        },
        { name: 'no-ca', validation_context: {} },
      ],
      clusters: [
        {
          name: 'c',
          transport_socket: {
            name: 'tls',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
              common_tls_context: {
                combined_validation_context: {
                  default_validation_context: {
                    match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'a' } }],
                  },
                  validation_context_sds_secret_config: { name: 'no-ca' },
                },
              },
            },
          },
        },
      ],
    },
  });
  if (!b.ok) assert.fail(JSON.stringify(b.errors));
  assert.deepEqual(checkTlsMaterial(b.value), [
    {
      path: `${S}[0].tls_certificate.certificate_chain.filename`,
      message: 'cannot read /nonexistent/tls.crt: ENOENT: no such file or directory',
    },
    {
      path: `${S}[1].tls_certificate.private_key.filename`,
      message: `the private key (${certs.client.keyFile}) does not belong to the certificate (${certs.server.certFile})`,
    },
    {
      path: `${C}.combined_validation_context.validation_context_sds_secret_config.name`,
      message: 'SAN verification without trusted_ca is insecure and not allowed',
    },
  ]);
});
