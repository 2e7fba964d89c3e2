// Integration: the CA of `bin/remora control-plane` as a real process. `bin/remora token create` makes join tokens
// while it runs; the identity client gets a certificate for the token's SPIFFE ID that openssl verifies against the
// distributed root; a token for another service account, and a client pinning another key, get nothing; the root
// survives a restart; Kubernetes service-account tokens are checked by a TokenReview against a FAKE API server.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { IdentityError, requestCertificate } from '../src/identity/client.js';
import { type RemoraProcess, runRemora, startCaControlPlane, until } from './support/child.js';
import { FakeKubeApi } from './support/fake_kube_api.js';
import { createJoinToken } from './support/join_token.js';

const run = promisify(execFile);
const WEB_ID = 'spiffe://cluster.local/ns/shop/sa/web';
let tmp: string;
const procs: RemoraProcess[] = [];

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'remora-ca-it-'));
  mkdirSync(join(tmp, 'config'));
});
after(async () => {
  await Promise.allSettled(procs.map((p) => p.kill()));
  rmSync(tmp, { recursive: true, force: true });
});

interface RunningCa extends RemoraProcess {
  readonly address: string;
  readonly pin: string;
  /** The debug port's /metrics. */
  readonly metrics: () => Promise<string>;
}

async function startControlPlane(dataDir: string, more: readonly string[] = []): Promise<RunningCa> {
  const { proc, line, caAddress } = await startCaControlPlane(join(tmp, 'config'), dataDir, more);
  procs.push(proc);
  const pin = /CA on [^\s]+ \(trust domain [^,]+, root (sha256:[0-9a-f]{64})/.exec(line)?.[1];
  assert.ok(pin !== undefined, `no root pin in the start line: ${line}`);
  const debug = /debug on [^\s]+:(\d+)/.exec(line)?.[1];
  const metrics = async () => (await fetch(`http://127.0.0.1:${debug}/metrics`)).text();
  return { ...proc, address: caAddress, pin, metrics };
}

async function stop(cp: RemoraProcess): Promise<void> {
  cp.process.kill('SIGTERM');
  assert.equal(await cp.exited, 0, cp.output());
}

async function tokenCreate(dataDir: string, sa: string, ...more: string[]): Promise<string> {
  const { token, stderr } = await createJoinToken(dataDir, 'shop', sa, ...more);
  assert.match(stderr, new RegExp(`join token [0-9a-f]{16} for spiffe://cluster\\.local/ns/shop/sa/${sa}`));
  return token;
}

async function refused(p: Promise<unknown>): Promise<IdentityError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof IdentityError, String(err));
    return err;
  }
  assert.fail('a certificate was issued');
}

async function opensslVerify(rootsFile: string, leafPem: string): Promise<string> {
  const leaf = join(tmp, `leaf-${Date.now()}-${Math.random()}.pem`);
  writeFileSync(leaf, leafPem);
  return (await run('openssl', ['verify', '-CAfile', rootsFile, leaf])).stdout;
}

test('join tokens get certificates for their own identity; the root survives a restart', async () => {
  const dataDir = join(tmp, 'data');
  const cp = await startControlPlane(dataDir);
  const rootsFile = join(dataDir, 'ca', 'roots.pem');

  // The CA's own TLS certificate is valid for the loopback address, under the distributed root.
  const sclient = run('openssl', [
    's_client',
    '-connect',
    cp.address,
    '-CAfile',
    rootsFile,
    '-verify_ip',
    '127.0.0.1',
    '-verify_return_error',
    '-brief',
  ]);
  sclient.child.stdin?.end();
  // s_client may exit 1 after the handshake (the gRPC server drops the idle connection without close_notify).
  const shown = await sclient.catch((e: { stdout: string; stderr: string }) => e);
  assert.match(`${shown.stdout}${shown.stderr}`, /Verification: OK/);

  const token = await tokenCreate(dataDir, 'web');
  const cert = await requestCertificate({ address: cp.address, token });
  assert.equal(cert.spiffeId, WEB_ID);
  assert.equal(new X509Certificate(cert.certChainPem).subjectAltName, `URI:${WEB_ID}`);
  assert.equal(cert.rootsPem, readFileSync(rootsFile, 'utf8'));
  assert.match(await opensslVerify(rootsFile, cert.certChainPem), /: OK/);
  assert.ok(cert.notAfter.getTime() - Date.now() <= 24 * 3600_000, 'at most the default 24 h');

  // A token for another service account cannot get web's certificate.
  const admin = await tokenCreate(dataDir, 'admin');
  const denied = await refused(
    requestCertificate({
      address: cp.address,
      token: admin,
      identity: { namespace: 'shop', serviceAccount: 'web' },
    }),
  );
  assert.equal(denied.grpcCode, 7, denied.message);
  assert.match(denied.message, /REMORA_ERR_CA_IDENTITY_MISMATCH/);
  await until('the refusal in the log', () =>
    /refused a certificate to 127\.0\.0\.1:\d+ \(join token [0-9a-f]+\): .*sa\/web.*\[REMORA_ERR_CA_IDENTITY_MISMATCH\]/.test(
      cp.output(),
    ),
  );

  // A client that pins another key never sends its token.
  const pinned = await refused(
    requestCertificate({ address: cp.address, token: admin, caPin: `sha256:${'1'.repeat(64)}` }),
  );
  assert.equal(pinned.code, 'REMORA_ERR_IDENTITY_PIN_MISMATCH');

  // The debug port counts what the CA did: one certificate, one identity refused (the pinned client never asked).
  const metrics = await cp.metrics();
  assert.match(metrics, /^remora_ca_csr_total 2$/m);
  assert.match(metrics, /^remora_ca_cert_issued_total 1$/m);
  assert.match(metrics, /^remora_ca_identity_denied_total 1$/m);
  assert.match(metrics, /^remora_ca_authn_failure_total 0$/m);

  // A bounded token, made before the restart, is still good after it; the root is the same.
  const twice = await tokenCreate(dataDir, 'web', '--uses', '2', '--ttl', '10m');
  await stop(cp);
  const again = await startControlPlane(dataDir);
  assert.equal(again.pin, cp.pin, 'the same root after a restart');
  assert.match(
    await opensslVerify(rootsFile, cert.certChainPem),
    /: OK/,
    'certificates issued before still verify',
  );
  for (let i = 0; i < 2; i++)
    assert.equal((await requestCertificate({ address: again.address, token: twice })).spiffeId, WEB_ID);
  const spent = await refused(requestCertificate({ address: again.address, token: twice }));
  assert.equal(spent.grpcCode, 16);
  assert.match(spent.message, /REMORA_ERR_CA_TOKEN_USED_UP/);
  // The first token was single-use, and its use was kept on disk.
  assert.match(
    (await refused(requestCertificate({ address: again.address, token }))).message,
    /TOKEN_USED_UP/,
  );
  await stop(again);
});

test('Kubernetes service-account tokens are checked with a TokenReview (against a FAKE API server)', async () => {
  const api = new FakeKubeApi();
  await api.start();
  try {
    const kubeconfig = api.writeKubeconfig(tmp);
    const dataDir = join(tmp, 'data-kube');
    const cp = await startControlPlane(dataDir, ['--kubeconfig', kubeconfig]);
    const rootsPem = readFileSync(join(dataDir, 'ca', 'roots.pem'), 'utf8');

    const web = api.issueServiceAccountToken('shop', 'web', { audiences: ['istio-ca'] });
    const cert = await requestCertificate({ address: cp.address, token: web, rootsPem });
    assert.equal(cert.spiffeId, WEB_ID, 'the identity read from the token, and proved by the review');
    assert.match(await opensslVerify(join(dataDir, 'ca', 'roots.pem'), cert.certChainPem), /: OK/);
    assert.ok(api.count('tokenreview') >= 1);

    const other = await refused(
      requestCertificate({
        address: cp.address,
        token: web,
        rootsPem,
        identity: { namespace: 'shop', serviceAccount: 'admin' },
      }),
    );
    assert.equal(other.grpcCode, 7);

    const wrongAudience = api.issueServiceAccountToken('shop', 'web');
    const r = await refused(requestCertificate({ address: cp.address, token: wrongAudience, rootsPem }));
    assert.equal(r.grpcCode, 16);
    assert.match(
      r.message,
      /REMORA_ERR_CA_BAD_CREDENTIAL: the Kubernetes API server does not accept the token: .*audiences/,
    );

    const expired = api.issueServiceAccountToken('shop', 'web', { audiences: ['istio-ca'], ttlSeconds: -1 });
    assert.match(
      (await refused(requestCertificate({ address: cp.address, token: expired, rootsPem }))).message,
      /expired/,
    );
    await until(
      'the refusals in the log',
      () => (cp.output().match(/refused a certificate to .*\(a Kubernetes token\)/g) ?? []).length >= 3,
    );
    await stop(cp);
  } finally {
    await api.stop();
  }
});

test('without a data dir the CA does not start: said in the log, or exit 2 when a CA flag asks for it', async () => {
  const plain = runRemora([
    'control-plane',
    '--config-dir',
    join(tmp, 'config'),
    '--xds-port',
    '0',
    '--debug-port',
    '0',
  ]);
  procs.push(plain);
  await until('the control plane to start', () => /xDS on/.test(plain.output()), 30_000);
  assert.match(plain.output(), /\[info\] CA not started: the CA needs a place for its root: give --data-dir/);
  assert.doesNotMatch(plain.output(), /CA on/);
  await stop(plain);

  const asked = runRemora([
    'control-plane',
    '--config-dir',
    join(tmp, 'config'),
    '--xds-port',
    '0',
    '--debug-port',
    '0',
    '--ca-port',
    '0',
  ]);
  procs.push(asked);
  assert.equal(await asked.exited, 2);
  assert.match(
    asked.output(),
    /remora control-plane: --ca-port given, but the CA needs a place for its root/,
  );
});
