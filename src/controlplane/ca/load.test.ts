// Where the CA's key comes from: a root or an intermediate from the operator's files (made here by openssl), with
// the chain up to an external root; extra roots added to the bundle for a rotation; nothing at all refused.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { makeKeyAndCsr } from '../../identity/csr.js';
import { spkiPin } from '../../identity/pem.js';
import { DataDir } from '../state/data_dir.js';
import { checkCsr } from './csr_check.js';
import { createRootCertificate } from './issue.js';
import { generateRootKey } from './keys.js';
import { type AuthoritySource, NoCaHomeError, openAuthority, readCaInfo } from './load.js';

const run = promisify(execFile);
const ID = 'spiffe://example.org/ns/shop/sa/web';
let tmp: string;
const f = (name: string) => join(tmp, name);

const EXT = `[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
`;

async function key(name: string): Promise<void> {
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f(name)]);
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'remora-ca-load-'));
  writeFileSync(f('ext.cnf'), EXT);
  for (const k of ['root.key', 'inter.key', 'leaf.key', 'other.key']) await key(k);
  const selfSigned = (k: string, cn: string, out: string) =>
    run('openssl', [
      'req',
      '-x509',
      '-new',
      '-key',
      f(k),
      '-subj',
      `/CN=${cn}`,
      '-days',
      '3650',
      '-config',
      f('ext.cnf'),
      '-extensions',
      'ca',
      '-out',
      f(out),
    ]);
  await selfSigned('root.key', 'External Root', 'root.pem');
  await selfSigned('other.key', 'Other Root', 'other.pem');
  const signed = async (k: string, cn: string, ext: string, out: string) => {
    await run('openssl', ['req', '-new', '-key', f(k), '-subj', `/CN=${cn}`, '-out', f(`${out}.csr`)]);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      f(`${out}.csr`),
      '-CA',
      f('root.pem'),
      '-CAkey',
      f('root.key'),
      '-CAcreateserial',
      '-days',
      '365',
      '-extfile',
      f('ext.cnf'),
      '-extensions',
      ext,
      '-out',
      f(out),
    ]);
  };
  await signed('inter.key', 'Mesh Intermediate', 'ca', 'inter.pem');
  await signed('leaf.key', 'Not A CA', 'leaf', 'leaf.pem');
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const base = { trustDomain: 'example.org', maxTtlMs: 3600_000, log: () => undefined };

async function open(extra: Partial<AuthoritySource>) {
  return openAuthority({ ...base, ...extra });
}

test('an intermediate under an external root signs; the external root is what is distributed', async () => {
  const dataDir = await DataDir.open(f('data-inter'));
  const ca = await open({ caCert: f('inter.pem'), caKey: f('inter.key'), caChain: f('root.pem'), dataDir });
  assert.equal(ca.roots.length, 1);
  assert.equal(ca.roots[0]!.subject, 'CN=External Root');
  assert.equal(ca.rootPin, spkiPin(new X509Certificate(readFileSync(f('root.pem')))));
  const { csrPem } = await makeKeyAndCsr(ID);
  const issued = await ca.issueWorkload(await checkCsr(csrPem, ID), ID, 0);
  assert.deepEqual(
    issued.certChain.map((p) => new X509Certificate(p).subject ?? ''),
    ['', 'CN=Mesh Intermediate', 'CN=External Root'],
    'leaf, intermediate, root',
  );
  writeFileSync(f('issued-leaf.pem'), issued.certChain[0]!);
  writeFileSync(f('issued-inter.pem'), issued.certChain[1]!);
  const verified = await run('openssl', [
    'verify',
    '-CAfile',
    f('root.pem'),
    '-untrusted',
    f('issued-inter.pem'),
    f('issued-leaf.pem'),
  ]);
  assert.match(verified.stdout, /OK/);
  assert.equal(readFileSync(join(dataDir.caDir, 'roots.pem'), 'utf8'), readFileSync(f('root.pem'), 'utf8'));
  const info = await readCaInfo(dataDir);
  assert.equal(info.trustDomain, 'example.org');
  assert.equal(info.rootPin, ca.rootPin);
});

test("the operator's self-signed root signs directly, without a data dir", async () => {
  const ca = await open({ caCert: f('root.pem'), caKey: f('root.key') });
  assert.equal(ca.issuerChain().length, 0);
  const { csrPem } = await makeKeyAndCsr(ID);
  const issued = await ca.issueWorkload(await checkCsr(csrPem, ID), ID, 0);
  assert.equal(issued.certChain.length, 2);
});

test('unusable files are refused, each saying why', async () => {
  await assert.rejects(
    open({ caCert: f('inter.pem'), caKey: f('inter.key') }),
    /is an intermediate .*give --ca-chain/,
  );
  await assert.rejects(
    open({ caCert: f('inter.pem'), caKey: f('inter.key'), caChain: f('other.pem') }),
    /--ca-chain .* does not lead to a root/,
  );
  await assert.rejects(
    open({ caCert: f('inter.pem'), caKey: f('root.key'), caChain: f('root.pem') }),
    /is not the key of --ca-cert/,
  );
  await assert.rejects(
    open({ caCert: f('leaf.pem'), caKey: f('leaf.key'), caChain: f('root.pem') }),
    /is not a CA certificate/,
  );
  await assert.rejects(open({ caCert: f('root.pem') }), /--ca-cert and --ca-key go together/);
  await assert.rejects(open({ caCert: f('ext.cnf'), caKey: f('root.key') }), /no PEM certificate/);
});

test('without a data dir or files there is no CA', async () => {
  await assert.rejects(
    open({}),
    (err: unknown) => err instanceof NoCaHomeError && /--data-dir/.test(err.message),
  );
});

test('extra roots in DIR/ca/extra-roots.pem join the bundle; expired ones are left out with a warning', async () => {
  const dataDir = await DataDir.open(f('data-extra'));
  const logs: string[] = [];
  const log = (level: string, message: string) => logs.push(`${level} ${message}`);
  const first = await open({ dataDir, log });
  assert.equal(first.roots.length, 1);
  const { key, publicKey } = await generateRootKey();
  const expired = await createRootCertificate(
    key,
    publicKey,
    'example.org',
    new Date(Date.now() - 11 * 365 * 86400_000),
  );
  writeFileSync(
    join(dataDir.caDir, 'extra-roots.pem'),
    `${readFileSync(f('other.pem'), 'utf8')}${expired.toString()}`,
  );
  const ca = await open({ dataDir, log });
  assert.equal(
    ca.roots[0]!.fingerprint256,
    first.roots[0]!.fingerprint256,
    'the generated root stays active',
  );
  assert.deepEqual(
    ca.roots.map((r) => r.subject),
    [first.roots[0]!.subject, 'CN=Other Root'],
  );
  assert.ok(
    logs.some((l) => /^warning .*left out of the trust bundle: expired/.test(l)),
    logs.join('\n'),
  );
  const published = readFileSync(join(dataDir.caDir, 'roots.pem'), 'utf8');
  assert.equal(published.match(/BEGIN CERTIFICATE/g)?.length, 2);
  const { csrPem } = await makeKeyAndCsr(ID);
  const issued = await ca.issueWorkload(await checkCsr(csrPem, ID), ID, 0);
  assert.equal(issued.certChain.length, 3, 'leaf, then both roots of the bundle');
});

test('the documented root rotation keeps every certificate in use verifiable at every step', async () => {
  const dataDir = await DataDir.open(f('data-rotation'));
  const caDir = dataDir.caDir;
  const verify = async (roots: string, leaf: string) => {
    writeFileSync(f('rot-roots.pem'), roots);
    writeFileSync(f('rot-leaf.pem'), leaf);
    return run('openssl', ['verify', '-CAfile', f('rot-roots.pem'), f('rot-leaf.pem')]).then(
      (r) => r.stdout.includes('OK'),
      () => false,
    );
  };
  const issue = async (ca: Awaited<ReturnType<typeof open>>) => {
    const { csrPem } = await makeKeyAndCsr(ID);
    return (await ca.issueWorkload(await checkCsr(csrPem, ID), ID, 0)).certChain[0]!;
  };
  const old = await open({ dataDir });
  const oldLeaf = await issue(old);
  // The new root, made with the openssl commands of docs/security.md.
  const sh = (cmd: string) => run('sh', ['-c', cmd], { cwd: tmp });
  await sh(
    'openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out new-key.pem',
  );
  await sh(
    "openssl req -x509 -new -key new-key.pem -out new-cert.pem -days 3650 -subj '/O=example.org/CN=Remora root CA' " +
      "-addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature' " +
      "-addext 'subjectAltName=URI:spiffe://example.org'",
  );
  // 1. Trust the new root beside the old.
  writeFileSync(join(caDir, 'extra-roots.pem'), readFileSync(f('new-cert.pem')));
  const step1 = await open({ dataDir });
  assert.equal(step1.roots.length, 2);
  assert.equal(step1.rootPin, old.rootPin, 'still signing with the old root');
  const step1Leaf = await issue(step1);
  // 2. Sign with the new root; the old one stays trusted.
  rmSync(join(caDir, 'root'), { recursive: true });
  mkdirSync(join(caDir, 'root'), { mode: 0o700 });
  copyFileSync(f('new-cert.pem'), join(caDir, 'root', 'cert.pem'));
  copyFileSync(f('new-key.pem'), join(caDir, 'root', 'key.pem'));
  writeFileSync(join(caDir, 'extra-roots.pem'), old.roots[0]!.toString());
  const step2 = await open({ dataDir });
  assert.equal(step2.rootPin, spkiPin(new X509Certificate(readFileSync(f('new-cert.pem')))));
  const newLeaf = await issue(step2);
  for (const leaf of [oldLeaf, step1Leaf, newLeaf]) assert.ok(await verify(step2.rootsPem, leaf));
  assert.ok(
    await verify(step1.rootsPem, newLeaf),
    'sidecars still on the step-1 bundle trust the new leaves',
  );
  // 3. Stop trusting the old root.
  rmSync(join(caDir, 'extra-roots.pem'));
  const step3 = await open({ dataDir });
  assert.equal(step3.roots.length, 1);
  assert.ok(await verify(step3.rootsPem, newLeaf));
  assert.equal(await verify(step3.rootsPem, oldLeaf), false);
});
