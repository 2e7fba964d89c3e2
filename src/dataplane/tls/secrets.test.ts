// Tests of secrets at run time: a secret's data checked with every error and path, the SDS store refusing a version
// a context cannot use, contexts waiting for their secrets and rebuilt on each new version, combined contexts.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Certs, makeCerts } from '../../../test/support/certs.js';
import type {
  CommonTlsContextConfig,
  PemSourceConfig,
  SanMatcherConfig,
  SdsSecretRefConfig,
  SecretConfig,
} from '../../config/model.js';
import { Logger } from '../observe/log.js';
import { StatsStore, scopes } from '../observe/stats.js';
import { TlsMaterialError } from './material.js';
import { ReloadingContext } from './reloading_context.js';
import { readSecret, type TlsSecret } from './secret.js';
import { SecretManager } from './secret_manager.js';
import { SecretTable } from './secret_provider.js';
import { UPSTREAM_TLS_STATS } from './stats.js';

let certs: Certs;
before(async () => {
  certs = await makeCerts();
});
after(() => certs.close());

const logger = new Logger('off');
const inline = (pem: string, field: string): PemSourceConfig => ({ kind: 'inline', pem, field });
const file = (filename: string, field: string): PemSourceConfig => ({ kind: 'file', filename, field });

/** A TLS certificate secret as SDS would bring it (inline PEM). */
function certSecret(name: string, cert: string, key: string): TlsSecret {
  const r = readSecret({
    name,
    tlsCertificate: { certificateChain: inline(cert, 'chain'), privateKey: inline(key, 'key') },
  });
  if (!r.ok) assert.fail(JSON.stringify(r.errors));
  return r.value;
}

function caSecret(name: string, ca: string | undefined, sans: SanMatcherConfig[] = []): TlsSecret {
  const r = readSecret({
    name,
    validationContext: {
      trustedCa: ca === undefined ? undefined : inline(ca, 'ca'),
      matchTypedSubjectAltNames: sans,
    },
  });
  if (!r.ok) assert.fail(JSON.stringify(r.errors));
  return r.value;
}

const ads = (name: string, timeoutMs = 15_000): SdsSecretRefConfig => ({
  name,
  source: 'ads',
  initialFetchTimeoutMs: timeoutMs,
  field: `ctx.${name}`,
});

function common(extra: Partial<CommonTlsContextConfig>): CommonTlsContextConfig {
  return {
    tlsParams: {
      tlsMinimumProtocolVersion: 'TLSv1_2',
      tlsMaximumProtocolVersion: 'TLSv1_3',
      cipherSuites: [],
      ecdhCurves: [],
    },
    tlsCertificates: [],
    validationContext: undefined,
    alpnProtocols: [],
    ...extra,
  };
}

function stats() {
  const s = new StatsStore().scope(scopes.cluster('t'), UPSTREAM_TLS_STATS);
  return {
    raw: s,
    update: () => ({
      byFile: s['ssl.context_update_by_file'],
      byFileError: s['ssl.context_update_by_file_error'],
      bySds: s['client_ssl_socket_factory.ssl_context_update_by_sds'],
    }),
  };
}

const uri = (prefix: string): SanMatcherConfig => ({
  sanType: 'URI',
  matcher: { kind: 'prefix', value: prefix, ignoreCase: false },
});

test("a secret's data: every problem with its field path; a key that is not the certificate's", () => {
  const bad = readSecret({
    name: 'default',
    tlsCertificate: {
      certificateChain: inline(
        '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
        'SDS["default"].chain',
      ),
      privateKey: inline(
        '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
        'SDS["default"].key',
      ),
    },
  });
  assert.ok(!bad.ok);
  assert.deepEqual(
    bad.errors.map((e) => e.path),
    ['SDS["default"].chain', 'SDS["default"].key'],
  );
  assert.match(bad.errors[0]!.message, /^the certificate in the inline data is invalid: /);
  assert.match(bad.errors[1]!.message, /^no usable private key in the inline data: /);

  const mismatch = readSecret({
    name: 'default',
    tlsCertificate: {
      certificateChain: inline(certs.server.cert, 'chain'),
      privateKey: inline(certs.client.key, 'key'),
    },
  });
  assert.ok(!mismatch.ok);
  assert.deepEqual(mismatch.errors, [
    {
      path: 'key',
      message: 'the private key (the inline data) does not belong to the certificate (the inline data)',
    },
  ]);

  const ca = readSecret({
    name: 'ROOTCA',
    validationContext: { trustedCa: inline('hello', 'ca'), matchTypedSubjectAltNames: [] },
  });
  assert.ok(!ca.ok);
  assert.deepEqual(ca.errors, [{ path: 'ca', message: 'no PEM certificate in the inline data' }]);

  const good = readSecret({
    name: 'server',
    tlsCertificate: {
      certificateChain: file(certs.server.certFile, 'chain'),
      privateKey: file(certs.server.keyFile, 'key'),
    },
  });
  assert.ok(good.ok);
  assert.equal(good.value.certificate?.chainPath, certs.server.certFile);
  assert.equal(caSecret('c', certs.ca.cert).validation?.caPath, '<inline>');
});

test('SecretTable: a version a subscriber refuses is rolled back for everyone', () => {
  let namesChanged = 0;
  const table = new SecretTable(() => namesChanged++);
  const seenA: (string | undefined)[] = [];
  let refuse = false;
  const cancelA = table.subscribe('default', (s) => seenA.push(s?.certificate?.chain));
  const cancelB = table.subscribe('default', () => {
    if (refuse) throw new Error('cannot use it');
  });
  assert.equal(namesChanged, 1, 'the first subscriber adds the name');
  const v1 = certSecret('default', certs.server.cert, certs.server.key);
  const v2 = certSecret('default', certs.client.cert, certs.client.key);
  assert.deepEqual(table.set('default', v1), []);
  refuse = true;
  assert.deepEqual(table.set('default', v2), ['cannot use it']);
  assert.equal(table.get('default'), v1, 'the previous version stays');
  assert.deepEqual(seenA, [certs.server.cert, certs.client.cert, certs.server.cert], 'told to go back');
  // A refused first version is withdrawn.
  const seenC: (TlsSecret | undefined)[] = [];
  table.subscribe('other', (s) => seenC.push(s));
  table.subscribe('other', () => {
    throw new Error('no');
  });
  assert.deepEqual(table.set('other', { ...v1, name: 'other' }).length, 1);
  assert.equal(table.get('other'), undefined);
  assert.equal(seenC.at(-1), undefined);
  cancelA();
  assert.equal(namesChanged, 2, 'one more name ("other")');
  cancelB();
  assert.deepEqual([...table.subscribed()], ['other']);
});

test('a context naming SDS secrets waits for them, then is rebuilt by each new version', async () => {
  const secrets = new SecretManager([], { logger });
  const names: string[][] = [];
  secrets.sds.onNamesChanged(() => names.push([...secrets.sds.names()].sort()));
  const s = stats();
  const updates: (string | undefined)[] = [];
  const ctx = new ReloadingContext(
    common({ tlsCertificateSdsSecret: ads('default'), validationContextSdsSecret: ads('ROOTCA', 0) }),
    {
      name: 'cluster "web"',
      logger,
      stats: s.update,
      secrets,
      onUpdate: (l) => updates.push(l.material.cert),
    },
  );
  try {
    assert.deepEqual(names.at(-1), ['ROOTCA', 'default'], 'SDS asks for both names');
    assert.equal(ctx.ready, false);
    const current = () => ctx.current;
    assert.equal(current(), undefined);
    assert.deepEqual(ctx.missingSecrets(), ['default', 'ROOTCA']);
    assert.equal(ctx.initialFetchTimeoutMs, 0, 'ROOTCA waits for ever');
    let readyNow = false;
    const ready = ctx.whenReady().then(() => {
      readyNow = true;
    });
    assert.equal(secrets.sds.update(certSecret('default', certs.server.cert, certs.server.key)), undefined);
    assert.deepEqual(ctx.missingSecrets(), ['ROOTCA']);
    assert.equal(secrets.sds.update(caSecret('ROOTCA', certs.ca.cert)), undefined);
    await ready;
    assert.ok(readyNow && ctx.ready);
    assert.equal(current()?.material.ca, certs.ca.cert);
    assert.deepEqual(updates, [certs.server.cert]);
    // Rotation: a new certificate is put in place; the same data again changes nothing.
    assert.equal(secrets.sds.update(certSecret('default', certs.client.cert, certs.client.key)), undefined);
    assert.equal(secrets.sds.update(certSecret('default', certs.client.cert, certs.client.key)), undefined);
    assert.deepEqual(updates, [certs.server.cert, certs.client.cert]);
    assert.equal(s.raw['client_ssl_socket_factory.ssl_context_update_by_sds'].value, 2);
    // A validation context where a certificate is expected is refused, and the current version stays.
    const why = secrets.sds.update({ ...caSecret('x', certs.ca.cert), name: 'default' });
    assert.equal(why, 'cluster "web": secret "default" holds no tls_certificate');
    assert.equal(secrets.sds.get('default')?.certificate?.chain, certs.client.cert);
    assert.equal(current()?.material.cert, certs.client.cert);
    const shown = ctx.certificates();
    assert.equal(shown.certificateChain?.secretName, 'default');
    assert.equal(shown.trustedCa?.secretName, 'ROOTCA');
    assert.equal(shown.trustedCa?.path, '<inline>');
  } finally {
    ctx.close();
  }
  assert.deepEqual(names.at(-1), [], 'closing the context ends the subscriptions');
  secrets.close();
});

test('combined_validation_context: SAN matchers of the default, the CA from SDS; a CA-less merge is refused', () => {
  const secrets = new SecretManager([], { logger });
  const ctx = new ReloadingContext(
    common({
      validationContext: {
        trustedCa: undefined,
        matchTypedSubjectAltNames: [uri('spiffe://cluster.local/')],
      },
      validationContextSdsSecret: ads('ROOTCA'),
    }),
    { name: 'cluster "c"', logger, stats: stats().update, secrets },
  );
  try {
    const refused = secrets.sds.update(caSecret('ROOTCA', undefined, [uri('spiffe://other/')]));
    assert.equal(refused, 'cluster "c": SAN verification without trusted_ca is insecure and not allowed');
    assert.equal(ctx.ready, false);
    assert.equal(secrets.sds.update(caSecret('ROOTCA', certs.ca.cert, [uri('spiffe://other/')])), undefined);
    assert.equal(ctx.current?.validation?.trustedCa, certs.ca.cert);
    // protobuf MergeFrom: the repeated matchers of both.
    assert.deepEqual(
      ctx.current?.validation?.matchTypedSubjectAltNames.map((m) => m.matcher.value),
      ['spiffe://cluster.local/', 'spiffe://other/'],
    );
  } finally {
    ctx.close();
    secrets.close();
  }
});

test('static secrets: from files, watched; an unknown name or a name of another kind is refused', () => {
  const dir = certs.dir;
  const certFile = join(dir, 'static.crt');
  const keyFile = join(dir, 'static.key');
  writeFileSync(certFile, certs.server.cert);
  writeFileSync(keyFile, certs.server.key);
  const configs: SecretConfig[] = [
    {
      name: 'server_cert',
      tlsCertificate: { certificateChain: file(certFile, 'c'), privateKey: file(keyFile, 'k') },
    },
  ];
  const secrets = new SecretManager(configs, { logger });
  const s = stats();
  const ref = (name: string): SdsSecretRefConfig => ({
    name,
    source: 'static',
    initialFetchTimeoutMs: 0,
    field: 'f',
  });
  const ctx = new ReloadingContext(common({ tlsCertificateSdsSecret: ref('server_cert') }), {
    name: 'listener "l"',
    logger,
    stats: s.update,
    secrets,
  });
  try {
    assert.equal(ctx.current?.material.cert, certs.server.cert);
    assert.deepEqual(ctx.certificates().certificateChain?.path, certFile);
    writeFileSync(certFile, certs.client.cert);
    writeFileSync(keyFile, certs.client.key);
    secrets.statics.reload();
    assert.equal(ctx.current?.material.cert, certs.client.cert);
    assert.equal(s.raw['ssl.context_update_by_file'].value, 1);
    assert.throws(
      () =>
        new ReloadingContext(common({ tlsCertificateSdsSecret: ref('nope') }), {
          name: 'x',
          logger,
          stats: s.update,
          secrets,
        }),
      (err: unknown) =>
        err instanceof TlsMaterialError &&
        err.field === 'f.name' &&
        err.detail ===
          'unknown secret "nope": without sds_config, a secret is one of static_resources.secrets',
    );
    assert.throws(
      () =>
        new ReloadingContext(common({ validationContextSdsSecret: ref('server_cert') }), {
          name: 'x',
          logger,
          stats: s.update,
          secrets,
        }),
      /static secret "server_cert" has no validation_context/,
    );
  } finally {
    ctx.close();
    secrets.close();
  }
});

test('a local provider supplies its names whatever source the context names', () => {
  const local = new SecretTable();
  local.set('default', certSecret('default', certs.server.cert, certs.server.key));
  const secrets = new SecretManager([], {
    logger,
    local: {
      names: ['default', 'ROOTCA'],
      provider: {
        get: (n) => local.get(n),
        subscribe: (n, cb) => local.subscribe(n, cb),
        close: () => local.clear(),
      },
    },
  });
  const ctx = new ReloadingContext(common({ tlsCertificateSdsSecret: ads('default') }), {
    name: 'c',
    logger,
    stats: stats().update,
    secrets,
  });
  try {
    assert.ok(ctx.ready);
    assert.deepEqual([...secrets.sds.names()], [], 'nothing asked of SDS');
    assert.equal(secrets.certificates().length, 1);
    assert.ok((secrets.daysUntilFirstCertExpiring() ?? -1) >= 28, 'the test certificates last 30 days');
  } finally {
    ctx.close();
    secrets.close();
  }
  assert.equal(secrets.certificates().length, 0, 'a closed context is no longer listed');
});
