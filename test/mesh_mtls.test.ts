// Automatic mTLS, every part real: a `remora control-plane` with its CA, two `remora proxy` sidecars that get
// their workload certificates with join tokens and their config by ADS (no capture: each bound to its own loopback
// address), apps A (namespace frontend) and B (namespace backend). A's sidecar originates mTLS to B's, which
// terminates it per PeerAuthentication (PERMISSIVE, then STRICT) and enforces AuthorizationPolicies on the verified
// peer identity; openssl, curl and Node's TLS client play the outsiders.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { requestCertificate } from '../src/identity/client.js';
import { type Certs, makeCerts } from './support/certs.js';
import { curl } from './support/clients.js';
import { createJoinToken } from './support/join_token.js';
import {
  eventually,
  FQDN_B,
  type MtlsMesh,
  opensslClient,
  SPIFFE_A,
  SPIFFE_B,
  startMtlsMesh,
} from './support/mtls_mesh.js';

let mesh: MtlsMesh;
let certs: Certs;

const strict = {
  apiVersion: 'security.istio.io/v1',
  kind: 'PeerAuthentication',
  metadata: { name: 'default', namespace: 'backend' },
  spec: { mtls: { mode: 'STRICT' } },
};

before(async () => {
  certs = await makeCerts();
  mesh = await startMtlsMesh();
});

after(async () => {
  await mesh?.close();
  await certs?.close();
});

const callB = (path?: string, method?: string) => mesh.callB(path, method);

/** An HTTP/1.1 GET over TLS to B's inbound listener as an outsider would send it; the status, or the failure. */
function tlsGet(opts: { alpn?: string[]; cert?: string; key?: string }): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({
      host: '127.0.0.3',
      port: mesh.appB.port,
      rejectUnauthorized: false,
      ALPNProtocols: opts.alpn,
      cert: opts.cert,
      key: opts.key,
    });
    let data = '';
    s.setEncoding('utf8');
    s.on('secureConnect', () => s.write(`GET / HTTP/1.1\r\nhost: ${FQDN_B}\r\nconnection: close\r\n\r\n`));
    s.on('data', (c: string) => {
      data += c;
    });
    s.on('error', (e) => resolve(`error: ${e.message}`));
    s.on('close', () => resolve(data === '' ? 'closed' : (data.split('\r\n')[0] ?? '')));
  });
}

/** openssl s_client to B's inbound listener with `args`, a GET on stdin; its whole output. */
function opensslGet(args: readonly string[]): Promise<string> {
  const get = `GET / HTTP/1.1\r\nhost: ${FQDN_B}\r\nconnection: close\r\n\r\n`;
  return opensslClient('127.0.0.3', mesh.appB.port, args, get);
}

test('A reaches B through both sidecars over mTLS: B presents its SPIFFE identity, A is verified as its own', async () => {
  await eventually('A to reach B', async () => (await callB()).status === 200);
  const reply = JSON.parse((await callB('/hello')).body) as {
    name: string;
    url: string;
    headers: Record<string, string>;
  };
  assert.deepEqual([reply.name, reply.url], ['b', '/hello']);
  // B's sidecar tells B who called, from the client certificate A's sidecar presented on that connection.
  const xfcc = reply.headers['x-forwarded-client-cert'] ?? '';
  assert.match(xfcc, new RegExp(`^By=${SPIFFE_B};Hash=[0-9a-f]{64};Subject="[^"]*";URI=${SPIFFE_A}$`), xfcc);

  // B's inbound listener, as a mesh client sees it: its certificate carries B's SPIFFE ID from the mesh's CA.
  const out = await opensslGet(['-alpn', 'istio-http/1.1', '-showcerts']);
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)?.[0];
  assert.ok(pem, out);
  const cert = new X509Certificate(pem);
  assert.equal(cert.subjectAltName, `URI:${SPIFFE_B}`);

  // A's cluster for B took TLS for B's endpoint (its metadata says it speaks mTLS), and handshakes happened.
  const stats = await (await fetch(`${mesh.a.adminUrl}/stats`)).text();
  const handshakes = new RegExp(
    `cluster\\.outbound\\|${mesh.svcPort}\\|\\|${FQDN_B.replace(/\./g, '\\.')}\\.ssl\\.handshake: (\\d+)`,
  ).exec(stats);
  assert.ok(handshakes && Number(handshakes[1]) > 0, stats);

  // B's sidecar counts the request under A's identity, over mutual TLS (Istio's standard metric).
  const metrics = await (await fetch(`${mesh.b.adminUrl}/stats/prometheus`)).text();
  const series = metrics
    .split('\n')
    .filter((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="destination"'));
  assert.ok(
    series.some(
      (l) =>
        l.includes(`source_principal="${SPIFFE_A}"`) &&
        l.includes(`destination_principal="${SPIFFE_B}"`) &&
        l.includes('connection_security_policy="mutual_tls"') &&
        l.includes('response_code="200"'),
    ),
    series.join('\n'),
  );
});

test('PERMISSIVE (the default): plaintext and mTLS both reach B on the same port', async () => {
  const plain = await curl([`http://127.0.0.3:${mesh.appB.port}/plain`, '-H', `host: ${FQDN_B}`]);
  assert.equal(plain.status, 200);
  assert.equal((await callB('/mtls')).status, 200);
  const metrics = await (await fetch(`${mesh.b.adminUrl}/stats/prometheus`)).text();
  assert.match(
    metrics,
    /istio_requests_total\{[^}]*source_principal="unknown"[^}]*connection_security_policy="none"/,
  );
});

test('STRICT: plaintext and TLS without a mesh certificate are refused; the mesh path keeps working', async () => {
  mesh.writeMesh([strict]);
  await eventually('plaintext to be refused', async () => {
    try {
      await curl([`http://127.0.0.3:${mesh.appB.port}/`, '-H', `host: ${FQDN_B}`]);
      return false;
    } catch {
      return true;
    }
  });
  const seen = mesh.appB.requests.length;
  // openssl without a client certificate: the handshake is refused, no request gets through.
  const noCert = await opensslGet(['-alpn', 'istio-http/1.1']);
  assert.doesNotMatch(noCert, /HTTP\/1\.1 200/, noCert);
  assert.match(noCert, /alert|error|errno/i, noCert);
  // TLS without the mesh's ALPN matches no chain at all.
  assert.match(await tlsGet({}), /^(closed|error)/);
  // A certificate for the right identity from another CA.
  const foreign = await certs.issueLeaf('foreign', 77, { issuer: certs.otherCa, kind: 'client' });
  assert.match(
    await tlsGet({ alpn: ['istio-http/1.1'], cert: foreign.cert, key: foreign.key }),
    /^(closed|error)/,
  );
  assert.equal(mesh.appB.requests.length, seen, 'nothing refused reached B');
  // A certificate from the mesh's CA is let in; and A's sidecar still gets through.
  const meshCert = await requestCertificate({
    address: mesh.caAddress,
    token: (await createJoinToken(mesh.dataDir, 'tools', 'probe')).token,
  });
  assert.match(
    await tlsGet({ alpn: ['istio-http/1.1'], cert: meshCert.certChainPem, key: meshCert.keyPem }),
    /^HTTP\/1\.1 200/,
  );
  assert.equal((await callB('/strict')).status, 200);
});

test('authorization over mTLS: "only GET /api/* from namespace frontend" and "deny /admin for everyone"', async () => {
  const onlyFrontend = {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'api-from-frontend', namespace: 'backend' },
    spec: {
      selector: { matchLabels: { app: 'b' } },
      action: 'ALLOW',
      rules: [
        {
          from: [{ source: { namespaces: ['frontend'] } }],
          to: [{ operation: { methods: ['GET'], paths: ['/api/*'] } }],
        },
      ],
    },
  };
  const noAdmin = {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'no-admin', namespace: 'istio-system' },
    spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/api/admin', '/admin'] } }] }] },
  };
  mesh.writeMesh([strict, onlyFrontend, noAdmin]);
  await eventually('the policies to reach B', async () => (await callB('/other')).status === 403);
  const seen = mesh.appB.requests.length;
  assert.equal((await callB('/api/items')).status, 200);
  const denied = await callB('/api/items', 'POST');
  assert.deepEqual(denied, { status: 403, body: 'RBAC: access denied' });
  assert.equal((await callB('/api/admin')).status, 403);
  // A mesh identity of another namespace is not frontend.
  const other = await requestCertificate({
    address: mesh.caAddress,
    token: (await createJoinToken(mesh.dataDir, 'tools', 'probe2')).token,
  });
  assert.match(
    await tlsGet({ alpn: ['istio-http/1.1'], cert: other.certChainPem, key: other.keyPem }),
    /^HTTP\/1\.1 403/,
  );
  assert.equal(mesh.appB.requests.length, seen + 1, 'only the allowed request reached B');
  mesh.writeMesh([strict]);
  await eventually('the policies to be lifted', async () => (await callB('/other')).status === 200);
});

test("A verifies B's identity: a service account B does not run as makes A refuse B's certificate", async () => {
  mesh.writeMesh([], 'not-b');
  await eventually('A to refuse B', async () => (await callB()).status === 503);
  // Refused for the SAN: B's certificate is good, it is just not the identity A now expects.
  const stats = await (await fetch(`${mesh.a.adminUrl}/stats`)).text();
  const cluster = `cluster.outbound|${mesh.svcPort}||${FQDN_B}`;
  const failed = stats.split('\n').find((l) => l.startsWith(`${cluster}.ssl.fail_verify_san: `));
  assert.ok(failed !== undefined && Number(failed.split(': ')[1]) > 0, stats);
  mesh.writeMesh();
  await eventually('A to accept B again', async () => (await callB()).status === 200);
});
