// Integration: the HTTP/1.1 codec's connection handling — pipelining, HTTP/1.0 keep-alive, close-delimited and
// HEAD responses from the upstream, and a client that leaves mid-response.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  bootstrap,
  httpListener,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
} from './support/proxy.js';
import { RawConnection } from './support/raw_http.js';
import { startTcpServer, startUpstream, type Upstream } from './support/upstream.js';

let proxy: RunningProxy;
let echo: Upstream;
let closeDelimited: { port: number; close(): Promise<void> };
let endless: { port: number; close(): Promise<void> };
let endlessClosed = 0;

before(async () => {
  echo = await startUpstream('echo', (req, res, body) => {
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-length': '5' });
      res.end();
      return;
    }
    res.setHeader('content-type', 'text/plain');
    res.end(`${req.method} ${req.url} ${body}`);
  });
  // An HTTP/1.0-style upstream: no length, the close ends the body.
  closeDelimited = await startTcpServer((s) => {
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the close'));
  });
  // Streams forever; counts how often the proxy gives up on it.
  endless = await startTcpServer((s) => {
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n');
      const timer = setInterval(() => s.write('5\r\nhello\r\n'), 5);
      s.on('close', () => {
        clearInterval(timer);
        endlessClosed++;
      });
    });
  });
  proxy = await startProxy(
    bootstrap(
      [
        httpListener(
          'main',
          routes([
            { match: { prefix: '/close' }, route: { cluster: 'close_delimited' } },
            { match: { prefix: '/endless' }, route: { cluster: 'endless' } },
            { match: { prefix: '/' }, route: { cluster: 'echo' } },
          ]),
          { http_protocol_options: { accept_http_10: true } },
        ),
        httpListener('strict', routes([{ match: { prefix: '/' }, route: { cluster: 'echo' } }])),
        httpListener(
          'legacy',
          {
            name: 'legacy',
            virtual_hosts: [
              {
                name: 'legacy',
                domains: ['legacy.local'],
                routes: [{ match: { prefix: '/' }, route: { cluster: 'echo' } }],
              },
            ],
          },
          { http_protocol_options: { accept_http_10: true, default_host_for_http_10: 'legacy.local' } },
        ),
      ],
      [
        staticCluster('echo', [echo.port]),
        staticCluster('close_delimited', [closeDelimited.port]),
        staticCluster('endless', [endless.port]),
      ],
    ),
  );
});

after(async () => {
  await proxy.close();
  await echo.close();
  await closeDelimited.close();
  await endless.close();
});

test('pipelined requests in one packet are answered in order on the same connection', async () => {
  const c = await RawConnection.open(proxy.port());
  c.write(
    'GET /one HTTP/1.1\r\nHost: a\r\n\r\n' +
      'POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody' +
      'GET /three HTTP/1.1\r\nHost: a\r\n\r\n',
  );
  const bodies = [];
  for (let i = 0; i < 3; i++) bodies.push((await c.response()).body);
  assert.deepEqual(bodies, ['GET /one ', 'POST /two body', 'GET /three ']);
  assert.equal(c.closed, false);
  c.destroy();
});

test('requests split across many reads, with other reads between them, reach the upstream intact', async () => {
  // Every read of an accepted connection lands in one shared buffer: what the codec keeps across reads (a partial
  // head, body bytes waiting for an upstream connection, pipelined requests) must not be overwritten by the next.
  const c = await RawConnection.open(proxy.port());
  const other = await RawConnection.open(proxy.port());
  const pieces = [
    'POST /split HTTP/1.1\r\nHo',
    'st: a\r\nContent-Len',
    'gth: 10\r\n\r\nfirst',
    '-half',
    'POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nchun',
    'k\r\n3\r\ned!\r\n0\r\n\r\nGET /pipelined',
    ' HTTP/1.1\r\nHost: a\r\n\r\n',
  ];
  for (const p of pieces) {
    c.write(p);
    await new Promise((r) => setTimeout(r, 15));
    // Another connection's read in between reuses the buffer the piece above was read into.
    other.write('GET /other HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal((await other.response()).body, 'GET /other ');
  }
  const bodies = [];
  for (let i = 0; i < 3; i++) bodies.push((await c.response()).body);
  assert.deepEqual(bodies, ['POST /split first-half', 'POST /chunked chunked!', 'GET /pipelined ']);
  c.destroy();
  other.destroy();
});

test('an HTTP/1.0 client asking for keep-alive keeps its connection', async () => {
  const c = await RawConnection.open(proxy.port());
  c.write('GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  const first = await c.response();
  assert.equal(first.status, 200);
  assert.equal(first.headers.connection, 'keep-alive');
  c.write('GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  assert.equal((await c.response()).body, 'GET /b ');
  c.destroy();
});

test('a close-delimited upstream body reaches an HTTP/1.1 client chunked, and the client connection stays', async () => {
  const c = await RawConnection.open(proxy.port());
  c.write('GET /close HTTP/1.1\r\nHost: a\r\n\r\n');
  const r = await c.response();
  assert.equal(r.headers['transfer-encoding'], 'chunked');
  assert.equal(r.body, 'until the close');
  c.write('GET /after HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.equal((await c.response()).body, 'GET /after ');
  c.destroy();
});

test('HEAD responses carry the upstream length without a body, and the upstream connection is reused', async () => {
  const before = proxy.stat('cluster.echo.upstream_cx_total');
  const c = await RawConnection.open(proxy.port());
  for (let i = 0; i < 3; i++) {
    c.write('HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n');
    const r = await c.response({ head: true });
    assert.equal(r.headers['content-length'], '5');
    assert.equal(r.body, '');
  }
  c.write('GET /g HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.equal((await c.response()).body, 'GET /g ');
  assert.ok(
    proxy.stat('cluster.echo.upstream_cx_total') - before <= 1,
    'HEAD left the upstream connection reusable',
  );
  c.destroy();
});

test('a client leaving mid-response closes the upstream connection too (DC)', async () => {
  const c = await RawConnection.open(proxy.port());
  c.write('GET /endless HTTP/1.1\r\nHost: a\r\n\r\n');
  await c.until((got) => got.includes('hello'));
  c.destroy();
  const deadline = Date.now() + 5000;
  while (endlessClosed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(endlessClosed, 1);
  assert.ok(proxy.stat('cluster.endless.upstream_rq_tx_reset') >= 1);
});

test('HTTP/1.0 is refused with 426 unless the listener sets accept_http_10 (Envoy default)', async () => {
  const c = await RawConnection.open(proxy.port('strict'));
  c.write('GET /x HTTP/1.0\r\nHost: a\r\n\r\n');
  const r = await c.response();
  assert.equal(r.status, 426);
  assert.match(r.body, /set http_protocol_options\.accept_http_10: true/);
  c.destroy();
});

test('default_host_for_http_10 routes an HTTP/1.0 request without Host and names it upstream', async () => {
  const c = await RawConnection.open(proxy.port('legacy'));
  c.write('GET /old HTTP/1.0\r\n\r\n');
  const r = await c.response();
  assert.equal(r.status, 200);
  assert.equal(r.body, 'GET /old ');
  assert.equal(echo.requests.at(-1)?.headers.host, 'legacy.local');
  c.destroy();
});
