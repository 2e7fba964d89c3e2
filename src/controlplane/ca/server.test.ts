// The CA service over real gRPC and TLS with the identity client: a join token gets one certificate for its own
// SPIFFE ID; a used-up token, no credential, another identity, impersonation and a certificate of another CA are
// refused with their gRPC statuses and logged; a client pinning another key sends nothing; a certificate renews
// itself over mTLS.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import {
  type CertificateResponse,
  CREATE_CERTIFICATE_PATH,
  certificateService,
} from '../../identity/ca_proto.js';
import { IdentityError, requestCertificate, type WorkloadCertificate } from '../../identity/client.js';
import { makeKeyAndCsr } from '../../identity/csr.js';
import { DataDir } from '../state/data_dir.js';
import type { CertificateAuthority } from './authority.js';
import { checkCsr } from './csr_check.js';
import { openAuthority } from './load.js';
import type { CaServer } from './server.js';
import { listenTestCa } from './test_support.js';
import { JoinTokenStore } from './tokens.js';

const run = promisify(execFile);
const WEB = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web' };
const WEB_ID = 'spiffe://cluster.local/ns/shop/sa/web';
let tmp: string;
let ca: CertificateAuthority;
let tokens: JoinTokenStore;
let server: CaServer;
let address: string;
const logs: string[] = [];

async function authority(dir: string): Promise<CertificateAuthority> {
  return openAuthority({
    dataDir: await DataDir.open(dir),
    trustDomain: 'cluster.local',
    maxTtlMs: 3600_000,
    log: () => undefined,
  });
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'remora-ca-server-'));
  ca = await authority(join(tmp, 'data'));
  tokens = new JoinTokenStore((await DataDir.open(join(tmp, 'data'))).tokensDir);
  server = await listenTestCa(ca, tokens, (level, message) => logs.push(`${level} ${message}`));
  address = `127.0.0.1:${server.port}`;
});
after(async () => {
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function token(uses = 1): Promise<string> {
  return (await tokens.create({ identity: WEB, ttlMs: 600_000, uses, caPin: ca.rootPin })).token;
}

async function refusal(p: Promise<unknown>): Promise<IdentityError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof IdentityError, String(err));
    return err;
  }
  assert.fail('a certificate was issued');
}

/** CreateCertificate as any Istio client sends it, with the given metadata and no client certificate. */
function rawCall(csr: string, metadata: grpc.Metadata, extra: object = {}): Promise<CertificateResponse> {
  const client = new grpc.Client(address, grpc.credentials.createSsl(Buffer.from(ca.rootsPem)));
  const m = certificateService().CreateCertificate!;
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      CREATE_CERTIFICATE_PATH,
      m.requestSerialize,
      m.responseDeserialize,
      { csr, validity_duration: 600, ...extra },
      metadata,
      (err, v) => {
        client.close();
        if (err) reject(err);
        else resolve(v as CertificateResponse);
      },
    ),
  );
}

let first: WorkloadCertificate;

test('a join token gets a certificate for its SPIFFE ID, chained to the distributed root; only once', async () => {
  const t = await token();
  first = await requestCertificate({ address, token: t, validitySeconds: 600 });
  assert.equal(first.spiffeId, WEB_ID);
  const leaf = new X509Certificate(first.certChainPem);
  assert.equal(leaf.subjectAltName, `URI:${WEB_ID}`);
  assert.ok(leaf.checkPrivateKey(createPrivateKey(first.keyPem)), 'the key made by the client');
  assert.equal(first.rootsPem, ca.rootsPem);
  assert.ok(first.notAfter.getTime() - Date.now() <= 600_000);
  writeFileSync(join(tmp, 'leaf.pem'), first.certChainPem);
  writeFileSync(join(tmp, 'roots.pem'), first.rootsPem);
  assert.match(
    (await run('openssl', ['verify', '-CAfile', join(tmp, 'roots.pem'), join(tmp, 'leaf.pem')])).stdout,
    /OK/,
  );
  assert.ok(
    logs.some((l) => l.startsWith(`info CA: issued ${WEB_ID} serial ${leaf.serialNumber}`)),
    logs.join('\n'),
  );

  const again = await refusal(requestCertificate({ address, token: t }));
  assert.equal(again.grpcCode, grpc.status.UNAUTHENTICATED);
  assert.match(again.message, /REMORA_ERR_CA_TOKEN_USED_UP/);
  assert.ok(
    logs.some((l) =>
      /^warning CA: refused a certificate to 127\.0\.0\.1:\d+ \(join token [0-9a-f]{16}\): .*used 1 time.*\[REMORA_ERR_CA_TOKEN_USED_UP\]/.test(
        l,
      ),
    ),
    logs.join('\n'),
  );
});

test('a CSR for another service account is refused with PERMISSION_DENIED, and does not spend the token', async () => {
  const t = await token();
  const r = await refusal(
    requestCertificate({ address, token: t, identity: { namespace: 'shop', serviceAccount: 'admin' } }),
  );
  assert.equal(r.grpcCode, grpc.status.PERMISSION_DENIED);
  assert.match(
    r.message,
    /REMORA_ERR_CA_IDENTITY_MISMATCH: .*sa\/admin.*proves spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web/,
  );
  assert.ok(logs.some((l) => /^warning CA: refused .*IDENTITY_MISMATCH/.test(l)));
  assert.equal((await requestCertificate({ address, token: t })).spiffeId, WEB_ID);
});

test('no credential, a garbage token, or impersonation is refused', async () => {
  const { csrPem } = await makeKeyAndCsr(WEB_ID);
  await assert.rejects(rawCall(csrPem, new grpc.Metadata()), (e: grpc.ServiceError) => {
    assert.equal(e.code, grpc.status.UNAUTHENTICATED);
    assert.match(e.details, /^REMORA_ERR_CA_NO_CREDENTIAL: no credential/);
    return true;
  });
  const garbage = new grpc.Metadata();
  garbage.set('authorization', 'Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln');
  await assert.rejects(rawCall(csrPem, garbage), (e: grpc.ServiceError) => {
    assert.equal(e.code, grpc.status.UNAUTHENTICATED);
    assert.match(e.details, /Kubernetes tokens are not accepted: the control plane has no --kubeconfig/);
    return true;
  });
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${await token()}`);
  const impersonate = {
    metadata: {
      fields: { ImpersonatedIdentity: { stringValue: 'spiffe://cluster.local/ns/kube-system/sa/admin' } },
    },
  };
  await assert.rejects(rawCall(csrPem, md, impersonate), (e: grpc.ServiceError) => {
    assert.equal(e.code, grpc.status.PERMISSION_DENIED);
    assert.match(e.details, /impersonation/);
    return true;
  });
  // The same request without it is served as Istio's clients expect: leaf first, root last, one PEM each.
  const ok = await rawCall(csrPem, md);
  assert.equal(ok.cert_chain.length, 2);
  assert.equal(ok.cert_chain[1], ca.roots[0]!.toString());
});

test('a client pinning another key refuses to talk to the CA, which never sees the request', async () => {
  const t = await token();
  const before = server.stats().csr_total;
  const r = await refusal(requestCertificate({ address, token: t, caPin: `sha256:${'0'.repeat(64)}` }));
  assert.equal(r.code, 'REMORA_ERR_IDENTITY_PIN_MISMATCH');
  assert.match(
    r.message,
    new RegExp(`shows no certificate with the pinned key .* \\(it shows .*${ca.rootPin}`),
  );
  assert.equal(server.stats().csr_total, before);
  assert.equal((await requestCertificate({ address, token: t })).spiffeId, WEB_ID, 'the token was not spent');
});

test('a certificate renews itself over mTLS; one from another CA is no credential', async () => {
  const renewed = await requestCertificate({
    address,
    currentCertificate: { certChainPem: first.certChainPem, keyPem: first.keyPem },
    rootsPem: first.rootsPem,
  });
  assert.equal(renewed.spiffeId, WEB_ID);
  assert.notEqual(renewed.serialNumber, first.serialNumber);
  assert.notEqual(renewed.keyPem, first.keyPem);
  assert.ok(
    logs.some((l) => l.includes(`(client certificate ${first.serialNumber})`)),
    logs.join('\n'),
  );

  const other = await authority(join(tmp, 'other'));
  const made = await makeKeyAndCsr(WEB_ID);
  const foreign = await other.issueWorkload(await checkCsr(made.csrPem, WEB_ID), WEB_ID, 600);
  const stranger = await refusal(
    requestCertificate({
      address,
      currentCertificate: { certChainPem: foreign.certChain[0]!, keyPem: made.keyPem },
      rootsPem: ca.rootsPem,
    }),
  );
  assert.equal(stranger.grpcCode, grpc.status.UNAUTHENTICATED, stranger.message);
  assert.match(stranger.message, /REMORA_ERR_CA_NO_CREDENTIAL/);
});
