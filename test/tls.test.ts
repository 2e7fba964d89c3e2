// Integration: TLS termination and origination through a real proxy, with curl, openssl s_client and Node clients.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import {
  Agent,
  createServer as createHttpsServer,
  type Server as HttpsServer,
  get as httpsGet,
} from 'node:https';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { type Certs, CLIENT_SPIFFE_ID, makeCerts, SERVER_SANS } from './support/certs.js';
import { until } from './support/child.js';
import { curl, sClient } from './support/clients.js';
import {
  bootstrap,
  httpListener,
  type Json,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
  TLS_INSPECTOR,
  tcpListener,
} from './support/proxy.js';
import { certificate, serving, trusting, upstreamTls, withTls } from './support/tls_config.js';
import { startTcpServer, startUpstream, type Upstream } from './support/upstream.js';

const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const BIN = fileURLToPath(new URL('../../bin/remora', import.meta.url));

let certs: Certs;
let plain: Upstream;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

before(async () => {
  certs = await makeCerts();
  plain = await startUpstream('plain');
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await plain.close();
  await certs.close();
});

async function proxyOf(listeners: Json[], clusters: Json[]): Promise<RunningProxy> {
  const p = await startProxy(bootstrap(listeners, clusters));
  cleanups.push(() => p.close());
  return p;
}

/** curl over https to a proxy listener, with the test CA, `localhost` pinned to 127.0.0.1. */
function httpsCurl(port: number, path: string, extra: readonly string[] = []) {
  return curl([
    '--cacert',
    certs.ca.certFile,
    '--resolve',
    `localhost:${port}:127.0.0.1`,
    ...extra,
    `https://localhost:${port}${path}`,
  ]);
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

test('curl over https through the proxy to a plain HTTP upstream', async () => {
  const listener = withTls(
    httpListener('https', routes([{ match: { prefix: '/' }, route: { cluster: 'plain' } }])),
    serving(certs.server, { alpn_protocols: ['http/1.1'] }),
  );
  const p = await proxyOf([listener], [staticCluster('plain', [plain.port])]);
  const r = await httpsCurl(p.port(), '/hello');
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-upstream'], 'plain');
  assert.equal((JSON.parse(r.body) as { url: string }).url, '/hello');
  const scope = `listener.127.0.0.1_${p.port()}`;
  assert.equal(p.stat(`${scope}.ssl.handshake`), 1);
  assert.equal(p.stat(`${scope}.ssl.no_certificate`), 1);
  // Plaintext to a TLS listener is refused.
  await assert.rejects(curl([`http://127.0.0.1:${p.port()}/`]));
  await until('the connection error count', () => p.stat(`${scope}.ssl.connection_error`) === 1);
});

test('openssl s_client sees the negotiated ALPN protocol', async () => {
  const echo = await startTcpServer((s) => s.pipe(s));
  cleanups.push(() => echo.close());
  const withAlpn = withTls(
    tcpListener('alpn', 'echo'),
    serving(certs.server, { alpn_protocols: ['h2', 'http/1.1'] }),
  );
  const noAlpn = withTls(tcpListener('noalpn', 'echo'), serving(certs.server));
  const p = await proxyOf([withAlpn, noAlpn], [staticCluster('echo', [echo.port])]);
  const ca = ['-CAfile', certs.ca.certFile];
  assert.match(await sClient(p.port('alpn'), [...ca, '-alpn', 'h2,http/1.1']), /ALPN protocol: h2/);
  assert.match(await sClient(p.port('alpn'), [...ca, '-alpn', 'http/1.1']), /ALPN protocol: http\/1\.1/);
  assert.match(await sClient(p.port('alpn'), ca), /No ALPN negotiated/);
  const out = await sClient(p.port('noalpn'), [...ca, '-alpn', 'h2,http/1.1']);
  assert.match(out, /No ALPN negotiated/);
  assert.match(out, /Verify return code: 0 \(ok\)/);
});

test("a client offering none of the listener's ALPN protocols: the handshake goes on without ALPN, as in Envoy", async () => {
  const echo = await startTcpServer((s) => s.pipe(s));
  cleanups.push(() => echo.close());
  // An Istio inbound chain offers h2 and http/1.1; an Istio client asks for istio-http/1.1 (tls_inspector reads it).
  const istio = withTls(
    { ...tcpListener('istio', 'echo'), listener_filters: [TLS_INSPECTOR] },
    serving(certs.server, { alpn_protocols: ['h2', 'http/1.1'] }),
  );
  const p = await proxyOf([istio], [staticCluster('echo', [echo.port])]);
  const ca = ['-CAfile', certs.ca.certFile];
  const out = await sClient(p.port('istio'), [...ca, '-alpn', 'istio-http/1.1,istio']);
  // s_client prints "Verify return code: 0" even for a failed handshake: the cipher tells.
  assert.doesNotMatch(out, /alert|Cipher is \(NONE\)/, out);
  assert.match(out, /New, TLSv1\.3, Cipher is TLS_/, out);
  assert.match(out, /No ALPN negotiated/);
  assert.match(
    await sClient(p.port('istio'), [...ca, '-alpn', 'istio,http/1.1']),
    /ALPN protocol: http\/1\.1/,
  );
});

test('require_client_certificate: the handshake fails without a client certificate and works with one', async () => {
  const listener = withTls(
    httpListener('mtls', routes([{ match: { prefix: '/' }, route: { cluster: 'plain' } }])),
    serving(
      certs.server,
      { validation_context: { trusted_ca: { filename: certs.ca.certFile } } },
      { require_client_certificate: true },
    ),
  );
  const p = await proxyOf([listener], [staticCluster('plain', [plain.port])]);
  await assert.rejects(httpsCurl(p.port(), '/'), /alert certificate required|handshake|SSL/i);
  const r = await httpsCurl(p.port(), '/', ['--cert', certs.client.certFile, '--key', certs.client.keyFile]);
  assert.equal(r.status, 200);
  const scope = `listener.127.0.0.1_${p.port()}`;
  assert.equal(p.stat(`${scope}.ssl.fail_verify_no_cert`), 1);
  assert.equal(p.stat(`${scope}.ssl.handshake`), 1);
});

test('tls_minimum_protocol_version TLSv1_3 refuses a TLS 1.2 client', async () => {
  const listener = withTls(
    httpListener('tls13', routes([{ match: { prefix: '/' }, route: { cluster: 'plain' } }])),
    serving(certs.server, { tls_params: { tls_minimum_protocol_version: 'TLSv1_3' } }),
  );
  const p = await proxyOf([listener], [staticCluster('plain', [plain.port])]);
  await assert.rejects(httpsCurl(p.port(), '/', ['--tls-max', '1.2']), /protocol version|alert|SSL/i);
  assert.equal((await httpsCurl(p.port(), '/')).status, 200);
});

test('rotated certificate files: new handshakes get the new one, open connections keep going, bad files change nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-rotate-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  copyFileSync(certs.server.certFile, certFile);
  copyFileSync(certs.server.keyFile, keyFile);
  /** Replaces a file by rename, as Kubernetes and cert-manager do. */
  const replace = (file: string, data: string) => {
    writeFileSync(`${file}.tmp`, data);
    renameSync(`${file}.tmp`, file);
  };
  const listener = withTls(
    httpListener('rotate', routes([{ match: { prefix: '/' }, route: { cluster: 'plain' } }])),
    serving({ certFile, keyFile }),
  );
  const p = await proxyOf([listener], [staticCluster('plain', [plain.port])]);
  const port = p.port();
  const first = await servedSerial(port);
  assert.equal(first, '1000');

  // A keep-alive connection opened before the rotation.
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: certs.ca.cert, servername: 'localhost' });
  cleanups.push(() => agent.destroy());
  const request = () =>
    new Promise<{ status: number; serial: string; socket: TLSSocket }>((resolve, reject) => {
      httpsGet({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        const socket = res.socket as TLSSocket;
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, serial: socket.getPeerCertificate().serialNumber, socket }),
        );
      }).on('error', reject);
    });
  const before = await request();
  assert.deepEqual([before.status, before.serial], [200, '1000']);

  const next = await certs.issueServer('rotated', 0x1001);
  replace(keyFile, next.key);
  replace(certFile, next.cert);
  await until('the new certificate', async () => (await servedSerial(port)) === '1001');
  const scope = `listener.127.0.0.1_${port}`;
  assert.ok(p.stat(`${scope}.ssl.context_update_by_file`) >= 1);

  const again = await request();
  assert.equal(again.status, 200);
  assert.equal(again.socket, before.socket, 'the same connection');
  assert.equal(again.serial, '1000', 'made with the old certificate');

  // Files that do not work: the proxy keeps serving the last good certificate.
  const errorsBefore = p.stat(`${scope}.ssl.context_update_by_file_error`);
  replace(certFile, 'not a certificate\n');
  await until(
    'the rejected reload',
    () => p.stat(`${scope}.ssl.context_update_by_file_error`) > errorsBefore,
  );
  assert.equal(await servedSerial(port), '1001');
  assert.equal((await httpsCurl(port, '/')).status, 200);
});

interface HttpsUpstream {
  readonly port: number;
  /** SNI and client certificate subject of each request. */
  readonly seen: { servername: string | false; clientCert: string | undefined }[];
}

async function httpsUpstream(opts: { requireClientCert?: boolean } = {}): Promise<HttpsUpstream> {
  const seen: HttpsUpstream['seen'] = [];
  const server: HttpsServer = createHttpsServer(
    {
      cert: certs.server.cert,
      key: certs.server.key,
      ca: certs.ca.cert,
      requestCert: opts.requireClientCert ?? false,
      rejectUnauthorized: opts.requireClientCert ?? false,
    },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      const peer = socket.getPeerCertificate();
      seen.push({
        servername: (socket as TLSSocket & { servername: string | false }).servername,
        clientCert: peer && Object.keys(peer).length > 0 ? peer.subjectaltname : undefined,
      });
      res.setHeader('x-upstream', 'https');
      res.end('secure hello');
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return { port: (server.address() as { port: number }).port, seen };
}

test('origination: SNI, CA validation, wrong CA, SAN matchers, client certificates, no validation context', async () => {
  const up = await httpsUpstream();
  const mtls = await httpsUpstream({ requireClientCert: true });
  const logFile = join(certs.dir, 'access.log');
  const route = (prefix: string, cluster: string) => ({ match: { prefix }, route: { cluster } });
  const listener = httpListener(
    'origin',
    routes([
      route('/ok', 'ok'),
      route('/wrong-ca', 'wrong_ca'),
      route('/san-ok', 'san_ok'),
      route('/san-bad', 'san_bad'),
      route('/mtls-cert', 'mtls_cert'),
      route('/mtls-none', 'mtls_none'),
      route('/noverify', 'noverify'),
    ]),
    {
      access_log: [
        {
          name: 'file',
          typed_config: {
            '@type': FILE_LOG,
            path: logFile,
            log_format: {
              text_format_source: { inline_string: '%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS%\n' },
            },
          },
        },
      ],
    },
  );
  const uri = (value: string) => ({ san_type: 'URI', matcher: { exact: value } });
  const clientCert = { tls_certificates: [certificate(certs.client)] };
  const p = await proxyOf(
    [listener],
    [
      staticCluster('ok', [up.port], upstreamTls({ sni: 'api.example.test', ...trusting(certs.ca) })),
      staticCluster('wrong_ca', [up.port], upstreamTls(trusting(certs.otherCa))),
      staticCluster(
        'san_ok',
        [up.port],
        upstreamTls(trusting(certs.ca, { match_typed_subject_alt_names: [uri(SERVER_SANS.uri)] })),
      ),
      staticCluster(
        'san_bad',
        [up.port],
        upstreamTls(
          trusting(certs.ca, {
            match_typed_subject_alt_names: [uri('spiffe://cluster.local/ns/default/sa/db')],
          }),
        ),
      ),
      staticCluster('mtls_cert', [mtls.port], upstreamTls(trusting(certs.ca, {}, clientCert))),
      staticCluster('mtls_none', [mtls.port], upstreamTls(trusting(certs.ca))),
      staticCluster('noverify', [up.port], upstreamTls({})),
    ],
  );

  const ok = await curl([`${p.url()}/ok`]);
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'secure hello');
  assert.equal(up.seen.at(-1)?.servername, 'api.example.test');
  assert.equal(p.stat('cluster.ok.ssl.handshake'), 1);

  const wrong = await curl([`${p.url()}/wrong-ca`]);
  assert.equal(wrong.status, 503);
  assert.match(
    wrong.body,
    /connection failure .*certificate verify failed: .+ \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\)/,
  );
  assert.equal(p.stat('cluster.wrong_ca.upstream_cx_connect_fail'), 1);
  assert.equal(p.stat('cluster.wrong_ca.ssl.fail_verify_error'), 1);

  assert.equal((await curl([`${p.url()}/san-ok`])).status, 200);
  const sanBad = await curl([`${p.url()}/san-bad`]);
  assert.equal(sanBad.status, 503);
  assert.ok(
    sanBad.body.includes(
      'certificate verify failed: SAN mismatch: expected one of [URI exact "spiffe://cluster.local/ns/default/sa/db"], ' +
        `got [DNS:localhost, DNS:*.example.test, IP_ADDRESS:127.0.0.1, URI:${SERVER_SANS.uri}]`,
    ),
    sanBad.body,
  );
  assert.equal(p.stat('cluster.san_bad.ssl.fail_verify_san'), 1);

  assert.equal((await curl([`${p.url()}/mtls-cert`])).status, 200);
  assert.equal(mtls.seen.at(-1)?.clientCert, `URI:${CLIENT_SPIFFE_ID}`);
  const none = await curl([`${p.url()}/mtls-none`]);
  assert.equal(none.status, 503);
  assert.equal(p.stat('cluster.mtls_none.upstream_cx_connect_fail'), 1);

  // Envoy's behaviour: without a validation context the server's certificate is not checked.
  assert.equal((await curl([`${p.url()}/noverify`])).status, 200);
  assert.equal(up.seen.at(-1)?.servername, false, 'no sni configured: none sent');

  await until('the access log', () => readLog(logFile).includes('/noverify'));
  const flags = readLog(logFile);
  assert.match(flags, /^\/wrong-ca 503 UF$/m);
  assert.match(flags, /^\/san-bad 503 UF$/m);
  assert.match(flags, /^\/ok 200 -$/m);
});

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

test('keep-alive connections to a TLS upstream are reused', async () => {
  const up = await httpsUpstream();
  const listener = httpListener('reuse', routes([{ match: { prefix: '/' }, route: { cluster: 'tls' } }]));
  const p = await proxyOf([listener], [staticCluster('tls', [up.port], upstreamTls(trusting(certs.ca)))]);
  for (let i = 0; i < 3; i++) assert.equal((await curl([`${p.url()}/n${i}`])).status, 200);
  assert.equal(p.stat('cluster.tls.upstream_cx_total'), 1);
  assert.equal(p.stat('cluster.tls.ssl.handshake'), 1);
});

test('tcp_proxy: to a TLS upstream cluster, and from a TLS listener', async () => {
  const tlsEcho = createTlsServer({ cert: certs.server.cert, key: certs.server.key }, (s) => s.pipe(s));
  tlsEcho.listen(0, '127.0.0.1');
  await once(tlsEcho, 'listening');
  cleanups.push(() => new Promise((r) => tlsEcho.close(r)));
  const echo = await startTcpServer((s) => s.pipe(s));
  cleanups.push(() => echo.close());
  const tlsPort = (tlsEcho.address() as { port: number }).port;
  const p = await proxyOf(
    [tcpListener('to_tls', 'tls_echo'), withTls(tcpListener('from_tls', 'echo'), serving(certs.server))],
    [
      staticCluster('tls_echo', [tlsPort], upstreamTls({ sni: 'localhost', ...trusting(certs.ca) })),
      staticCluster('echo', [echo.port]),
    ],
  );
  // Plain TCP in, TLS out.
  const plainIn = tcpConnect(p.port('to_tls'), '127.0.0.1');
  plainIn.end('hello over tls');
  plainIn.setEncoding('utf8');
  let got = '';
  for await (const chunk of plainIn) got += chunk;
  assert.equal(got, 'hello over tls');
  assert.equal(p.stat('cluster.tls_echo.ssl.handshake'), 1);
  // TLS in, plain TCP out.
  const tlsIn = tlsConnect({
    host: '127.0.0.1',
    port: p.port('from_tls'),
    servername: 'localhost',
    ca: certs.ca.cert,
  });
  await once(tlsIn, 'secureConnect');
  tlsIn.end('hello from tls');
  tlsIn.setEncoding('utf8');
  got = '';
  for await (const chunk of tlsIn) got += chunk;
  assert.equal(got, 'hello from tls');
});

test('tcp_proxy: a TLS upstream that fails verification is a connect failure', async () => {
  const tlsEcho = createTlsServer({ cert: certs.server.cert, key: certs.server.key }, (s) => s.pipe(s));
  tlsEcho.listen(0, '127.0.0.1');
  await once(tlsEcho, 'listening');
  cleanups.push(() => new Promise((r) => tlsEcho.close(r)));
  const tlsPort = (tlsEcho.address() as { port: number }).port;
  const p = await proxyOf(
    [tcpListener('bad', 'bad_ca')],
    [staticCluster('bad_ca', [tlsPort], upstreamTls(trusting(certs.otherCa)))],
  );
  const s = tcpConnect(p.port(), '127.0.0.1');
  s.on('error', () => undefined);
  s.resume();
  await once(s, 'close');
  assert.equal(p.stat('cluster.bad_ca.upstream_cx_connect_fail'), 1);
  assert.equal(p.stat('cluster.bad_ca.ssl.fail_verify_error'), 1);
});

test('certificate files that cannot be used stop the start, naming the field and the file', async () => {
  const missing = join(certs.dir, 'missing.crt');
  const listener = withTls(
    tcpListener('bad', 'plain'),
    serving({ certFile: missing, keyFile: certs.server.keyFile }),
  );
  const cluster = staticCluster(
    'plain',
    [plain.port],
    upstreamTls(serving({ certFile: certs.server.certFile, keyFile: certs.client.keyFile })),
  );
  await assert.rejects(startProxy(bootstrap([listener], [cluster])), (err: Error) => {
    assert.match(
      err.message,
      /static_resources\.listeners\[0\]\.filter_chains\[0\]\.transport_socket\.typed_config\.common_tls_context\.tls_certificates\[0\]\.certificate_chain\.filename: cannot read .*missing\.crt: ENOENT/,
    );
    assert.match(
      err.message,
      /static_resources\.clusters\[0\]\.transport_socket\.typed_config\.common_tls_context\.tls_certificates\[0\]\.private_key\.filename: the private key \(.*client\.key\) does not belong to the certificate \(.*server\.crt\)/,
    );
    return true;
  });
});

test('remora validate reports certificate files it cannot read', async () => {
  const file = join(certs.dir, 'bootstrap.json');
  const listener = withTls(
    tcpListener('bad', 'plain'),
    serving({ certFile: '/nonexistent/tls.crt', keyFile: certs.server.keyFile }),
  );
  writeFileSync(file, JSON.stringify(bootstrap([listener], [staticCluster('plain', [plain.port])])));
  const run = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, 'validate', '-c', file], (err, _stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stderr });
    });
  });
  assert.equal(run.code, 1);
  assert.match(
    run.stderr,
    /certificate_chain\.filename: cannot read \/nonexistent\/tls\.crt: ENOENT: no such file or directory/,
  );
  assert.match(run.stderr, /: 1 error\n/);
});
