// RBAC enforced by the receiving sidecar, with real clients over mutual TLS: the HTTP filter ("only GET /api/* from
// spiffe://cluster.local/ns/frontend/sa/web", "deny /admin for everyone") over HTTP/1.1 (curl, node https,
// openssl s_client), HTTP/2 and gRPC; the network filter before tcp_proxy; stats and access logs of denials.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { type Certs, type KeyPair, makeCerts } from './support/certs.js';
import { until } from './support/child.js';
import { curl } from './support/clients.js';
import { h2Connect, h2Request } from './support/h2.js';
import {
  bootstrap,
  type Json,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
  TLS_INSPECTOR,
} from './support/proxy.js';
import { downstreamTlsSocket, serving } from './support/tls_config.js';
import { startTcpServer } from './support/upstream.js';

const WEB = 'spiffe://cluster.local/ns/frontend/sa/web';
const EVIL = 'spiffe://cluster.local/ns/other/sa/evil';
const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const HTTP_RBAC = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const NETWORK_RBAC = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const LOG_FORMAT =
  '%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %REQ(:PATH)% %DOWNSTREAM_PEER_URI_SAN% "%DOWNSTREAM_PEER_SUBJECT%"\n';
const TCP_LOG_FORMAT = 'tcp %CONNECTION_TERMINATION_DETAILS% %UPSTREAM_HOST% %DOWNSTREAM_PEER_URI_SAN%\n';
const DENIED = 'RBAC: access denied';

let dir: string;
let certs: Certs;
let web: KeyPair;
let evil: KeyPair;
let proxy: RunningProxy;
let backend: Server;
const upstreamSeen = { connections: 0, requests: 0 };
let grpcServer: grpc.Server;
let grpcCalls = 0;
let echo: { port: number; close(): Promise<void> };
let echoConnections = 0;
const grpcClients: grpc.Client[] = [];

const bytes = (b: Buffer): Buffer => b;
const ECHO = {
  Unary: {
    path: '/test.Echo/Unary',
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
};
type EchoClient = grpc.Client & { Unary: (...args: unknown[]) => unknown };
const EchoClient = grpc.makeGenericClientConstructor(ECHO, 'Echo') as unknown as new (
  address: string,
  creds: grpc.ChannelCredentials,
  options?: grpc.ChannelOptions,
) => EchoClient;

/** A client certificate of `subject` with one URI SAN, signed by the test CA (openssl, as test/support does). */
function issueClient(name: string, subject: string, uri: string, serial: number): Promise<KeyPair> {
  const conf = join(dir, `${name}.cnf`);
  writeFileSync(
    conf,
    `[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n[ext]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\nsubjectAltName = URI:${uri}\n`,
  );
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const args = ['req', '-config', conf, '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  args.push('-nodes', '-keyout', keyFile, '-out', certFile, '-subj', subject, '-days', '30');
  args.push(
    '-extensions',
    'ext',
    '-set_serial',
    String(serial),
    '-CA',
    certs.ca.certFile,
    '-CAkey',
    certs.ca.keyFile,
  );
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args);
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`openssl failed: ${err}`));
      resolve({
        certFile,
        keyFile,
        cert: readFileSync(certFile, 'utf8'),
        key: readFileSync(keyFile, 'utf8'),
      });
    });
  });
}

const fileLog = (name: string, format: string): Json => ({
  name: 'envoy.access_loggers.file',
  typed_config: {
    '@type': FILE_LOG,
    path: join(dir, name),
    log_format: { text_format_source: { inline_string: format } },
  },
});

function logLines(name: string): string[] {
  try {
    return readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

async function waitLine(name: string, match: (l: string) => boolean): Promise<string> {
  let found: string | undefined;
  await until(`a matching line in ${name}`, () => {
    found = logLines(name).find(match);
    return found !== undefined;
  });
  return found!;
}

const principal = (uri: string): Json => ({ authenticated: { principal_name: { exact: uri } } });
const pathPrefix = (prefix: string): Json => ({ url_path: { path: { prefix } } });

/** Istio's layout: a DENY filter, then an ALLOW filter, then the router. */
const HTTP_FILTERS: Json[] = [
  {
    name: 'envoy.filters.http.rbac',
    typed_config: {
      '@type': HTTP_RBAC,
      rules: {
        action: 'DENY',
        policies: { 'deny-admin': { permissions: [pathPrefix('/admin')], principals: [{ any: true }] } },
      },
      rules_stat_prefix: 'deny.',
    },
  },
  {
    name: 'envoy.filters.http.rbac',
    typed_config: {
      '@type': HTTP_RBAC,
      rules: {
        action: 'ALLOW',
        policies: {
          'web-get-api': {
            permissions: [
              {
                and_rules: {
                  rules: [
                    { header: { name: ':method', string_match: { exact: 'GET' } } },
                    pathPrefix('/api/'),
                  ],
                },
              },
            ],
            principals: [principal(WEB)],
          },
          'web-grpc': { permissions: [pathPrefix('/test.Echo/')], principals: [principal(WEB)] },
        },
      },
      // Never enforced: counted only.
      shadow_rules: {
        action: 'DENY',
        policies: {
          'shadow-b': {
            permissions: [{ url_path: { path: { exact: '/api/b' } } }],
            principals: [{ any: true }],
          },
        },
      },
    },
  },
  { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } },
];

/** TLS that requires a client certificate from the test CA. */
function mtls(alpn: string[]): Json {
  return downstreamTlsSocket(
    serving(
      certs.server,
      { alpn_protocols: alpn, validation_context: { trusted_ca: { filename: certs.ca.certFile } } },
      { require_client_certificate: true },
    ),
  );
}

function tcpChain(rbac: Json, log: string): Json[] {
  return [
    {
      name: 'envoy.filters.network.rbac',
      typed_config: { '@type': NETWORK_RBAC, stat_prefix: 'tcp.', ...rbac },
    },
    {
      name: 'envoy.filters.network.tcp_proxy',
      typed_config: {
        '@type': TCP_PROXY,
        stat_prefix: 'echo',
        cluster: 'echo',
        access_log: [fileLog(log, TCP_LOG_FORMAT)],
      },
    },
  ];
}

const address = { socket_address: { address: '127.0.0.1', port_value: 0 } };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'remora-rbac-'));
  certs = await makeCerts();
  [web, evil] = await Promise.all([
    issueClient('web', '/O=Remora Tests/CN=web-client', WEB, 0x3001),
    issueClient('evil', '/CN=evil-client', EVIL, 0x3002),
  ]);
  backend = createServer((req, res) => {
    upstreamSeen.requests++;
    req.resume();
    req.on('end', () => res.end(`backend saw ${req.method} ${req.url}`));
  });
  backend.on('connection', () => upstreamSeen.connections++);
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  grpcServer = new grpc.Server();
  grpcServer.addService(ECHO, {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      grpcCalls++;
      cb(null, Buffer.concat([Buffer.from('echo:'), call.request]));
    },
  });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  echo = await startTcpServer((s) => {
    echoConnections++;
    s.pipe(s);
  });
  const hcm = {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': HCM,
      stat_prefix: 'inbound',
      route_config: routes([
        { match: { prefix: '/test.Echo/' }, route: { cluster: 'grpc' } },
        { match: { prefix: '/' }, route: { cluster: 'backend' } },
      ]),
      http_filters: HTTP_FILTERS,
      access_log: [fileLog('http.log', LOG_FORMAT)],
    },
  };
  const listeners = [
    {
      name: 'mtls',
      address,
      filter_chains: [{ filters: [hcm], transport_socket: mtls(['h2', 'http/1.1']) }],
    },
    {
      name: 'tcp',
      address,
      filter_chains: [
        {
          filters: tcpChain(
            {
              rules: {
                action: 'ALLOW',
                policies: {
                  'loopback-one': {
                    permissions: [{ any: true }],
                    principals: [{ direct_remote_ip: { address_prefix: '127.0.0.1', prefix_len: 32 } }],
                  },
                },
              },
            },
            'tcp.log',
          ),
        },
      ],
    },
    {
      name: 'tcp_mtls',
      address,
      filter_chains: [
        {
          filters: tcpChain(
            {
              rules: {
                action: 'ALLOW',
                policies: { web: { permissions: [{ any: true }], principals: [principal(WEB)] } },
              },
            },
            'tcp_mtls.log',
          ),
          transport_socket: mtls([]),
        },
      ],
    },
    {
      // TLS passed through untouched: the SNI tls_inspector read is the connection's requested server name.
      name: 'sni',
      address,
      listener_filters: [TLS_INSPECTOR],
      filter_chains: [
        {
          filters: tcpChain(
            {
              stat_prefix: 'sni.',
              rules: {
                action: 'ALLOW',
                policies: {
                  sni: {
                    permissions: [{ requested_server_name: { exact: 'allowed.example' } }],
                    principals: [{ any: true }],
                  },
                },
              },
            },
            'sni.log',
          ),
        },
      ],
    },
  ];
  const h2 = {
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
  };
  const backendPort = (backend.address() as { port: number }).port;
  proxy = await startProxy(
    bootstrap(listeners, [
      staticCluster('backend', [backendPort]),
      staticCluster('grpc', [grpcPort], h2),
      staticCluster('echo', [echo.port]),
    ]),
  );
});

after(async () => {
  for (const c of grpcClients) c.close();
  await proxy?.close();
  grpcServer?.forceShutdown();
  await echo?.close();
  await new Promise<void>((r) => (backend ? backend.close(() => r()) : r()));
  await certs?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** curl over HTTP/1.1 with a client certificate. */
function curlAs(who: KeyPair, path: string, extra: string[] = []) {
  const port = proxy.port('mtls');
  return curl([
    '--http1.1',
    '--cacert',
    certs.ca.certFile,
    '--cert',
    who.certFile,
    '--key',
    who.keyFile,
    '--resolve',
    `localhost:${port}:127.0.0.1`,
    ...extra,
    `https://localhost:${port}${path}`,
  ]);
}

test('HTTP/1.1 (curl): denied requests get 403 "RBAC: access denied" and never reach the upstream', async () => {
  const denied = [
    await curlAs(web, '/admin/users'),
    await curlAs(web, '/api/items', ['-X', 'POST', '--data-binary', 'x'.repeat(100_000)]),
    await curlAs(evil, '/api/items'),
    await curlAs(web, '/other'),
  ];
  for (const r of denied) {
    assert.equal(r.status, 403);
    assert.equal(r.body, DENIED);
    assert.equal(r.headers['content-length'], '19');
    assert.equal(r.headers['x-remora-error'], 'REMORA_ERR_RBAC_DENIED');
  }
  // Not a connection, not a header: nothing of a denied request went upstream.
  assert.deepEqual(upstreamSeen, { connections: 0, requests: 0 });
  const ok = await curlAs(web, '/api/items?page=2');
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'backend saw GET /api/items?page=2');
  assert.equal(upstreamSeen.requests, 1);
});

test('HTTP/1.1 (node https): the same decisions', async () => {
  const get = (who: KeyPair, path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: proxy.port('mtls'),
          path,
          servername: 'localhost',
          ca: certs.ca.cert,
          cert: who.cert,
          key: who.key,
          agent: false,
        },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  const before = upstreamSeen.requests;
  assert.deepEqual(await get(web, '/admin'), { status: 403, body: DENIED });
  assert.deepEqual(await get(evil, '/api/x'), { status: 403, body: DENIED });
  assert.equal(upstreamSeen.requests, before);
  assert.deepEqual(await get(web, '/api/x'), { status: 200, body: 'backend saw GET /api/x' });
});

test('HTTP/2: the same decisions on streams of one connection', async () => {
  const session = await h2Connect(`https://127.0.0.1:${proxy.port('mtls')}`, {
    servername: 'localhost',
    ca: certs.ca.cert,
    cert: web.cert,
    key: web.key,
  });
  try {
    const before = upstreamSeen.requests;
    const admin = await h2Request(session, { ':path': '/admin/x' });
    assert.equal(admin.status, 403);
    assert.equal(admin.body.toString(), DENIED);
    const post = await h2Request(session, { ':path': '/api/x' }, { body: 'data' });
    assert.equal(post.status, 403);
    assert.equal(upstreamSeen.requests, before);
    const ok = await h2Request(session, { ':path': '/api/h2' });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.toString(), 'backend saw GET /api/h2');
  } finally {
    session.close();
  }
});

test('gRPC (grpc-js): PERMISSION_DENIED for another principal, the call never reaches the server', async () => {
  const client = (who: KeyPair): EchoClient => {
    const creds = grpc.credentials.createSsl(
      Buffer.from(certs.ca.cert),
      Buffer.from(who.key),
      Buffer.from(who.cert),
    );
    const c = new EchoClient(`127.0.0.1:${proxy.port('mtls')}`, creds, {
      'grpc.ssl_target_name_override': 'localhost',
      'grpc.default_authority': 'localhost',
    });
    grpcClients.push(c);
    return c;
  };
  const unary = (c: EchoClient, msg: string) =>
    new Promise<string>((resolve, reject) =>
      c.Unary(Buffer.from(msg), (err: grpc.ServiceError | null, v?: Buffer) =>
        err ? reject(err) : resolve(v!.toString()),
      ),
    );
  assert.equal(await unary(client(web), 'hi'), 'echo:hi');
  assert.equal(grpcCalls, 1);
  await assert.rejects(unary(client(evil), 'hi'), (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.PERMISSION_DENIED);
    assert.equal(err.details, DENIED);
    return true;
  });
  assert.equal(grpcCalls, 1);
});

/** One HTTP/1.1 request through `openssl s_client` with a client certificate; its raw response. */
function sClientRequest(who: KeyPair, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', [
      's_client',
      '-quiet',
      '-connect',
      `127.0.0.1:${proxy.port('mtls')}`,
      '-servername',
      'localhost',
      '-alpn',
      'http/1.1',
      '-CAfile',
      certs.ca.certFile,
      '-cert',
      who.certFile,
      '-key',
      who.keyFile,
    ]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('close', () => resolve(out));
    child.stdin.end(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
  });
}

test('openssl s_client with a client certificate: the certificate decides', async () => {
  assert.match(await sClientRequest(web, '/api/s'), /^HTTP\/1\.1 200 [\s\S]*backend saw GET \/api\/s$/);
  const denied = await sClientRequest(evil, '/api/s');
  assert.match(denied, /^HTTP\/1\.1 403 /);
  assert.ok(denied.endsWith(`\r\n\r\n${DENIED}`), denied);
});

test('stats count decisions per filter; shadow rules are counted, never enforced; access logs name the policy', async () => {
  const stat = (n: string) => proxy.stat(`http.inbound.rbac.${n}`);
  const names = ['deny.allowed', 'deny.denied', 'allowed', 'denied', 'shadow_allowed', 'shadow_denied'];
  const start = Object.fromEntries(names.map((n) => [n, stat(n)]));
  await curlAs(web, '/admin'); // the DENY filter denies: the ALLOW filter never runs
  await curlAs(evil, '/api/a'); // DENY allows, ALLOW denies (no policy)
  const b = await curlAs(web, '/api/b'); // both allow; the shadow rules would deny it
  assert.equal(b.status, 200);
  const delta = Object.fromEntries(names.map((n) => [n, stat(n) - start[n]!]));
  assert.deepEqual(delta, {
    'deny.allowed': 2,
    'deny.denied': 1,
    allowed: 1,
    denied: 1,
    shadow_allowed: 1,
    shadow_denied: 1,
  });
  // Envoy sets no response flag for an RBAC denial: the details say it, with the deciding policy.
  const admin = await waitLine('http.log', (l) => l.includes(' /admin '));
  assert.equal(
    admin,
    `403 - rbac_access_denied_matched_policy[deny-admin] /admin ${WEB} "CN=web-client,O=Remora Tests"`,
  );
  const none = await waitLine('http.log', (l) => l.includes(' /api/a '));
  assert.equal(none, `403 - rbac_access_denied_matched_policy[none] /api/a ${EVIL} "CN=evil-client"`);
  const allowed = await waitLine('http.log', (l) => l.includes(' /api/b '));
  assert.equal(allowed, `200 - via_upstream /api/b ${WEB} "CN=web-client,O=Remora Tests"`);
  // The stats page shows them under Envoy's names.
  const text = await (await fetch(`${proxy.adminUrl}/stats`)).text();
  assert.match(text, /^http\.inbound\.rbac\.deny\.denied: [1-9]/m);
  assert.match(text, /^http\.inbound\.rbac\.shadow_denied: [1-9]/m);
});

/** Connects (from `localAddress`), sends "ping", and tells what came back before the connection closed. */
function exchange(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s: Socket = connect({ host: '127.0.0.1', port, localAddress });
    s.on('connect', () => s.write('ping'));
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got === 'ping') s.end();
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
  });
}

test('network RBAC: a denied TCP connection is closed before any upstream connection; an allowed one is proxied', async () => {
  const port = proxy.port('tcp');
  const before = echoConnections;
  const denied = proxy.stat('tcp.rbac.denied');
  const allowed = proxy.stat('tcp.rbac.allowed');
  assert.equal(await exchange(port, '127.0.0.2'), '');
  assert.equal(echoConnections, before, 'the denied client never reached the upstream');
  assert.equal(proxy.stat('tcp.rbac.denied'), denied + 1);
  assert.equal(await exchange(port, '127.0.0.1'), 'ping');
  assert.equal(echoConnections, before + 1);
  assert.equal(proxy.stat('tcp.rbac.allowed'), allowed + 1);
  // tcp_proxy's access log has both: the denial names its policy ("none": nothing matched the ALLOW rules).
  await waitLine('tcp.log', (l) => l === 'tcp rbac_access_denied_matched_policy[none] - -');
  await waitLine('tcp.log', (l) => l === `tcp - 127.0.0.1:${echo.port} -`);
});

/** A TLS connection with a client certificate to the tcp_mtls listener: what it echoed before closing. */
function tlsExchange(who: KeyPair): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s = tlsConnect({
      host: '127.0.0.1',
      port: proxy.port('tcp_mtls'),
      servername: 'localhost',
      ca: certs.ca.cert,
      cert: who.cert,
      key: who.key,
    });
    s.on('secureConnect', () => s.write('ping'));
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got === 'ping') s.end();
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
  });
}

test('network RBAC over mutual TLS: the client certificate is the principal', async () => {
  const before = echoConnections;
  assert.equal(await tlsExchange(evil), '');
  assert.equal(echoConnections, before);
  assert.equal(await tlsExchange(web), 'ping');
  assert.equal(echoConnections, before + 1);
  await waitLine('tcp_mtls.log', (l) => l === `tcp rbac_access_denied_matched_policy[none] - ${EVIL}`);
  await waitLine('tcp_mtls.log', (l) => l === `tcp - 127.0.0.1:${echo.port} ${WEB}`);
});

test('network RBAC on TLS passed through: requested_server_name is the SNI tls_inspector read', async () => {
  const hello = (servername: string) =>
    new Promise<void>((resolve) => {
      const s = tlsConnect({
        host: '127.0.0.1',
        port: proxy.port('sni'),
        servername,
        rejectUnauthorized: false,
      });
      // The echo server sends the ClientHello back: the handshake fails either way; only who got through counts.
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    });
  const before = echoConnections;
  const denied = proxy.stat('sni.rbac.denied');
  await hello('denied.example');
  assert.equal(echoConnections, before);
  assert.equal(proxy.stat('sni.rbac.denied'), denied + 1);
  await hello('allowed.example');
  await until('the allowed connection upstream', () => echoConnections === before + 1);
  assert.equal(proxy.stat('sni.rbac.allowed'), 1);
});
