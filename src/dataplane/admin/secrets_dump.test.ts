// Tests of the secrets in /config_dump (SecretsConfigDump: static, dynamic active and warming, redacted as Envoy
// does) and of the /certs document built from real certificates.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Certs, makeCerts, SERVER_SANS } from '../../../test/support/certs.js';
import type { DumpedType, DynamicDump } from '../xds/dynamic_config.js';
import { certsDocument } from './certs.js';
import { buildConfigDump } from './config_dump.js';

let certs: Certs;
before(async () => {
  certs = await makeCerts();
});
after(() => certs.close());

const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
const EMPTY: DumpedType = { version: '', resources: [], failures: new Map() };
const AT = new Date('2030-01-02T03:04:05.000Z');

function dynamic(sds: DumpedType): DynamicDump {
  return { CDS: EMPTY, EDS: EMPTY, LDS: EMPTY, RDS: EMPTY, SDS: sds };
}

test('SecretsConfigDump: static and dynamic secrets, private keys redacted field by field as Envoy does', () => {
  const raw = {
    static_resources: {
      secrets: [
        {
          name: 'server_cert',
          tls_certificate: {
            certificate_chain: { filename: '/certs/tls.crt' },
            private_key: { filename: '/certs/tls.key' },
          },
        },
      ],
    },
  };
  const sds: DumpedType = {
    version: 'v7',
    resources: [
      {
        name: 'default',
        version: 'v7',
        lastUpdated: AT,
        warming: false,
        json: {
          name: 'default',
          tls_certificate: {
            certificate_chain: { inline_bytes: 'Q0VSVA==' },
            private_key: { inline_bytes: 'S0VZ' },
          },
        },
      },
    ],
    failures: new Map([
      [
        'default',
        {
          json: undefined,
          details: 'SDS["default"].tls_certificate.private_key: bad',
          at: AT,
          version: 'v8',
        },
      ],
    ]),
    waiting: ['ROOTCA'],
  };
  const r = buildConfigDump(raw, { lastUpdated: AT, dynamic: dynamic(sds) });
  assert.ok(r.ok);
  const dump = r.body.configs.at(-1)!;
  assert.deepEqual(dump, {
    '@type': 'type.googleapis.com/envoy.admin.v3.SecretsConfigDump',
    static_secrets: [
      {
        name: 'server_cert',
        last_updated: '2030-01-02T03:04:05.000Z',
        secret: {
          '@type': SECRET_TYPE,
          name: 'server_cert',
          tls_certificate: {
            certificate_chain: { filename: '/certs/tls.crt' },
            private_key: { filename: '[redacted]' },
          },
        },
      },
    ],
    dynamic_active_secrets: [
      {
        name: 'default',
        version_info: 'v7',
        last_updated: '2030-01-02T03:04:05.000Z',
        secret: {
          '@type': SECRET_TYPE,
          name: 'default',
          tls_certificate: {
            certificate_chain: { inline_bytes: 'Q0VSVA==' },
            private_key: { inline_bytes: Buffer.from('[redacted]').toString('base64') },
          },
        },
        error_state: {
          last_update_attempt: '2030-01-02T03:04:05.000Z',
          details: 'SDS["default"].tls_certificate.private_key: bad',
          version_info: 'v8',
        },
      },
    ],
    dynamic_warming_secrets: [{ name: 'ROOTCA' }],
  });
  const only = buildConfigDump(raw, {
    lastUpdated: AT,
    dynamic: dynamic(sds),
    resource: 'dynamic_warming_secrets',
  });
  assert.ok(only.ok);
  assert.deepEqual(only.body.configs, [
    { '@type': 'type.googleapis.com/envoy.admin.v3.SecretsConfigDump.DynamicSecret', name: 'ROOTCA' },
  ]);
  // Without xDS there is no dynamic part, and an empty bootstrap still has the dump.
  const none = buildConfigDump({}, { lastUpdated: AT });
  assert.ok(none.ok);
  assert.deepEqual(none.body.configs.at(-1), {
    '@type': 'type.googleapis.com/envoy.admin.v3.SecretsConfigDump',
    static_secrets: [],
  });
});

test('/certs: each context with its CAs and its leaf, in Envoy shape, with the secret each came from', () => {
  const now = Date.now();
  const doc = certsDocument(
    [
      {
        name: 'listener "in"',
        certificateChain: { pem: certs.server.cert + certs.ca.cert, path: '<inline>', secretName: 'default' },
        trustedCa: {
          pem: certs.ca.cert + certs.otherCa.cert,
          path: certs.ca.certFile,
          secretName: undefined,
        },
      },
      { name: 'cluster "c"', certificateChain: undefined, trustedCa: undefined },
    ],
    now,
  ) as { certificates: { ca_cert: Record<string, unknown>[]; cert_chain: Record<string, unknown>[] }[] };
  assert.equal(doc.certificates.length, 2);
  assert.deepEqual(doc.certificates[1], { ca_cert: [], cert_chain: [] });
  const [first] = doc.certificates;
  assert.equal(first!.cert_chain.length, 1, 'the leaf only');
  const leaf = first!.cert_chain[0]!;
  assert.equal(leaf.serial_number, '1000');
  assert.equal(leaf.path, '<inline>');
  assert.equal(leaf.secret_name, 'default');
  assert.deepEqual(leaf.subject_alt_names, [
    { dns: 'localhost' },
    { dns: '*.example.test' },
    { ip_address: '127.0.0.1' },
    { uri: SERVER_SANS.uri },
  ]);
  assert.ok(['29', '30'].includes(String(leaf.days_until_expiration)));
  assert.equal(first!.ca_cert.map((c) => c.serial_number).join(','), '01,02', 'every CA of the bundle');
  assert.equal(first!.ca_cert[0]!.path, certs.ca.certFile);
  assert.equal('secret_name' in first!.ca_cert[0]!, false);
  assert.deepEqual(first!.ca_cert[0]!.subject_alt_names, []);
});
