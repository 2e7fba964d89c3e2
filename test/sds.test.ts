// Integration: TLS secrets by SDS on the ADS stream — listeners and clusters warm until their secrets arrive, new
// versions serve new handshakes while open connections keep going, bad versions are NACKed, roots rotate, the disk
// cache keeps them — and static secrets from a bootstrap file; /certs and /config_dump show them all.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { Agent, createServer as createHttpsServer, request as httpsRequest, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { ProxyServer } from '../src/dataplane/server.js';
import { type Certs, CLIENT_SPIFFE_ID, type KeyPair, makeCerts, SERVER_SANS } from './support/certs.js';
import { spawnProxy, until } from './support/child.js';
import { curl, sClient } from './support/clients.js';
import { httpListener, type Json, routes, staticCluster } from './support/proxy.js';
import { upstreamTls, withTls } from './support/tls_config.js';
import { startUpstream, type Upstream } from './support/upstream.js';
import {
  adsBootstrap,
  type ControlPlane,
  get,
  type Resources,
  startControlPlane,
  startXdsProxy,
} from './support/xds.js';

const ADS = { ads: {}, resource_api_version: 'V3' };
const b64 = (pem: string) => Buffer.from(pem).toString('base64');

/** An SdsSecretConfig naming a secret that comes on the ADS stream. */
const sds = (name: string): Json => ({ name, sds_config: ADS });

/** A Secret with a certificate and its key, inline as a control plane sends them. */
function certSecret(name: string, pair: Pick<KeyPair, 'cert' | 'key'>): Json {
  return {
    name,
    tls_certificate: {
      certificate_chain: { inline_bytes: b64(pair.cert) },
      private_key: { inline_bytes: b64(pair.key) },
    },
  };
}

/** A Secret with a trust bundle of these CAs. */
function rootSecret(name: string, ...cas: KeyPair[]): Json {
  return { name, validation_context: { trusted_ca: { inline_bytes: b64(cas.map((c) => c.cert).join('')) } } };
}

/** An HTTP listener on a TLS filter chain whose context is `context`; every request goes to `cluster`. */
function tlsListener(name: string, cluster: string, context: Json): Json {
  return withTls(httpListener(name, routes([{ match: { prefix: '/' }, route: { cluster } }])), context);
}

let certs: Certs;
let app: Upstream;
const dirs: string[] = [];

before(async () => {
  certs = await makeCerts();
  app = await startUpstream('app');
});

after(async () => {
  await app.close();
  await certs.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'remora-sds-'));
  dirs.push(d);
  return d;
}

/** The serial number of the certificate a new TLS connection to `port` is given. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: certs.ca.cert }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.destroy();
    });
    s.on('error', reject);
  });
}

/** One HTTPS GET on `agent`: the status, and the socket it went over. */
function httpsGet(
  port: number,
  agent: Agent,
  opts: { cert?: KeyPair } = {},
): Promise<{ status: number; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        servername: 'localhost',
        agent,
        ca: certs.ca.cert,
        ...(opts.cert && { cert: opts.cert.cert, key: opts.cert.key }),
      },
      (res: IncomingMessage) => {
        // Once the response has ended, the socket goes back to the agent and res.socket is cleared.
        const socket = res.socket as TLSSocket;
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, socket }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function adminJson(proxy: ProxyServer, path: string): Promise<Json> {
  const res = await fetch(`http://127.0.0.1:${proxy.adminAddress!.port}${path}`);
  assert.equal(res.status, 200, path);
  return (await res.json()) as Json;
}

/** The SecretsConfigDump of /config_dump. */
async function secretsDump(proxy: ProxyServer): Promise<Json> {
  const dump = (await adminJson(proxy, '/config_dump')) as { configs: Json[] };
  const s = dump.configs.find((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.SecretsConfigDump');
  assert.ok(s, 'a SecretsConfigDump');
  return s;
}

function counterEndingWith(proxy: ProxyServer, suffix: string): number {
  let n = 0;
  for (const c of proxy.stats.allCounters()) if (c.name.endsWith(suffix)) n += c.value;
  return n;
}

describe('a listener whose certificate comes by SDS', () => {
  let cp: ControlPlane;
  let proxy: ProxyServer;
  let cacheDir: string;
  let rotated: KeyPair;
  let base: Resources;
  const port = () => proxy.listenerAddress('web')!.port;

  before(async () => {
    cacheDir = tempDir();
    rotated = await certs.issueServer('rotated', 0x1001);
    base = {
      clusters: [staticCluster('app', [app.port])],
      listeners: [
        tlsListener('web', 'app', {
          common_tls_context: { tls_certificate_sds_secret_configs: [sds('default')] },
        }),
      ],
    };
    cp = await startControlPlane(base);
    proxy = await startXdsProxy(adsBootstrap([cp.port]), { cacheDir });
  });

  after(async () => {
    await proxy?.close();
    await cp?.close();
  });

  it('warms until the secret arrives, then serves TLS with it (curl, openssl s_client)', async () => {
    await until('the listener to warm, waiting for its secret', async () => {
      const s = await secretsDump(proxy);
      return ((s.dynamic_warming_secrets as Json[] | undefined) ?? []).some((e) => e.name === 'default');
    });
    assert.equal(proxy.listenerAddress('web'), undefined, 'not serving yet');
    const ready = await fetch(`http://127.0.0.1:${proxy.adminAddress!.port}/ready`);
    assert.equal(ready.status, 503, 'not LIVE while a listener warms');
    await ready.text();
    const listeners = (await adminJson(proxy, '/config_dump?resource=dynamic_listeners')) as {
      configs: Json[];
    };
    assert.ok(listeners.configs[0]?.warming_state, 'the listener is warming');

    cp.set({ ...base, secrets: [certSecret('default', certs.server)] });
    await proxy.live;
    const r = await curl([
      '--cacert',
      certs.ca.certFile,
      '--resolve',
      `localhost:${port()}:127.0.0.1`,
      `https://localhost:${port()}/hello`,
    ]);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-upstream'], 'app');
    const out = await sClient(port(), ['-CAfile', certs.ca.certFile]);
    assert.match(out, /Verify return code: 0 \(ok\)/);
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)?.[0];
    assert.ok(pem, out);
    assert.equal(new X509Certificate(pem).serialNumber, '1000');
    assert.equal(counterEndingWith(proxy, 'server_ssl_socket_factory.ssl_context_update_by_sds'), 1);
  });

  it('a new version serves new handshakes; a keep-alive connection opened before keeps working', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await httpsGet(port(), agent);
      assert.equal(first.status, 200);
      assert.equal(first.socket.getPeerCertificate().serialNumber, '1000');
      cp.set({ ...base, secrets: [certSecret('default', rotated)] });
      await until(
        'new handshakes to get the new certificate',
        async () => (await servedSerial(port())) === '1001',
      );
      const again = await httpsGet(port(), agent);
      assert.equal(again.status, 200);
      assert.equal(again.socket, first.socket, 'the same connection');
      assert.equal(again.socket.getPeerCertificate().serialNumber, '1000', 'made with the old certificate');
    } finally {
      agent.destroy();
    }
  });

  it('a bad version is NACKed with every error and its path; the last good one keeps serving', async () => {
    const rejected = () => proxy.stats.counter('sds.update_rejected').value;
    const before = rejected();
    // The key of another certificate.
    cp.set({ ...base, secrets: [certSecret('default', { cert: certs.server.cert, key: certs.client.key })] });
    await until('the NACK', () => rejected() > before);
    const nack = () => cp.server.status()[0]!.types.find((t) => t.type === 'SDS')!.lastNack?.message ?? '';
    await until('the control plane to see the NACK', () => nack() !== '');
    assert.equal(
      nack(),
      'SDS["default"].tls_certificate.private_key.inline_bytes: the private key (the inline data) does not belong to the certificate (the inline data)',
    );
    // Neither the certificate nor the key is usable: both are said.
    const garbage = (label: string) => `-----BEGIN ${label}-----\nAAAA\n-----END ${label}-----\n`;
    cp.set({
      ...base,
      secrets: [certSecret('default', { cert: garbage('CERTIFICATE'), key: garbage('PRIVATE KEY') })],
    });
    await until('the second NACK', () => nack().includes('certificate_chain'));
    const lines = nack().split('\n');
    assert.equal(lines.length, 2, nack());
    assert.match(
      lines[0]!,
      /^SDS\["default"\]\.tls_certificate\.certificate_chain\.inline_bytes: the certificate in the inline data is invalid/,
    );
    assert.match(
      lines[1]!,
      /^SDS\["default"\]\.tls_certificate\.private_key\.inline_bytes: no usable private key in the inline data/,
    );
    assert.equal(await servedSerial(port()), '1001');
    const s = await secretsDump(proxy);
    const active = s.dynamic_active_secrets as Json[];
    assert.equal(active.length, 1);
    assert.equal(active[0]!.name, 'default');
    assert.match(String((active[0]!.error_state as Json).details), /certificate_chain/);
  });

  it('/certs and /config_dump show the secret, its version, and no private key', async () => {
    const doc = (await adminJson(proxy, '/certs')) as {
      certificates: { cert_chain: Json[]; ca_cert: Json[] }[];
    };
    assert.equal(doc.certificates.length, 1);
    const [leaf] = doc.certificates[0]!.cert_chain;
    assert.deepEqual(doc.certificates[0]!.ca_cert, []);
    assert.equal(leaf!.path, '<inline>');
    assert.equal(leaf!.serial_number, '1001');
    assert.equal(leaf!.secret_name, 'default');
    assert.deepEqual(leaf!.subject_alt_names, [
      { dns: 'localhost' },
      { dns: '*.example.test' },
      { ip_address: '127.0.0.1' },
      { uri: SERVER_SANS.uri },
    ]);
    assert.match(String(leaf!.days_until_expiration), /^(29|30)$/);
    assert.match(String(leaf!.valid_from), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.match(String(leaf!.expiration_time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const s = await secretsDump(proxy);
    const [entry] = s.dynamic_active_secrets as Json[];
    assert.ok(entry!.version_info && typeof entry!.version_info === 'string');
    assert.match(String(entry!.last_updated), /Z$/);
    const secret = entry!.secret as { '@type': string; tls_certificate: Json };
    assert.equal(secret['@type'], 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret');
    // As Envoy prints a sensitive bytes field: the bytes of "[redacted]".
    assert.deepEqual(secret.tls_certificate.private_key, { inline_bytes: b64('[redacted]') });
    assert.equal(
      secret.tls_certificate.certificate_chain && typeof secret.tls_certificate.certificate_chain,
      'object',
    );
    assert.ok(!JSON.stringify(s).includes(b64(rotated.key)), 'the key never leaves the proxy');
    assert.deepEqual(s.dynamic_warming_secrets, []);
  });

  it('restarted while the control plane is down, it serves the secret from its disk cache', async () => {
    const port0 = cp.port;
    await proxy.close();
    await cp.close();
    proxy = await startXdsProxy(adsBootstrap([port0]), { cacheDir });
    await proxy.live;
    assert.equal(await servedSerial(port()), '1001');
  });
});

/** An HTTPS server that requires a client certificate chaining to `clientCas` and says whose it was. */
async function mtlsServer(
  name: string,
  pair: KeyPair,
  clientCas: KeyPair[],
): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createHttpsServer(
    {
      cert: pair.cert,
      key: pair.key,
      ca: clientCas.map((c) => c.cert),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerX509Certificate();
      res.setHeader('x-upstream', name);
      res.setHeader('x-client-identity', peer?.subjectAltName ?? '');
      res.end('ok');
    },
  );
  // Pooled connections must outlive the test's pauses (Node's default is 5 s).
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('clusters and listeners taking the workload certificate and ROOTCA by SDS (delta xDS)', () => {
  let cp: ControlPlane;
  let proxy: ProxyServer;
  let oldRoot: KeyPair;
  let newRoot: KeyPair;
  let a: { port: number; close(): Promise<void> };
  let b: { port: number; close(): Promise<void> };
  let resources: Resources;

  /** mTLS origination: the client certificate `default`, the peer checked against ROOTCA and its SPIFFE ID. */
  const meshTls = upstreamTls({
    common_tls_context: {
      tls_certificate_sds_secret_configs: [sds('default')],
      combined_validation_context: {
        default_validation_context: {
          match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: SERVER_SANS.uri } }],
        },
        validation_context_sds_secret_config: sds('ROOTCA'),
      },
    },
    sni: 'localhost',
  });

  before(async () => {
    oldRoot = certs.ca;
    newRoot = certs.otherCa;
    const serverOld = await certs.issueServer('upstream-old', 0x3000);
    const serverNew = await certs.issueLeaf('upstream-new', 0x3001, { issuer: newRoot, kind: 'server' });
    // Both trust the sidecar's client certificate (`default`, from the old root).
    a = await mtlsServer('a', serverOld, [oldRoot]);
    b = await mtlsServer('b', serverNew, [oldRoot]);
    resources = {
      clusters: [staticCluster('a', [a.port], meshTls), staticCluster('b', [b.port], meshTls)],
      listeners: [
        httpListener(
          'out',
          routes([
            { match: { prefix: '/a' }, route: { cluster: 'a' } },
            { match: { prefix: '/b' }, route: { cluster: 'b' } },
          ]),
        ),
        tlsListener('in', 'a', {
          common_tls_context: {
            tls_certificate_sds_secret_configs: [sds('default')],
            validation_context_sds_secret_config: sds('ROOTCA'),
          },
          require_client_certificate: true,
        }),
      ],
      secrets: [certSecret('default', certs.server), rootSecret('ROOTCA', oldRoot)],
    };
    cp = await startControlPlane(resources);
    proxy = await startXdsProxy(adsBootstrap([cp.port], { delta: true }));
    await proxy.live;
  });

  after(async () => {
    await proxy?.close();
    await cp?.close();
    await a?.close();
    await b?.close();
  });

  const out = () => proxy.listenerAddress('out')!.port;
  const inPort = () => proxy.listenerAddress('in')!.port;

  it('an upstream cluster does mTLS with its certificate and ROOTCA from SDS to a server requiring client certs', async () => {
    const r = await get(out(), '/a');
    assert.equal(r.status, 200);
    assert.equal(r.upstream, 'a');
    const shown = await fetch(`http://127.0.0.1:${out()}/a`);
    assert.equal(
      shown.headers.get('x-client-identity'),
      `DNS:localhost, DNS:*.example.test, IP Address:127.0.0.1, URI:${SERVER_SANS.uri}`,
    );
    await shown.text();
    // A server under a root the sidecar does not trust yet.
    const refused = await get(out(), '/b');
    assert.equal(refused.status, 503);
    assert.match(refused.body, /certificate verify failed/);
  });

  it('rotating ROOTCA to old+new roots keeps old peers working (pooled connections too) and admits new ones', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const clientOld = certs.client;
    const clientNew = await certs.issueLeaf('client-new', 0x4001, { issuer: newRoot, kind: 'client' });
    try {
      assert.equal((await get(out(), '/a')).status, 200);
      const pooled = proxy.stats.counter('cluster.a.upstream_cx_total').value;
      assert.equal((await httpsGet(inPort(), agent, { cert: clientOld })).status, 200);
      await assert.rejects(
        httpsGet(inPort(), new Agent(), { cert: clientNew }),
        'a client of the new root is refused',
      );

      cp.set({
        ...resources,
        secrets: [certSecret('default', certs.server), rootSecret('ROOTCA', oldRoot, newRoot)],
      });
      await until('the new trust bundle to be used', async () => (await get(out(), '/b')).status === 200);
      assert.equal((await get(out(), '/a')).status, 200);
      assert.equal(
        proxy.stats.counter('cluster.a.upstream_cx_total').value,
        pooled,
        'the pooled connection to a was kept',
      );
      const again = await httpsGet(inPort(), agent, { cert: clientOld });
      assert.equal(again.status, 200, 'the downstream keep-alive connection too');
      assert.equal((await httpsGet(inPort(), new Agent(), { cert: clientNew })).status, 200);
      assert.equal((await httpsGet(inPort(), new Agent(), { cert: clientOld })).status, 200);

      const doc = (await adminJson(proxy, '/certs')) as {
        certificates: { cert_chain: Json[]; ca_cert: Json[] }[];
      };
      assert.equal(doc.certificates.length, 3, 'two clusters and one listener');
      for (const c of doc.certificates) {
        assert.deepEqual(
          c.ca_cert.map((x) => [x.secret_name, x.serial_number]),
          [
            ['ROOTCA', '01'],
            ['ROOTCA', '02'],
          ],
        );
        assert.equal(c.cert_chain[0]!.secret_name, 'default');
      }
    } finally {
      agent.destroy();
    }
  });

  it('a ROOTCA without a CA for a listener requiring client certificates is NACKed', async () => {
    const rejected = proxy.stats.counter('sds.update_rejected').value;
    cp.set({
      ...resources,
      secrets: [certSecret('default', certs.server), { name: 'ROOTCA', validation_context: {} }],
    });
    await until('the NACK', () => proxy.stats.counter('sds.update_rejected').value > rejected);
    const nack = () => cp.server.status()[0]!.types.find((t) => t.type === 'SDS')!.lastNack?.message ?? '';
    await until('the control plane to see the NACK', () => nack() !== '');
    assert.match(nack(), /listener "in" filter chain .*: require_client_certificate needs a trusted_ca/);
    assert.equal((await get(out(), '/b')).status, 200, 'the last good bundle serves');
  });
});

describe('static secrets from a bootstrap file', () => {
  it('a listener and a cluster name static_resources.secrets; /certs and /config_dump show them', async () => {
    const dir = tempDir();
    const tlsUp = await mtlsServer('tls-up', await certs.issueServer('static-up', 0x5000), [certs.ca]);
    const config: Json = {
      node: { id: 'static', cluster: 'static' },
      static_resources: {
        secrets: [
          {
            name: 'server_cert',
            tls_certificate: {
              certificate_chain: { filename: certs.server.certFile },
              private_key: { filename: certs.server.keyFile },
            },
          },
          {
            name: 'client_cert',
            tls_certificate: {
              certificate_chain: { filename: certs.client.certFile },
              private_key: { filename: certs.client.keyFile },
            },
          },
          { name: 'validation', validation_context: { trusted_ca: { filename: certs.ca.certFile } } },
        ],
        listeners: [
          tlsListener('web', 'tls-up', {
            common_tls_context: {
              tls_certificate_sds_secret_configs: [{ name: 'server_cert' }],
              validation_context_sds_secret_config: { name: 'validation' },
            },
          }),
        ],
        clusters: [
          staticCluster(
            'tls-up',
            [tlsUp.port],
            upstreamTls({
              common_tls_context: {
                tls_certificate_sds_secret_configs: [{ name: 'client_cert' }],
                validation_context_sds_secret_config: { name: 'validation' },
              },
            }),
          ),
        ],
      },
    };
    const child = await spawnProxy(dir, config);
    try {
      const r = await curl([
        '--cacert',
        certs.ca.certFile,
        '--resolve',
        `localhost:${child.port}:127.0.0.1`,
        `https://localhost:${child.port}/`,
      ]);
      assert.equal(r.status, 200, child.output());
      assert.equal(r.headers['x-client-identity'], `URI:${CLIENT_SPIFFE_ID}`);
      const doc = (await (await fetch(`${child.adminUrl}/certs`)).json()) as {
        certificates: { cert_chain: Json[]; ca_cert: Json[] }[];
      };
      const chains = doc.certificates
        .map((c) => [c.cert_chain[0]?.secret_name, c.cert_chain[0]?.path])
        .sort();
      assert.deepEqual(chains, [
        ['client_cert', certs.client.certFile],
        ['server_cert', certs.server.certFile],
      ]);
      for (const c of doc.certificates) assert.equal(c.ca_cert[0]?.path, certs.ca.certFile);
      const dump = (await (await fetch(`${child.adminUrl}/config_dump?resource=static_secrets`)).json()) as {
        configs: { name: string; secret: { tls_certificate?: { private_key: Json } } }[];
      };
      assert.deepEqual(
        dump.configs.map((c) => c.name),
        ['server_cert', 'client_cert', 'validation'],
      );
      assert.deepEqual(dump.configs[0]!.secret.tls_certificate?.private_key, { filename: '[redacted]' });
    } finally {
      await child.kill();
      await tlsUp.close();
    }
  });
});

describe('warming on secrets, and initial_fetch_timeout', () => {
  it('a cluster warms until its secrets arrive; a listener whose secret never comes serves after its timeout, resetting connections', async () => {
    const server = await mtlsServer('c', await certs.issueServer('warm-up', 0x6000), [certs.ca]);
    const resources: Resources = {
      clusters: [
        staticCluster(
          'c',
          [server.port],
          upstreamTls({
            common_tls_context: {
              tls_certificate_sds_secret_configs: [sds('default')],
              validation_context_sds_secret_config: sds('ROOTCA'),
            },
          }),
        ),
      ],
      listeners: [
        httpListener('out', routes([{ match: { prefix: '/' }, route: { cluster: 'c' } }])),
        tlsListener('slow', 'c', {
          common_tls_context: {
            tls_certificate_sds_secret_configs: [
              { name: 'never', sds_config: { ...ADS, initial_fetch_timeout: '0.3s' } },
            ],
          },
        }),
      ],
    };
    const cp = await startControlPlane(resources);
    const proxy = await startXdsProxy(adsBootstrap([cp.port]));
    try {
      await until('cluster c to warm, waiting for its secrets', async () => {
        const dump = (await adminJson(proxy, '/config_dump?resource=dynamic_warming_clusters')) as {
          configs: { cluster: { name: string } }[];
        };
        return dump.configs.some((c) => c.cluster.name === 'c');
      });
      // Envoy's rule: after initial_fetch_timeout the listener serves, and resets connections it has no secret for.
      await until('listener "slow" to stop warming', () => proxy.listenerAddress('slow') !== undefined);
      const slowPort = proxy.listenerAddress('slow')!.port;
      await assert.rejects(servedSerial(slowPort));
      assert.equal(
        counterEndingWith(proxy, 'server_ssl_socket_factory.downstream_context_secrets_not_ready'),
        1,
      );
      assert.equal(proxy.listenerAddress('out'), undefined, 'the listener sending to c waits for c');

      cp.set({
        ...resources,
        secrets: [certSecret('default', certs.client), rootSecret('ROOTCA', certs.ca)],
      });
      await proxy.live;
      const r = await fetch(`http://127.0.0.1:${proxy.listenerAddress('out')!.port}/`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-client-identity'), `URI:${CLIENT_SPIFFE_ID}`);
      await r.text();
      // One context built, from both secrets.
      assert.equal(
        proxy.stats.counter('cluster.c.client_ssl_socket_factory.ssl_context_update_by_sds').value,
        1,
      );
    } finally {
      await proxy.close();
      await cp.close();
      await server.close();
    }
  });
});
