// Integration: HTTP/1.1 upgrades through a real proxy — WebSocket with the ws client and server (frames of every kind,
// close handshake, idle timeout, resets), upgrade_configs at HCM and route level, custom upgrade types with half-close,
// and upgrades that do not happen (403, non-101 answers, connect failures), with stats and access logs.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { until } from './support/child.js';
import { rawExchange } from './support/clients.js';
import {
  bootstrap,
  deadCluster,
  httpListener,
  type Json,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
} from './support/proxy.js';
import { parseOneResponse } from './support/raw_http.js';
import { closedPort, startTcpServer, startUpstream, type Upstream } from './support/upstream.js';

const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';

type TcpServer = Awaited<ReturnType<typeof startTcpServer>>;

let dir: string;
let proxy: RunningProxy;
let wss: WebSocketServer;
let http: Upstream;
const tcpServers: TcpServer[] = [];
/** Handshake headers and close frames the WebSocket upstream saw, by connection. */
const seen: { url: string; headers: Record<string, string | string[] | undefined> }[] = [];
const serverCloses: { code: number; reason: string }[] = [];
/** What the raw "foo" upstream read before the client's FIN. */
const fooReceived: Buffer[] = [];

/** A raw WebSocket upstream that accepts the handshake, sends one text message, and resets the connection when
 * the client sends anything. */
function acceptThenReset(s: Socket): void {
  let head = '';
  s.on('data', (c: Buffer) => {
    if (head.includes('\r\n\r\n')) return void s.resetAndDestroy();
    head += c.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    const key = /\r\nsec-websocket-key: *([^\r]*)/i.exec(head)?.[1] ?? '';
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    s.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    s.write(Buffer.concat([Buffer.from([0x81, 10]), Buffer.from('going away')]));
  });
}

/** A raw upstream that agrees to any upgrade, then echoes upper-cased, answers a FIN with "bye" and its own FIN. */
function upgradeEcho(s: Socket): void {
  let head = '';
  let upgraded = false;
  s.on('data', (c: Buffer) => {
    if (upgraded) {
      fooReceived.push(c);
      s.write(c.toString('latin1').toUpperCase(), 'latin1');
      return;
    }
    head += c.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    const protocol = /\r\nupgrade: *([^\r]*)/i.exec(head)?.[1] ?? '?';
    upgraded = true;
    s.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${protocol}\r\n\r\n`);
    const rest = head.slice(end + 4);
    if (rest) {
      fooReceived.push(Buffer.from(rest, 'latin1'));
      s.write(rest.toUpperCase(), 'latin1');
    }
  });
  s.on('end', () => s.end('bye'));
}

const fileLog = (): Json => ({
  name: 'envoy.access_loggers.file',
  typed_config: {
    '@type': FILE_LOG,
    path: join(dir, 'access.log'),
    log_format: {
      text_format_source: {
        inline_string: '%REQ(:PATH)% %RESPONSE_CODE% %BYTES_RECEIVED% %BYTES_SENT% %RESPONSE_FLAGS%\n',
      },
    },
  },
});

function logLines(): string[] {
  const path = join(dir, 'access.log');
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
}

async function logLine(prefix: string): Promise<string> {
  let found: string | undefined;
  await until(`an access log line starting with ${prefix}`, () => {
    found = logLines().find((l) => l.startsWith(`${prefix} `));
    return found !== undefined;
  });
  return found!;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remora-ws-'));
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (ws, req) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    ws.on('close', (code, reason) => serverCloses.push({ code, reason: reason.toString() }));
    if (req.url === '/drop') {
      ws.send('going away');
      setImmediate(() => ws.terminate());
      return;
    }
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  http = await startUpstream('http');
  const plain200 = await startTcpServer((s) => {
    s.once('data', () =>
      s.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 14\r\n\r\nno upgrade 4u\n'),
    );
  });
  const foo = await startTcpServer(upgradeEcho);
  const resetter = await startTcpServer(acceptThenReset);
  tcpServers.push(plain200, foo, resetter);
  const wsPort = (wss.address() as { port: number }).port;
  const upgradeRoutes = (type: string, enabled: boolean): Json => ({
    upgrade_configs: [{ upgrade_type: type, enabled }],
  });
  proxy = await startProxy(
    bootstrap(
      [
        httpListener(
          'main',
          routes([
            { match: { prefix: '/ws-off' }, route: { cluster: 'ws', ...upgradeRoutes('websocket', false) } },
            { match: { prefix: '/idle' }, route: { cluster: 'ws', idle_timeout: '0.3s' } },
            { match: { prefix: '/foo-on' }, route: { cluster: 'foo', ...upgradeRoutes('FOO', true) } },
            { match: { prefix: '/foo' }, route: { cluster: 'foo' } },
            { match: { prefix: '/baz' }, route: { cluster: 'foo', ...upgradeRoutes('baz', true) } },
            { match: { prefix: '/ok200' }, route: { cluster: 'plain200' } },
            { match: { prefix: '/reset' }, route: { cluster: 'resetter' } },
            { match: { prefix: '/dead' }, route: { cluster: 'dead' } },
            { match: { prefix: '/http' }, route: { cluster: 'http' } },
            { match: { prefix: '/direct' }, direct_response: { status: 200, body: { inline_string: 'hi' } } },
            {
              match: { prefix: '/' },
              route: { cluster: 'ws' },
              request_headers_to_add: [{ header: { key: 'x-route', value: 'ws' } }],
              response_headers_to_add: [{ header: { key: 'x-resp', value: 'yes' } }],
            },
          ]),
          {
            upgrade_configs: [{ upgrade_type: 'WebSocket' }, { upgrade_type: 'foo', enabled: false }],
            access_log: [fileLog()],
          },
        ),
        httpListener('plain', routes([{ match: { prefix: '/' }, route: { cluster: 'ws' } }]), {
          stat_prefix: 'plain',
        }),
      ],
      [
        staticCluster('ws', [wsPort]),
        staticCluster('foo', [foo.port]),
        staticCluster('plain200', [plain200.port]),
        staticCluster('resetter', [resetter.port]),
        staticCluster('http', [http.port]),
        deadCluster('dead', await closedPort()),
      ],
    ),
  );
});

after(async () => {
  await proxy?.close();
  for (const c of wss?.clients ?? []) c.terminate();
  await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
  await Promise.all(tcpServers.map((s) => s.close()));
  await http?.close();
  rmSync(dir, { recursive: true, force: true });
});

const stat = (name: string): number => proxy.stat(name);

/** Opens a WebSocket through the proxy; rejects with ws's error (e.g. "Unexpected server response: 403"). */
function openWs(path: string, listener = 'main'): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port(listener)}${path}`);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve) =>
    ws.once('message', (data, binary) => resolve({ data: Buffer.from(data as Buffer), binary })),
  );
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve({ code: 1006, reason: '' });
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
}

async function settled(): Promise<void> {
  await until('every tunnel closed', () => stat('http.ingress.downstream_cx_upgrades_active') === 0);
  await until('every upstream connection closed', () => stat('cluster.ws.upstream_cx_active') === 0);
}

/** Sends raw bytes and resolves with the connection once the 101 head (and anything after it) arrived. */
function rawUpgrade(
  path: string,
  protocol: string,
  early = '',
  extraHeaders = '',
): Promise<{ socket: Socket; head: string; after: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: proxy.port('main'), host: '127.0.0.1', allowHalfOpen: true });
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const after = end + 4 < buf.length ? [buf.subarray(end + 4)] : [];
      resolve({ socket, head: buf.subarray(0, end).toString('latin1'), after });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: up.test\r\nConnection: Upgrade\r\nUpgrade: ${protocol}\r\n${extraHeaders}\r\n${early}`,
    );
  });
}

test('text and binary messages, a large binary message and ping/pong go both ways through the tunnel', async () => {
  const totalBefore = stat('http.ingress.downstream_cx_upgrades_total');
  const ws = await openWs('/chat');
  assert.equal(stat('http.ingress.downstream_cx_upgrades_active'), 1);
  assert.equal(stat('http.ingress.downstream_cx_upgrades_total'), totalBefore + 1);

  let reply = nextMessage(ws);
  ws.send('hello');
  assert.deepEqual(await reply, { data: Buffer.from('hello'), binary: false });

  reply = nextMessage(ws);
  ws.send(Buffer.from([0, 1, 2, 255]));
  assert.deepEqual(await reply, { data: Buffer.from([0, 1, 2, 255]), binary: true });

  const big = randomBytes(5 * 1024 * 1024 + 17);
  reply = nextMessage(ws);
  ws.send(big);
  const echoed = await reply;
  assert.equal(echoed.binary, true);
  assert.equal(echoed.data.length, big.length);
  assert.equal(
    createHash('sha256').update(echoed.data).digest('hex'),
    createHash('sha256').update(big).digest('hex'),
  );

  const pong = new Promise<Buffer>((r) => ws.once('pong', (d) => r(d)));
  ws.ping('are you there');
  assert.equal((await pong).toString(), 'are you there');
  // And the other way: the server's ping is answered by the client through the proxy.
  const server = [...wss.clients].at(-1)!;
  const serverPong = new Promise<Buffer>((r) => server.once('pong', (d) => r(d)));
  server.ping('server ping');
  assert.equal((await serverPong).toString(), 'server ping');

  const done = closed(ws);
  ws.close(4000, 'all done');
  assert.deepEqual(await done, { code: 4000, reason: 'all done' });
  await until('the server saw the close', () => serverCloses.some((c) => c.code === 4000));
  assert.deepEqual(serverCloses.at(-1), { code: 4000, reason: 'all done' });
  await settled();
  const line = await logLine('/chat');
  const [, code, received, sent, flags] = line.split(' ');
  assert.equal(code, '101');
  assert.ok(Number(received) > big.length, line);
  assert.ok(Number(sent) > big.length, line);
  assert.equal(flags, '-');
});

test('the upstream handshake carries Upgrade and Connection, forwarding headers and route mutations', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${proxy.port('main')}/headers`, { headers: { 'x-client': 'c1' } });
  const response = new Promise<Record<string, string | string[] | undefined>>((r) =>
    ws.once('upgrade', (res) => r(res.headers)),
  );
  await new Promise((r) => ws.once('open', r));
  const h = seen.find((s) => s.url === '/headers')!.headers;
  assert.equal(h.upgrade, 'websocket');
  assert.match(String(h.connection), /upgrade/i);
  assert.equal(h['x-client'], 'c1');
  assert.equal(h['x-route'], 'ws');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.match(String(h['x-request-id']), /^[0-9a-f-]{36}$/);
  assert.ok(h['sec-websocket-key']);
  const rh = await response;
  assert.equal(rh['x-resp'], 'yes');
  assert.equal(rh.upgrade, 'websocket');
  assert.match(String(rh.connection), /upgrade/i);
  assert.ok(rh['sec-websocket-accept']);
  const done = closed(ws);
  ws.close();
  await done;
  await settled();
});

test('an idle tunnel is closed after the route idle_timeout', async () => {
  const before = stat('http.ingress.downstream_rq_idle_timeout');
  const ws = await openWs('/idle');
  const reply = nextMessage(ws);
  ws.send('still here');
  assert.equal((await reply).data.toString(), 'still here');
  assert.equal((await closed(ws)).code, 1006);
  await settled();
  assert.equal(stat('http.ingress.downstream_rq_idle_timeout'), before + 1);
  assert.match(await logLine('/idle'), /^\/idle 101 \d+ \d+ SI$/);
});

test('an upstream that closes mid-tunnel without a close frame: the client is closed, stats return to zero', async () => {
  // The message and the close may come with the 101: listen before the connection opens.
  const ws = new WebSocket(`ws://127.0.0.1:${proxy.port('main')}/drop`);
  const msg = nextMessage(ws);
  const done = closed(ws);
  assert.equal((await msg).data.toString(), 'going away');
  assert.equal((await done).code, 1006);
  await settled();
  assert.equal(stat('cluster.ws.upstream_rq_active'), 0);
  assert.match(await logLine('/drop'), /^\/drop 101 \d+ \d+ -$/);
});

test('an upstream that resets the connection mid-tunnel: the client is closed, UR and upstream_rq_rx_reset', async () => {
  const resets = stat('cluster.resetter.upstream_rq_rx_reset');
  const ws = new WebSocket(`ws://127.0.0.1:${proxy.port('main')}/reset`);
  const msg = nextMessage(ws);
  const done = closed(ws);
  assert.equal((await msg).data.toString(), 'going away');
  ws.send('and then?');
  assert.equal((await done).code, 1006);
  await until('the tunnel closed', () => stat('http.ingress.downstream_cx_upgrades_active') === 0);
  assert.equal(stat('cluster.resetter.upstream_cx_active'), 0);
  assert.equal(stat('cluster.resetter.upstream_rq_active'), 0);
  assert.equal(stat('cluster.resetter.upstream_rq_rx_reset'), resets + 1);
  assert.match(await logLine('/reset'), /^\/reset 101 \d+ 12 UR$/);
});

test('a client that goes away mid-tunnel (FIN, then a reset): the upstream sees the close, stats return to zero', async () => {
  const closes = serverCloses.length;
  const ws = await openWs('/vanish');
  const reply = nextMessage(ws);
  ws.send('x');
  await reply;
  ws.terminate();
  await until('the upstream saw the close', () => serverCloses.length > closes);
  assert.equal(serverCloses.at(-1)!.code, 1006);
  await settled();
  assert.match(await logLine('/vanish'), /^\/vanish 101 \d+ \d+ -$/);

  const resets = stat('cluster.ws.upstream_rq_tx_reset');
  const { socket } = await rawUpgrade(
    '/gone',
    'websocket',
    '',
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n',
  );
  socket.resetAndDestroy();
  await until('the upstream saw the close', () => serverCloses.length > closes + 1);
  assert.equal(serverCloses.at(-1)!.code, 1006);
  await settled();
  assert.equal(stat('cluster.ws.upstream_rq_active'), 0);
  assert.equal(stat('cluster.ws.upstream_rq_tx_reset'), resets + 1);
  assert.match(await logLine('/gone'), /^\/gone 101 0 \d+ DC$/);
});

test('upgrades are refused with 403 where upgrade_configs do not enable them', async () => {
  const before = stat('http.plain.downstream_rq_ws_on_non_ws_route');
  await assert.rejects(openWs('/', 'plain'), /Unexpected server response: 403/);
  assert.equal(stat('http.plain.downstream_rq_ws_on_non_ws_route'), before + 1);
  // The route disables what the HCM enables.
  await assert.rejects(openWs('/ws-off'), /Unexpected server response: 403/);
  // A direct response route has no upgrade_configs: the HCM's decide (websocket is enabled there).
  await assert.rejects(openWs('/direct'), /Unexpected server response: 200/);
  const raw = await rawExchange(
    proxy.port('main'),
    'GET /foo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n',
  );
  const r = parseOneResponse(raw, { closed: true })!.response;
  assert.equal(r.status, 403);
  assert.equal(r.headers['x-remora-error'], 'REMORA_ERR_UPGRADE_REFUSED');
  assert.equal(r.headers.connection, 'close');
  assert.match(r.body, /upgrade to "foo" is not enabled/);
  assert.equal(stat('http.ingress.downstream_cx_upgrades_active'), 0);
});

test('bytes sent after a refused upgrade are never parsed as a request: the connection closes', async () => {
  const requests = stat('http.ingress.downstream_rq_total');
  const raw = await rawExchange(
    proxy.port('main'),
    Buffer.concat([
      Buffer.from('GET /ws-off HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'),
      Buffer.from([0x81, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e]),
      Buffer.from('GET /http HTTP/1.1\r\nHost: x\r\n\r\n'),
    ]),
  );
  const first = parseOneResponse(raw, { closed: true })!;
  assert.equal(first.response.status, 403);
  assert.equal(first.rest, '');
  assert.equal(stat('http.ingress.downstream_rq_total'), requests + 1);
});

test('a custom upgrade type enabled on the route is tunnelled, with half-close both ways and exact byte counts', async () => {
  fooReceived.length = 0;
  const { socket, head, after } = await rawUpgrade('/foo-on', 'Foo', 'early ');
  assert.match(head, /^HTTP\/1\.1 101 /);
  assert.match(head, /\r\nconnection: upgrade\r\n/i);
  assert.match(head, /\r\nupgrade: Foo(\r\n|$)/i);
  const chunks = [...after];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((r) => socket.once('end', () => r()));
  socket.write('bytes');
  await until('the echo', () => Buffer.concat(chunks).toString() === 'EARLY BYTES');
  socket.end(' last'); // FIN: the upstream answers "bye" and its own FIN, which must come back through
  await ended;
  assert.equal(Buffer.concat(chunks).toString(), 'EARLY BYTES LASTbye');
  assert.equal(Buffer.concat(fooReceived).toString(), 'early bytes last');
  socket.destroy();
  await until('the tunnel closed', () => stat('http.ingress.downstream_cx_upgrades_active') === 0);
  assert.equal(stat('cluster.foo.upstream_cx_active'), 0);
  assert.equal(await logLine('/foo-on'), '/foo-on 101 16 19 -');
});

test('a type only a route names is allowed there; h2c and Upgrade without Connection: upgrade are plain requests', async () => {
  const { socket, head } = await rawUpgrade('/baz', 'baz');
  assert.match(head, /^HTTP\/1\.1 101 /);
  socket.destroy();
  const h2c = parseOneResponse(
    await rawExchange(
      proxy.port('main'),
      'GET /http HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n',
    ),
    { closed: true },
  )!.response;
  assert.equal(h2c.status, 200);
  const noConnection = parseOneResponse(
    await rawExchange(
      proxy.port('main'),
      'GET /http HTTP/1.1\r\nHost: x\r\nConnection: close\r\nUpgrade: websocket\r\n\r\n',
    ),
    { closed: true },
  )!.response;
  assert.equal(noConnection.status, 200);
  for (const r of http.requests.slice(-2)) {
    assert.equal(r.headers.upgrade, undefined);
    assert.equal(r.headers['http2-settings'], undefined);
    assert.doesNotMatch(r.headers.connection ?? '', /upgrade/i);
  }
  await until('the tunnel closed', () => stat('http.ingress.downstream_cx_upgrades_active') === 0);
});

test('an upstream answering 200 instead of 101: the response is relayed and the connection closed', async () => {
  await assert.rejects(openWs('/ok200'), /Unexpected server response: 200/);
  const raw = await rawExchange(
    proxy.port('main'),
    'GET /ok200 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
  );
  const { response, rest } = parseOneResponse(raw, { closed: true })!;
  assert.equal(response.status, 200);
  assert.equal(response.body, 'no upgrade 4u\n');
  assert.equal(response.headers.connection, 'close');
  assert.equal(response.headers.upgrade, undefined);
  assert.equal(rest, '');
  await until('upstream connections closed', () => stat('cluster.plain200.upstream_cx_active') === 0);
  assert.equal(stat('cluster.plain200.upstream_rq_active'), 0);
  assert.match(await logLine('/ok200'), /^\/ok200 200 0 14 -$/);
});

test('an upstream that cannot be reached: 503 with UF', async () => {
  await assert.rejects(openWs('/dead'), /Unexpected server response: 503/);
  const raw = await rawExchange(
    proxy.port('main'),
    'GET /dead HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
  );
  const r = parseOneResponse(raw, { closed: true })!.response;
  assert.equal(r.status, 503);
  assert.equal(r.headers['x-remora-error'], 'REMORA_ERR_UPSTREAM_CONNECT');
  assert.match(await logLine('/dead'), /^\/dead 503 0 \d+ UF$/);
  assert.equal(stat('cluster.dead.upstream_rq_active'), 0);
  assert.equal(stat('cluster.dead.upstream_cx_active'), 0);
});
