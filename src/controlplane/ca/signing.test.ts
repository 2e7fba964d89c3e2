// The signing rules: a CSR is signed only for exactly the SPIFFE ID its caller proved, only as a leaf, for at most
// the CA's lifetime; the leaf has the documented shape (checked by openssl) and a fresh serial.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { makeKeyAndCsr } from '../../identity/csr.js';
import * as x509 from '../../identity/x509.js';
import { DataDir } from '../state/data_dir.js';
import type { CertificateAuthority } from './authority.js';
import { checkCsr } from './csr_check.js';
import { CaRefusal, Refusals } from './errors.js';
import { openAuthority } from './load.js';

const run = promisify(execFile);
const ID = 'spiffe://cluster.local/ns/shop/sa/web';
const HOUR = 3600_000;
let tmp: string;
let ca: CertificateAuthority;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'remora-ca-signing-'));
  ca = await openAuthority({
    dataDir: await DataDir.open(join(tmp, 'data')),
    trustDomain: 'cluster.local',
    maxTtlMs: HOUR,
    log: () => undefined,
  });
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** A CSR with exactly the given extensions, signed with a fresh P-256 key. */
async function csrWith(
  extensions: x509.Extension[],
  keyAlgorithm: EcKeyGenParams | RsaHashedKeyGenParams = EC,
) {
  const keys = (await webcrypto.subtle.generateKey(keyAlgorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const signingAlgorithm = keyAlgorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : keyAlgorithm;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    { keys, signingAlgorithm, extensions, name: 'CN=ignored' },
    webcrypto as unknown as Crypto,
  );
  return csr.toString('pem');
}

const san = (...names: x509.JsonGeneralName[]) => new x509.SubjectAlternativeNameExtension(names);

async function refusal(csr: string, expected = ID): Promise<CaRefusal> {
  try {
    await checkCsr(csr, expected);
  } catch (err) {
    assert.ok(err instanceof CaRefusal, String(err));
    return err;
  }
  assert.fail('the CSR was accepted');
}

test('a CSR for exactly the proven SPIFFE ID is signed into a leaf of the documented shape', async () => {
  const { csrPem } = await makeKeyAndCsr(ID);
  const key = await checkCsr(csrPem, ID);
  const issued = await ca.issueWorkload(key, ID, 0);
  assert.equal(issued.certChain.length, 2, 'leaf, then the root');
  assert.equal(issued.certChain[1], ca.roots[0]!.toString());
  writeFileSync(join(tmp, 'leaf.pem'), issued.certChain[0]!);
  writeFileSync(join(tmp, 'roots.pem'), ca.rootsPem);
  assert.match(
    (await run('openssl', ['verify', '-CAfile', join(tmp, 'roots.pem'), join(tmp, 'leaf.pem')])).stdout,
    /OK/,
  );
  const text = (await run('openssl', ['x509', '-in', join(tmp, 'leaf.pem'), '-noout', '-text'])).stdout;
  assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
  assert.match(text, /Key Usage: critical\s+Digital Signature, Key Encipherment/);
  assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
  assert.match(
    text,
    /Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web\n/,
  );
  assert.match(text, /Subject: *\n/, 'no subject: the identity is the SAN');
  const other = await ca.issueWorkload(key, ID, 0);
  assert.notEqual(other.leaf.serialNumber, issued.leaf.serialNumber);
  assert.ok(issued.leaf.serialNumber.length >= 30, issued.leaf.serialNumber);
});

test('a CSR made by openssl is signed when it asks for the right URI, refused with an extra DNS name', async () => {
  const key = join(tmp, 'openssl.key');
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  const req = (sans: string) =>
    run('openssl', [
      'req',
      '-new',
      '-key',
      key,
      '-subj',
      '/CN=web',
      '-addext',
      `subjectAltName=${sans}`,
    ]).then((r) => r.stdout);
  await checkCsr(await req(`URI:${ID}`), ID);
  const r = await refusal(await req(`URI:${ID},DNS:web.shop.svc`));
  assert.equal(r.kind, Refusals.identityMismatch);
  assert.match(r.message, /DNS:web\.shop\.svc/);
});

test('another SPIFFE ID, several SANs, or none are refused as identity mismatches', async () => {
  const other = await refusal(
    await csrWith([san({ type: 'url', value: 'spiffe://cluster.local/ns/shop/sa/admin' })]),
  );
  assert.equal(other.kind, Refusals.identityMismatch);
  assert.match(
    other.message,
    /asks for URL:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/admin; the credential proves spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web/,
  );
  const two = await refusal(
    await csrWith([
      san({ type: 'url', value: ID }, { type: 'url', value: 'spiffe://cluster.local/ns/shop/sa/admin' }),
    ]),
  );
  assert.equal(two.kind, Refusals.identityMismatch);
  const ip = await refusal(
    await csrWith([san({ type: 'url', value: ID }, { type: 'ip', value: '10.0.0.1' })]),
  );
  assert.equal(ip.kind, Refusals.identityMismatch);
  const none = await refusal(await csrWith([]));
  assert.equal(none.kind, Refusals.identityMismatch);
  const otherDomain = await refusal(
    await csrWith([san({ type: 'url', value: 'spiffe://evil.example/ns/shop/sa/web' })]),
  );
  assert.equal(otherDomain.kind, Refusals.identityMismatch);
});

test('a CSR asking to be a CA is refused', async () => {
  const r = await refusal(
    await csrWith([san({ type: 'url', value: ID }), new x509.BasicConstraintsExtension(true, 0, true)]),
  );
  assert.equal(r.kind, Refusals.caRequested);
  assert.equal(r.kind.grpc, 7);
});

test('a CSR with a broken signature, garbage, or a weak key is refused as invalid', async () => {
  const good = await csrWith([san({ type: 'url', value: ID })]);
  const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  der[der.length - 3] = der[der.length - 3]! ^ 0x01;
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  assert.equal((await refusal(tampered)).kind, Refusals.badCsr);
  assert.equal((await refusal('not a csr')).kind, Refusals.badCsr);
  assert.equal((await refusal(`${good}${good}`)).kind, Refusals.badCsr);
  const rsa1024 = await csrWith([san({ type: 'url', value: ID })], {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 1024,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  });
  const weak = await refusal(rsa1024);
  assert.equal(weak.kind, Refusals.badCsr);
  assert.match(weak.message, /1024 bits/);
  const rsa2048 = await csrWith([san({ type: 'url', value: ID })], {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  });
  await checkCsr(rsa2048, ID);
});

test('a lifetime longer than the maximum is cut to it; a shorter one is honoured', async () => {
  const { csrPem } = await makeKeyAndCsr(ID);
  const key = await checkCsr(csrPem, ID);
  const life = (c: { leaf: { validTo: string } }) => Date.parse(c.leaf.validTo) - Date.now();
  const long = await ca.issueWorkload(key, ID, 10 * 24 * 3600);
  assert.ok(life(long) <= HOUR && life(long) > HOUR - 60_000, `${life(long)} ms`);
  const short = await ca.issueWorkload(key, ID, 120);
  assert.ok(life(short) <= 120_000 && life(short) > 60_000, `${life(short)} ms`);
  const byDefault = await ca.issueWorkload(key, ID, 0);
  assert.ok(life(byDefault) > HOUR - 60_000, `${life(byDefault)} ms`);
  assert.ok(
    Date.parse(short.leaf.validFrom) <= Date.now(),
    'valid from now (backdated a little for clock skew)',
  );
  assert.ok(readFileSync(join(tmp, 'roots.pem'), 'utf8').includes('BEGIN CERTIFICATE'));
});
