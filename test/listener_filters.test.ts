// Integration: listener filters choose filter chains — TLS passthrough by SNI, TLS / HTTP / raw TCP on one port, server-first ports, hostile clients.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { createServer as createTlsServer, type Server as TlsServer, connect as tlsConnect } from 'node:tls';
import { type Certs, type KeyPair, makeCerts } from './support/certs.js';
import { until } from './support/child.js';
import { curl } from './support/clients.js';
import {
  bootstrap,
  HTTP_INSPECTOR,
  hcmFilter,
  type Json,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
  TCP_PROXY_TYPE,
  TLS_INSPECTOR,
} from './support/proxy.js';
import { closedPort, startTcpServer, startUpstream, type Upstream } from './support/upstream.js';

const GREETING = '220 smtp.example.test ready\r\n';

let certs: Certs;
let proxy: RunningProxy;
let http: Upstream;
const closers: (() => Promise<void>)[] = [];
/** Ports of the TLS backends and of the server-first (greeting) backend. */
const ports = { tlsA: 0, tlsB: 0, smtp: 0, pinned: 0 };
const certA = { serial: '' };
const certB = { serial: '' };

/** A TLS server that terminates with `pair`, greets with `backend-<name>` and echoes. */
async function tlsBackend(name: string, pair: KeyPair): Promise<number> {
  const server: TlsServer = createTlsServer({ key: pair.key, cert: pair.cert }, (s) => {
    s.on('error', () => undefined);
    s.write(`backend-${name}\n`);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as { port: number }).port;
}

function tcpProxyFilter(statPrefix: string, cluster: string): Json {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: statPrefix, cluster },
  };
}

function listener(name: string, extra: Json): Json {
  return { name, address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, ...extra };
}

/** TLS, HTTP and everything else on one port; `extra` sets listener fields (timeouts, metadata ...). */
/** Sniffs with a control plane's timing (100 ms, then continue), not Envoy's default (15 s, then close). */
function mixedListener(name: string, extra: Json = {}): Json {
  return listener(name, {
    listener_filters: [TLS_INSPECTOR, HTTP_INSPECTOR],
    listener_filters_timeout: '0.1s',
    continue_on_listener_filters_timeout: true,
    filter_chains: [
      {
        name: 'tls',
        filter_chain_match: { transport_protocol: 'tls' },
        filters: [tcpProxyFilter(`${name}_tls`, 'tls_a')],
      },
      {
        name: 'http',
        filter_chain_match: { application_protocols: ['http/1.1', 'http/1.0', 'h2c'] },
        filters: [hcmFilter(routes([{ match: { prefix: '/' }, route: { cluster: 'web' } }]))],
      },
      { name: 'raw', filters: [tcpProxyFilter(`${name}_raw`, 'smtp')] },
    ],
    ...extra,
  });
}

before(async () => {
  certs = await makeCerts();
  const [a, b] = await Promise.all([certs.issueServer('a', 0xa1), certs.issueServer('b', 0xb2)]);
  certA.serial = 'A1';
  certB.serial = 'B2';
  ports.tlsA = await tlsBackend('a', a);
  ports.tlsB = await tlsBackend('b', b);
  // A server-first protocol: it greets on connect, then echoes.
  const smtp = await startTcpServer((s) => {
    s.write(GREETING);
    s.pipe(s);
  });
  closers.push(smtp.close);
  ports.smtp = smtp.port;
  http = await startUpstream('web');
  closers.push(http.close);
  ports.pinned = await closedPort();
  const config = bootstrap(
    [
      listener('sni', {
        listener_filters: [TLS_INSPECTOR],
        filter_chains: [
          {
            filter_chain_match: { server_names: ['a.example.test'] },
            filters: [tcpProxyFilter('sni_a', 'tls_a')],
          },
          {
            filter_chain_match: { server_names: ['b.example.test'] },
            filters: [tcpProxyFilter('sni_b', 'tls_b')],
          },
        ],
      }),
      mixedListener('mixed'),
      // For hostile clients: the verdicts on 64 KiB inputs must come from the inspectors, never from the 0.1 s
      // detection timeout of a machine too busy to read them in time.
      mixedListener('patient', { listener_filters_timeout: '30s' }),
      // Its own port is server-first: a client that sends nothing is not held for the 30 s detection timeout.
      {
        ...mixedListener('pinned', {
          listener_filters_timeout: '30s',
          metadata: { filter_metadata: { remora: { server_first_ports: [ports.pinned] } } },
        }),
        address: { socket_address: { address: '127.0.0.1', port_value: ports.pinned } },
      },
      mixedListener('strict', {
        listener_filters_timeout: '0.05s',
        continue_on_listener_filters_timeout: false,
      }),
      // Both inspectors disabled for every port: no detection, no wait.
      mixedListener('disabled', {
        listener_filters_timeout: '30s',
        listener_filters: [
          { ...TLS_INSPECTOR, filter_disabled: { any_match: true } },
          {
            ...HTTP_INSPECTOR,
            filter_disabled: {
              or_match: {
                rules: [
                  { destination_port_range: { start: 1, end: 2 } },
                  { not_match: { destination_port_range: { start: 1, end: 2 } } },
                ],
              },
            },
          },
        ],
      }),
    ],
    [
      staticCluster('tls_a', [ports.tlsA]),
      staticCluster('tls_b', [ports.tlsB]),
      staticCluster('smtp', [ports.smtp]),
      staticCluster('web', [http.port]),
    ],
  );
  proxy = await startProxy(config);
});

after(async () => {
  await proxy?.close();
  for (const c of closers) await c();
  await certs?.close();
});

/** A listener stat by its short name: `listener.127.0.0.1_<port>.<name>`. */
function listenerStat(listenerName: string, stat: string): number {
  return proxy.stat(`listener.127.0.0.1_${proxy.port(listenerName)}.${stat}`);
}

/** A TLS connection through the proxy: the greeting line of the backend reached and its certificate's serial. */
function tlsThrough(port: number, servername: string): Promise<{ greeting: string; serial: string }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername, ca: certs.ca.cert });
    s.once('error', reject);
    s.once('secureConnect', () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.once('data', (d: Buffer) => {
        resolve({ greeting: d.toString().trim(), serial });
        s.destroy();
      });
    });
  });
}

/** A raw connection that records what it receives and whether the proxy closed it. */
interface Raw {
  readonly socket: Socket;
  text(): string;
  /** The proxy's FIN or reset arrived. */
  readonly closed: Promise<void>;
}

function openRaw(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
    });
    const closed = new Promise<void>((r) => {
      socket.once('end', () => r());
      socket.once('close', () => r());
    });
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, text: () => got, closed }));
    socket.once('error', reject);
  });
}

async function expectText(raw: Raw, want: string, what: string): Promise<void> {
  await until(`${what}: ${JSON.stringify(want)} (got ${JSON.stringify(raw.text())})`, () =>
    raw.text().includes(want),
  );
}

test('TLS passthrough by SNI: Node tls.connect reaches the backend named, with its certificate', async () => {
  const port = proxy.port('sni');
  const a = await tlsThrough(port, 'a.example.test');
  assert.deepEqual(a, { greeting: 'backend-a', serial: certA.serial });
  const b = await tlsThrough(port, 'B.Example.Test');
  assert.deepEqual(b, { greeting: 'backend-b', serial: certB.serial });
  assert.equal(listenerStat('sni', 'tls_inspector.tls_found'), 2);
  assert.equal(listenerStat('sni', 'tls_inspector.sni_found'), 2);
});

test('TLS passthrough by SNI: openssl s_client verifies the backend certificate through the proxy', async () => {
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${proxy.port('sni')}`,
        '-servername',
        'b.example.test',
        '-CAfile',
        certs.ca.certFile,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let text = '';
    p.stdout.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('backend-b') && text.includes('Verify return code')) p.kill();
    });
    p.on('error', reject);
    p.on('close', () => resolve(text));
  });
  assert.match(out, /Verify return code: 0 \(ok\)/);
  assert.match(out, /backend-b/);
});

test('an SNI no chain names: no_filter_chain_match, the connection is closed', async () => {
  const before = listenerStat('sni', 'no_filter_chain_match');
  await assert.rejects(tlsThrough(proxy.port('sni'), 'c.example.test'));
  assert.equal(listenerStat('sni', 'no_filter_chain_match'), before + 1);
});

test('one port, three chains: TLS to the TLS backend, HTTP to the connection manager, raw TCP to the rest', async () => {
  const port = proxy.port('mixed');
  const t = await tlsThrough(port, 'a.example.test');
  assert.equal(t.greeting, 'backend-a');
  const r = await curl([`http://127.0.0.1:${port}/hello`]);
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).name, 'web');
  assert.equal(http.requests.at(-1)?.url, '/hello');
  assert.ok(listenerStat('mixed', 'http_inspector.http11_found') >= 1);
  // HTTP/1.0 is detected too (and the connection manager answers it with 426, as Envoy does by default).
  const r10 = await curl(['--http1.0', `http://127.0.0.1:${port}/`]);
  assert.equal(r10.status, 426);
  assert.ok(listenerStat('mixed', 'http_inspector.http10_found') >= 1);
  // HTTP/2 with prior knowledge: the inspector sees the preface (h2c), the connection manager speaks HTTP/2.
  const h2 = await curl(['--http2-prior-knowledge', `http://127.0.0.1:${port}/h2`]);
  assert.equal(h2.status, 200);
  assert.equal(http.requests.at(-1)?.url, '/h2');
  assert.equal(listenerStat('mixed', 'http_inspector.http2_found'), 1);
  // A client-first protocol that is not HTTP reaches the raw chain, its first bytes intact.
  const raw = await openRaw(port);
  raw.socket.write('EHLO client.example.test\r\n');
  await expectText(raw, `${GREETING}EHLO client.example.test\r\n`, 'greeting then echo');
  raw.socket.destroy();
  assert.equal(listenerStat('mixed', 'tls_inspector.tls_found'), 1);
  assert.ok(listenerStat('mixed', 'http_inspector.http_not_found') >= 1);
});

test('a request and the FIN of the client in one go: the inspected bytes and the half-close both reach the chain', async () => {
  const raw = await openRaw(proxy.port('mixed'));
  raw.socket.end('GET /half HTTP/1.1\r\nhost: x\r\n\r\n');
  await raw.closed;
  assert.match(raw.text(), /^HTTP\/1\.1 200 /);
  assert.equal(http.requests.at(-1)?.url, '/half');
  const echo = await openRaw(proxy.port('mixed'));
  echo.socket.end('PING\r\n');
  await echo.closed;
  assert.equal(echo.text(), `${GREETING}PING\r\n`);
});

test('a client that sends nothing gets the server-first greeting once the detection timeout passes', async () => {
  const before = listenerStat('mixed', 'downstream_pre_cx_timeout');
  const raw = await openRaw(proxy.port('mixed'));
  await expectText(raw, GREETING, 'greeting');
  assert.equal(listenerStat('mixed', 'downstream_pre_cx_timeout'), before + 1);
  raw.socket.write('QUIT\r\n');
  await expectText(raw, 'QUIT\r\n', 'echo after the greeting');
  raw.socket.destroy();
});

test('a server-first destination port skips detection: the greeting comes at once', async () => {
  assert.equal(proxy.port('pinned'), ports.pinned);
  const raw = await openRaw(ports.pinned);
  // The listener's timeout is 30 s: the greeting arriving within the test's wait shows no detection ran.
  await expectText(raw, GREETING, 'greeting');
  raw.socket.destroy();
  assert.equal(listenerStat('pinned', 'downstream_pre_cx_timeout'), 0);
  assert.equal(listenerStat('pinned', 'downstream_pre_cx_active'), 0);
  // HTTP on a server-first port goes to the raw chain too: nothing looked at its bytes.
  const http = await openRaw(ports.pinned);
  http.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  await expectText(http, `${GREETING}GET / HTTP/1.1`, 'raw echo');
  http.socket.destroy();
});

test('filter_disabled matching the port: the inspectors are skipped, no waiting', async () => {
  const raw = await openRaw(proxy.port('disabled'));
  await expectText(raw, GREETING, 'greeting');
  raw.socket.destroy();
  assert.equal(listenerStat('disabled', 'downstream_pre_cx_timeout'), 0);
  assert.equal(listenerStat('disabled', 'http_inspector.http_not_found'), 0);
  assert.equal(listenerStat('disabled', 'tls_inspector.tls_not_found'), 0);
});

test('continue_on_listener_filters_timeout: false closes a silent client without a greeting', async () => {
  const raw = await openRaw(proxy.port('strict'));
  await raw.closed;
  assert.equal(raw.text(), '');
  assert.equal(listenerStat('strict', 'downstream_pre_cx_timeout'), 1);
});

test('hostile clients: garbage, a ClientHello too large, a request line too long, a close mid-detection', async () => {
  const port = proxy.port('patient');
  const stat = (s: string) => listenerStat('patient', s);
  // Garbage that is neither TLS nor HTTP goes to the raw chain intact.
  const garbage = Buffer.concat([Buffer.from([0x00, 0xff, 0x16]), randomBytes(4000)]);
  const g = await openRaw(port);
  g.socket.write(garbage);
  await until('garbage echoed', () => Buffer.from(g.text(), 'latin1').includes(garbage));
  g.socket.destroy();

  // A ClientHello that says it is 72 KiB long: refused at once.
  const tooLarge = stat('tls_inspector.client_hello_too_large');
  const big = await openRaw(port);
  big.socket.write(Buffer.from([0x16, 3, 1, 0x40, 0, 1, 0x01, 0x20, 0x00]));
  await big.closed;
  assert.equal(big.text(), '');
  // A ClientHello in one-byte records that never ends within 64 KiB.
  const trickle = await openRaw(port);
  const records: Buffer[] = [Buffer.from([0x16, 3, 1, 0, 4, 1, 0, 0x80, 0])];
  for (let i = 0; i < 14000; i++) records.push(Buffer.from([0x16, 3, 1, 0, 1, 0]));
  trickle.socket.write(Buffer.concat(records));
  await trickle.closed;
  assert.equal(stat('tls_inspector.client_hello_too_large'), tooLarge + 2);

  // A request line longer than the HTTP inspector reads.
  const readErrors = stat('http_inspector.read_error');
  const long = await openRaw(port);
  long.socket.write(`GET /${'a'.repeat(70 * 1024)}`);
  await long.closed;
  assert.equal(stat('http_inspector.read_error'), readErrors + 1);

  // The peer closes before the inspectors decide.
  const remoteCloses = stat('downstream_listener_filter_remote_close');
  const half = await openRaw(port);
  half.socket.end(Buffer.from([0x16, 3, 1]));
  await half.closed;
  assert.equal(stat('downstream_listener_filter_remote_close'), remoteCloses + 1);
  const reset = await openRaw(port);
  reset.socket.write('GET /');
  reset.socket.resetAndDestroy();
  await until('the reset connection is gone', () => stat('downstream_pre_cx_active') === 0);

  // Everyone else is still served.
  const r = await curl([`http://127.0.0.1:${port}/after`]);
  assert.equal(r.status, 200);
  assert.equal((await tlsThrough(port, 'a.example.test')).greeting, 'backend-a');
  assert.equal(stat('downstream_pre_cx_active'), 0);
});
