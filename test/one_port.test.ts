// Integration: one listener port serving, side by side, HTTP/1.1, h2c, TLS (h2 and HTTP/1.1 by ALPN), gRPC over
// TLS, WebSocket, and a server-first TCP protocol — each connection to the right chain by protocol detection.

import assert from 'node:assert/strict';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { type Certs, makeCerts } from './support/certs.js';
import { curl, sClient } from './support/clients.js';
import {
  bootstrap,
  HTTP_INSPECTOR,
  hcmFilter,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
  TCP_PROXY_TYPE,
  TLS_INSPECTOR,
} from './support/proxy.js';
import { downstreamTlsSocket, serving, trusting, upstreamTls } from './support/tls_config.js';
import { startTcpServer, startUpstream, type Upstream } from './support/upstream.js';

const GREETING = '220 mail.example.test ESMTP ready\r\n';

let certs: Certs;
let proxy: RunningProxy;
let web: Upstream;
let wsServer: WebSocketServer;
let secureWs: WebSocketServer;
let secureServer: HttpsServer;
const closers: (() => Promise<void>)[] = [];

before(async () => {
  certs = await makeCerts();
  web = await startUpstream('web');
  closers.push(web.close);
  wsServer = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  wsServer.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
  await new Promise<void>((r) => wsServer.once('listening', () => r()));
  const smtp = await startTcpServer((s) => {
    s.write(GREETING);
    s.pipe(s);
  });
  closers.push(smtp.close);
  const wsPort = (wsServer.address() as { port: number }).port;
  // A WebSocket server behind TLS: the proxy originates TLS to it for upgrades too.
  secureServer = createHttpsServer({ cert: certs.server.cert, key: certs.server.key });
  secureWs = new WebSocketServer({ server: secureServer });
  secureWs.on('connection', (ws) => ws.on('message', (m) => ws.send(`secure:${m.toString()}`)));
  await new Promise<void>((r) => secureServer.listen(0, '127.0.0.1', r));
  const wssPort = (secureServer.address() as { port: number }).port;
  const httpRoutes = routes([
    {
      match: { prefix: '/wss' },
      route: { cluster: 'wss', upgrade_configs: [{ upgrade_type: 'websocket' }] },
    },
    { match: { prefix: '/ws' }, route: { cluster: 'ws', upgrade_configs: [{ upgrade_type: 'websocket' }] } },
    { match: { prefix: '/' }, route: { cluster: 'web' } },
  ]);
  const listener = {
    name: 'mixed',
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    listener_filters: [TLS_INSPECTOR, HTTP_INSPECTOR],
    listener_filters_timeout: '0.1s',
    continue_on_listener_filters_timeout: true,
    filter_chains: [
      {
        name: 'tls',
        filter_chain_match: { transport_protocol: 'tls' },
        transport_socket: downstreamTlsSocket(serving(certs.server, { alpn_protocols: ['h2', 'http/1.1'] })),
        filters: [hcmFilter(httpRoutes, { stat_prefix: 'tls' })],
      },
      {
        name: 'http',
        filter_chain_match: { application_protocols: ['http/1.1', 'h2c'] },
        filters: [hcmFilter(httpRoutes, { stat_prefix: 'plain' })],
      },
      {
        name: 'raw',
        filters: [
          {
            name: 'envoy.filters.network.tcp_proxy',
            typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'smtp', cluster: 'smtp' },
          },
        ],
      },
    ],
  };
  proxy = await startProxy(
    bootstrap(
      [listener],
      [
        staticCluster('web', [web.port]),
        staticCluster('ws', [wsPort]),
        staticCluster('smtp', [smtp.port]),
        staticCluster('wss', [wssPort], upstreamTls({ sni: 'localhost', ...trusting(certs.ca) })),
      ],
    ),
  );
});

after(async () => {
  await proxy?.close();
  await new Promise<void>((r) => (wsServer ? wsServer.close(() => r()) : r()));
  for (const c of secureWs?.clients ?? []) c.terminate();
  await new Promise<void>((r) => (secureServer ? secureServer.close(() => r()) : r()));
  for (const c of closers) await c();
  await certs?.close();
});

function https(args: readonly string[], path: string) {
  const port = proxy.port();
  return curl([
    '--cacert',
    certs.ca.certFile,
    '--resolve',
    `localhost:${port}:127.0.0.1`,
    '-w',
    '\\nversion=%{http_version}',
    ...args,
    `https://localhost:${port}${path}`,
  ]);
}

test('HTTP/1.1, h2c, h2 over TLS, HTTP/1.1 over TLS, WebSocket and a server-first protocol on one port', async () => {
  const port = proxy.port();
  // Plain HTTP/1.1 and h2c with prior knowledge.
  const h1 = await curl([`http://127.0.0.1:${port}/one`]);
  assert.equal(h1.status, 200);
  const h2c = await curl(['--http2-prior-knowledge', `http://127.0.0.1:${port}/two`]);
  assert.equal(h2c.status, 200);
  // TLS terminated here; ALPN picks the codec.
  const h2tls = await https(['--http2'], '/three');
  assert.equal(h2tls.status, 200);
  assert.match(h2tls.body, /version=2$/);
  const h1tls = await https(['--http1.1'], '/four');
  assert.equal(h1tls.status, 200);
  assert.match(h1tls.body, /version=1\.1$/);
  assert.deepEqual(
    web.requests.slice(-4).map((r) => [r.url, r.headers['x-forwarded-proto']]),
    [
      ['/one', 'http'],
      ['/two', 'http'],
      ['/three', 'https'],
      ['/four', 'https'],
    ],
  );
  assert.equal(proxy.stat('http.plain.downstream_rq_http1_total'), 1);
  assert.equal(proxy.stat('http.plain.downstream_rq_http2_total'), 1);
  assert.equal(proxy.stat('http.tls.downstream_rq_http2_total'), 1);
  assert.equal(proxy.stat('http.tls.downstream_rq_http1_total'), 1);

  // WebSocket through the plain HTTP chain.
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => ws.send('ping over the mixed port'));
    ws.once('message', (m) => {
      assert.equal(m.toString(), 'ping over the mixed port');
      ws.close(1000, 'done');
    });
    ws.once('close', (code) => (code === 1000 ? resolve() : reject(new Error(`closed with ${code}`))));
    ws.once('error', reject);
  });

  // A server-first client sends nothing: after the detection timeout it is the TCP chain's, and hears the greeting.
  const greeting = await new Promise<string>((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => {
      got += d.toString();
      if (got.includes('\r\n')) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
  assert.equal(greeting, GREETING);
  assert.equal(proxy.stat(`listener.127.0.0.1_${port}.downstream_pre_cx_timeout`), 1);
});

test('openssl s_client on the same port negotiates h2 by ALPN', async () => {
  const out = await sClient(proxy.port(), ['-alpn', 'h2,http/1.1']);
  assert.match(out, /ALPN protocol: h2/);
});

test('WebSocket over TLS on the same port, to an upstream the proxy reaches over TLS', async () => {
  const port = proxy.port();
  const ws = new WebSocket(`wss://localhost:${port}/wss`, { ca: certs.ca.cert });
  const answer = await new Promise<string>((resolve, reject) => {
    ws.once('open', () => ws.send('hello'));
    ws.once('message', (m) => {
      resolve(m.toString());
      ws.close(1000);
    });
    ws.once('error', reject);
  });
  assert.equal(answer, 'secure:hello');
  assert.ok(proxy.stat('cluster.wss.ssl.handshake') >= 1);
  assert.ok(proxy.stat('http.tls.downstream_cx_upgrades_total') >= 1);
});
