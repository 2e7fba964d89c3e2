// Integration: `remora proxy --ca-address --join-token-file` gets its workload certificate from the CA of a real
// `remora control-plane` and serves it on a static mTLS listener taking `default` and `ROOTCA`: openssl sees the
// SPIFFE URI SAN chaining to the CA's root, /certs shows it; a token for another service account or a wrong pin
// leaves the proxy not ready, saying why.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { requestCertificate } from '../src/identity/client.js';
import {
  type ChildProxy,
  type RemoraProcess,
  runRemora,
  spawnProxy,
  startCaControlPlane,
  until,
} from './support/child.js';
import { createJoinToken } from './support/join_token.js';
import { httpListener, type Json, routes } from './support/proxy.js';
import { withTls } from './support/tls_config.js';
import { closedPort } from './support/upstream.js';

const run = promisify(execFile);
let tmp: string;
let dataDir: string;
let cp: RemoraProcess;
let caAddress: string;
const procs: (RemoraProcess | ChildProxy)[] = [];

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'remora-wid-it-'));
  dataDir = join(tmp, 'data');
  mkdirSync(join(tmp, 'config'));
  const started = await startCaControlPlane(join(tmp, 'config'), dataDir, ['--cert-ttl', '10m']);
  cp = started.proc;
  procs.push(cp);
  caAddress = started.caAddress;
});
after(async () => {
  await Promise.allSettled(procs.map((p) => p.kill()));
  rmSync(tmp, { recursive: true, force: true });
});

async function tokenCreate(sa: string): Promise<string> {
  return (await createJoinToken(dataDir, 'shop', sa)).token;
}

function tokenFile(token: string): string {
  const f = join(tmp, `token-${Math.random().toString(16).slice(2)}`);
  writeFileSync(f, `${token}\n`, { mode: 0o600 });
  return f;
}

/**
 * A static sidecar bootstrap (no xDS at all) whose mTLS listener names `default` and `ROOTCA` without an
 * sds_config: the proxy supplies both itself, from the CA.
 */
function config(): Json {
  return {
    node: { id: 'web-1.shop', cluster: 'web' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [
        withTls(
          httpListener('inbound', routes([{ match: { prefix: '/' }, direct_response: { status: 200 } }])),
          {
            require_client_certificate: true,
            common_tls_context: {
              tls_certificate_sds_secret_configs: [{ name: 'default' }],
              validation_context_sds_secret_config: { name: 'ROOTCA' },
            },
          },
        ),
      ],
    },
  };
}

test('the sidecar serves its own SPIFFE certificate from the CA on an mTLS listener', async () => {
  const dir = mkdtempSync(join(tmp, 'ok-'));
  const token = await tokenCreate('web');
  const proxy = await spawnProxy(dir, config(), [
    '--ca-address',
    caAddress,
    '--join-token-file',
    tokenFile(token),
    '--xds-cache-dir',
    join(dir, 'cache'),
  ]);
  procs.push(proxy);
  assert.ok(!proxy.output().includes(token.split('.')[2]!), 'the token is never logged');

  const client = await requestCertificate({ address: caAddress, token: await tokenCreate('client') });
  for (const [name, pem] of [
    ['client.pem', client.certChainPem],
    ['client.key', client.keyPem],
    ['roots.pem', client.rootsPem],
  ] as const)
    writeFileSync(join(dir, name), pem);
  const sclient = run('openssl', [
    's_client',
    '-connect',
    `127.0.0.1:${proxy.port}`,
    '-cert',
    join(dir, 'client.pem'),
    '-key',
    join(dir, 'client.key'),
    '-CAfile',
    join(dir, 'roots.pem'),
    '-verify_return_error',
    '-showcerts',
    '-ign_eof',
  ]);
  sclient.child.stdin?.end('GET / HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n');
  const shown = await sclient.catch((e: { stdout: string; stderr: string }) => e);
  const out = `${shown.stdout}${shown.stderr}`;
  assert.match(out, /Verify return code: 0 \(ok\)/, out);
  assert.match(out, /HTTP\/1\.1 200/, out);
  const served = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(shown.stdout)![0];
  const leaf = new X509Certificate(served);
  assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/web');

  const certs = (await (await fetch(`${proxy.adminUrl}/certs`)).text()) as string;
  assert.match(certs, /spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web/);
  assert.ok(certs.toLowerCase().includes(leaf.serialNumber.toLowerCase()), certs);
  const dump = await (await fetch(`${proxy.adminUrl}/config_dump`)).text();
  assert.doesNotMatch(dump, /PRIVATE KEY/, 'the key is not in /config_dump');
  const stats = await (await fetch(`${proxy.adminUrl}/stats`)).text();
  assert.match(stats, /workload_identity\.issue_success: 1/);
  assert.match(stats, /workload_identity\.seconds_until_cert_expiring: \d+/);
});

/** Runs a sidecar that should not become ready; resolves with its output once it said `why`. */
async function notReady(args: readonly string[], why: RegExp): Promise<string> {
  const dir = mkdtempSync(join(tmp, 'no-'));
  const adminPort = await closedPort();
  const cfg = config() as Json & { admin: Json };
  cfg.admin = { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } };
  const file = join(dir, 'bootstrap.json');
  writeFileSync(file, JSON.stringify(cfg));
  const p = runRemora(['proxy', '-c', file, '--xds-cache-dir', join(dir, 'cache'), ...args]);
  procs.push(p);
  await until('the proxy to say why it has no certificate', () => why.test(p.output()), 20_000);
  const r = await fetch(`http://127.0.0.1:${adminPort}/ready`);
  await r.text();
  assert.notEqual(r.status, 200, 'not ready without a certificate');
  await p.kill();
  return p.output();
}

test('a token for another service account: not ready, refused by the CA', async () => {
  const out = await notReady(
    [
      '--ca-address',
      caAddress,
      '--join-token-file',
      tokenFile(await tokenCreate('admin')),
      '--namespace',
      'shop',
      '--service-account',
      'web',
    ],
    /cannot get a certificate from the CA.*PERMISSION_DENIED/,
  );
  assert.match(out, /retry_in_ms/);
});

test('a join token whose pin is not the CA root: not ready, pin mismatch', async () => {
  const parts = (await tokenCreate('web')).split('.');
  parts[3] = '0'.repeat(64);
  await notReady(
    ['--ca-address', caAddress, '--join-token', parts.join('.')],
    /REMORA_ERR_IDENTITY_PIN_MISMATCH/,
  );
});
