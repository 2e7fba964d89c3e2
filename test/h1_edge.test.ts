// Integration: HTTP/1.1 codec edge cases on both sides — pipelining floods, half-closes, early upstream answers,
// ambiguous or overlong upstream framing, requests abandoned in the pool queue, and backpressure bookkeeping.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import {
  connectUpstream,
  Exchange,
  H1Connection,
  type UpstreamHandler,
} from '../src/dataplane/upstream/h1_connection.js';
import { Host } from '../src/dataplane/upstream/host.js';
import { cluster as testCluster } from '../src/dataplane/upstream/lb/test_support.js';
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

type TcpServer = { port: number; close(): Promise<void> };

/** More than the kernel buffers of a loopback connection hold, so a client that does not read blocks the flush. */
const STUCK_BODY_BYTES = 16 * 1024 * 1024;

let proxy: RunningProxy;
let echo: Upstream;
/** Holds each request until the test calls release(url). */
let held: Upstream;
const releases = new Map<string, () => void>();
/** Answers 413 as soon as the request head arrives, without reading the body, and keeps the connection. */
let early: TcpServer;
/** Sends a response framed by both Transfer-Encoding and a (wrong) Content-Length. */
let ambiguous: TcpServer;
/** Sends two bytes more than its Content-Length announces; counts its connections. */
let overlong: TcpServer;
let overlongConnections = 0;
/** Streams tiny chunks for as long as the proxy reads them; records when it was last held back. */
let trickle: TcpServer;
const trickleState = { blockedSince: 0, sockets: new Set<Socket>() };

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

before(async () => {
  echo = await startUpstream('echo', (req, res, body) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`${req.method} ${req.url} ${body}`);
  });
  held = await startUpstream('held', (req, res) => {
    releases.set(req.url ?? '', () => res.end(req.url));
  });
  early = await startTcpServer((s) => {
    s.once('data', () => s.write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n'));
  });
  ambiguous = await startTcpServer((s) => {
    s.on('data', () =>
      s.write(
        'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      ),
    );
  });
  overlong = await startTcpServer((s) => {
    overlongConnections++;
    s.on('data', () => s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokXX'));
  });
  trickle = await startTcpServer((s) => {
    s.once('data', () => {
      trickleState.sockets.add(s);
      s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n');
      // ~900 chunks of 64 bytes per 64 KiB write.
      const block = Buffer.from(`40\r\n${'z'.repeat(64)}\r\n`.repeat(900));
      const pump = (): void => {
        while (!s.destroyed) {
          if (!s.write(block)) {
            trickleState.blockedSince = Date.now();
            s.once('drain', () => {
              trickleState.blockedSince = 0;
              pump();
            });
            return;
          }
        }
      };
      pump();
    });
  });
  proxy = await startProxy(
    bootstrap(
      [
        httpListener(
          'main',
          routes([
            { match: { prefix: '/local' }, direct_response: { status: 200 } },
            { match: { prefix: '/early' }, route: { cluster: 'early' } },
            { match: { prefix: '/ambiguous' }, route: { cluster: 'ambiguous' } },
            { match: { prefix: '/overlong' }, route: { cluster: 'overlong' } },
            { match: { prefix: '/trickle' }, route: { cluster: 'trickle', timeout: '0s' } },
            { match: { prefix: '/held/quick' }, route: { cluster: 'held', timeout: '0.2s' } },
            { match: { prefix: '/held' }, route: { cluster: 'held', timeout: '0s' } },
            { match: { prefix: '/' }, route: { cluster: 'echo' } },
          ]),
        ),
        httpListener('delayed', routes([{ match: { prefix: '/' }, direct_response: { status: 200 } }]), {
          stat_prefix: 'delayed',
          delayed_close_timeout: '0.4s',
        }),
        httpListener('delayedlong', routes([{ match: { prefix: '/' }, direct_response: { status: 200 } }]), {
          stat_prefix: 'delayedlong',
          delayed_close_timeout: '30s',
        }),
        httpListener(
          'stuck',
          {
            ...routes([
              {
                match: { prefix: '/' },
                direct_response: { status: 200, body: { inline_string: 'x'.repeat(STUCK_BODY_BYTES) } },
              },
            ]),
            max_direct_response_body_size_bytes: STUCK_BODY_BYTES,
          },
          { stat_prefix: 'stuck', stream_idle_timeout: '0.3s', delayed_close_timeout: '30s' },
        ),
      ],
      [
        staticCluster('echo', [echo.port]),
        staticCluster('held', [held.port], { circuit_breakers: { thresholds: [{ max_connections: 1 }] } }),
        staticCluster('early', [early.port]),
        staticCluster('ambiguous', [ambiguous.port]),
        staticCluster('overlong', [overlong.port]),
        staticCluster('trickle', [trickle.port]),
      ],
    ),
  );
});

after(async () => {
  for (const s of trickleState.sockets) s.destroy();
  await proxy?.close();
  await Promise.all([echo, held, early, ambiguous, overlong, trickle].map((u) => u?.close()));
});

test('thousands of pipelined requests answered locally, queued behind a forwarded one, are all answered', async () => {
  const n = 5000;
  const c = await RawConnection.open(proxy.port());
  try {
    // The proxy buffers what follows the forwarded request; once that is answered, the local replies to the
    // buffered requests finish as they are parsed.
    c.write(`GET /first HTTP/1.1\r\nHost: a\r\n\r\n${'GET /local HTTP/1.1\r\nHost:a\r\n\r\n'.repeat(n)}`);
    assert.equal((await c.response()).body, 'GET /first ');
    for (let i = 0; i < n; i++) assert.equal((await c.response()).status, 200, `response ${i}`);
    assert.equal(c.closed, false);
  } finally {
    c.destroy();
  }
});

test('a client that half-closes mid-body gets 400 and a closed connection, not a hang', async () => {
  const c = await RawConnection.open(proxy.port());
  try {
    c.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc');
    c.socket.end();
    const r = await c.response();
    assert.equal(r.status, 400);
    assert.match(r.body, /truncated/);
    assert.ok(await c.waitClosed());
  } finally {
    c.destroy();
  }
});

test('requests pipelined before a half-close are all answered; a truncated last one gets 400', async () => {
  const c = await RawConnection.open(proxy.port());
  try {
    c.write(
      'GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\n' +
        'POST /three HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc',
    );
    c.socket.end();
    const one = await c.response();
    const two = await c.response();
    assert.equal(one.body, 'GET /one ');
    assert.equal(two.body, 'GET /two ');
    assert.equal((await c.response()).status, 400);
    assert.ok(await c.waitClosed());
  } finally {
    c.destroy();
  }
});

test('an upstream that answers before reading the request body: its connection is closed, not leaked', async () => {
  const c = await RawConnection.open(proxy.port());
  try {
    c.write('POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nfirst part only');
    assert.equal((await c.response()).status, 413);
    assert.ok(await c.waitClosed(), 'the unread request body makes the client connection close');
    // The rest of the body will never come: the upstream connection waiting for it must go.
    await until(
      'the upstream connection to close',
      () => proxy.stat('cluster.early.upstream_cx_active') === 0,
    );
  } finally {
    c.destroy();
  }
});

test('an upstream response with both Transfer-Encoding and Content-Length is refused, not relayed', async () => {
  const c = await RawConnection.open(proxy.port());
  try {
    c.write('GET /ambiguous HTTP/1.1\r\nHost: a\r\n\r\n');
    const r = await c.response();
    assert.equal(r.status, 502);
    assert.match(r.body, /Transfer-Encoding and Content-Length/);
    // Nothing of the upstream body may be left over to pass for the next response.
    c.write('GET /echo HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal((await c.response()).body, 'GET /echo ');
  } finally {
    c.destroy();
  }
});

test('bytes beyond an upstream Content-Length: the response is cut there and the connection not reused', async () => {
  const c = await RawConnection.open(proxy.port());
  try {
    const before = overlongConnections;
    for (let i = 0; i < 2; i++) {
      c.write('GET /overlong HTTP/1.1\r\nHost: a\r\n\r\n');
      const r = await c.response();
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok');
    }
    assert.equal(overlongConnections - before, 2, 'each request went on a fresh upstream connection');
  } finally {
    c.destroy();
  }
});

/** /held/a occupies the only connection of "held" until released; returns its client. */
async function occupyHeld(): Promise<RawConnection> {
  releases.delete('/held/a');
  const a = await RawConnection.open(proxy.port());
  a.write('GET /held/a HTTP/1.1\r\nHost: a\r\n\r\n');
  await until('the upstream to hold /held/a', () => releases.has('/held/a'));
  return a;
}

test('a request that times out while queued at max_connections never reaches the upstream', async () => {
  const a = await occupyHeld();
  const b = await RawConnection.open(proxy.port());
  const c = await RawConnection.open(proxy.port());
  try {
    b.write('GET /held/quick/b HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal((await b.response()).status, 504);
    releases.get('/held/a')!();
    assert.equal((await a.response()).body, '/held/a');
    c.write('GET /held/c HTTP/1.1\r\nHost: a\r\n\r\n');
    await until('the upstream to hold /held/c', () => releases.has('/held/c'));
    releases.get('/held/c')!();
    assert.equal((await c.response()).body, '/held/c');
    assert.ok(
      !held.requests.some((r) => r.url === '/held/quick/b'),
      'the timed-out request was sent upstream',
    );
  } finally {
    a.destroy();
    b.destroy();
    c.destroy();
  }
});

test('a request whose client leaves while it is queued at max_connections never reaches the upstream', async () => {
  const a = await occupyHeld();
  const b = await RawConnection.open(proxy.port());
  const c = await RawConnection.open(proxy.port());
  try {
    b.write('GET /held/gone HTTP/1.1\r\nHost: a\r\n\r\n');
    await until('the request to queue', () => proxy.stat('cluster.held.upstream_rq_pending_active') === 1);
    b.socket.resetAndDestroy();
    await until(
      'the request to be dropped',
      () => proxy.stat('cluster.held.upstream_rq_pending_active') === 0,
    );
    releases.get('/held/a')!();
    assert.equal((await a.response()).body, '/held/a');
    c.write('GET /held/d HTTP/1.1\r\nHost: a\r\n\r\n');
    await until('the upstream to hold /held/d', () => releases.has('/held/d'));
    releases.get('/held/d')!();
    assert.equal((await c.response()).body, '/held/d');
    assert.ok(!held.requests.some((r) => r.url === '/held/gone'), 'the abandoned request was sent upstream');
  } finally {
    a.destroy();
    b.destroy();
    c.destroy();
  }
});

test('a stalled client adds one drain listener per stall, not one per upstream chunk', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => {
    if (w.name === 'MaxListenersExceededWarning') warnings.push(w.message);
  };
  process.on('warning', onWarning);
  const client = connect(proxy.port(), '127.0.0.1');
  client.on('error', () => undefined);
  try {
    await once(client, 'connect');
    client.pause(); // never reads: the proxy's writes back up in the middle of a packet of many chunks
    client.write('GET /trickle HTTP/1.1\r\nHost: a\r\n\r\n');
    await until(
      'the proxy to stop reading the upstream',
      () => trickleState.blockedSince > 0 && Date.now() - trickleState.blockedSince >= 300,
      30_000,
    );
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings, []);
  } finally {
    process.off('warning', onWarning);
    client.destroy();
  }
});

test('an upstream connection paused for a slow downstream is resumed before it is reused', async () => {
  const server = await startTcpServer((s) => {
    s.on('data', () => s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello'));
  });
  let conn: H1Connection | undefined;
  const target = { config: testCluster('ROUND_ROBIN'), tls: undefined };
  const socket = connectUpstream(target, new Host('127.0.0.1', server.port, 1, 0, undefined), () => conn!);
  try {
    await once(socket, 'connect');
    let released = 0;
    conn = new H1Connection(socket, {
      release: () => released++,
      closed: () => undefined,
      onBytes: () => undefined,
    });
    const exchange = (pauseOnData: boolean): Promise<string> =>
      new Promise((resolve, reject) => {
        let body = '';
        const handler: UpstreamHandler = {
          onRequestStart: () => undefined,
          onResponseStart: () => undefined,
          onResponseData: (c, chunk) => {
            body += chunk.toString();
            // The downstream is backed up: the router pauses the upstream, and the response ends right here.
            if (pauseOnData) c.pause();
          },
          onResponseEnd: () => resolve(body),
          onResponseError: (_c, err) => reject(err),
          onResponseWaiting: () => undefined,
        };
        conn!.start(
          new Exchange(
            { method: 'GET', path: '/', scheme: 'http', headers: ['host', 'a'], body: undefined },
            handler,
            () => undefined,
          ),
        );
      });
    assert.equal(await exchange(true), 'hello');
    assert.equal(released, 1);
    let timer: NodeJS.Timeout | undefined;
    const second = await Promise.race([
      exchange(false),
      new Promise<string>((r) => {
        timer = setTimeout(() => r('no response: the pooled socket stayed paused'), 2000);
      }),
    ]);
    clearTimeout(timer);
    assert.equal(second, 'hello');
  } finally {
    socket.destroy();
    await server.close();
  }
});

/** Sends one `connection: close` request and resolves once the response and the proxy's FIN are in. */
async function closingExchange(
  port: number,
): Promise<{ socket: Socket; response: string; reset: () => boolean }> {
  // Half-open: the client keeps its side open after the proxy's FIN until the test closes it.
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(socket, 'connect');
  let response = '';
  let reset = false;
  socket.on('data', (d: Buffer) => {
    response += d.toString('latin1');
  });
  socket.on('error', () => {
    reset = true;
  });
  const ended = once(socket, 'end');
  socket.write('GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n');
  await ended;
  return { socket, response, reset: () => reset };
}

test('delayed_close_timeout: after connection: close the proxy reads and drops what the client still sends, then closes', async () => {
  const { socket, response, reset } = await closingExchange(proxy.port('delayed'));
  try {
    assert.match(response, /^HTTP\/1\.1 200 /);
    assert.match(response, /\r\nconnection: close\r\n/);
    // Bytes after the proxy's FIN: closing the socket with them unread would answer with a reset.
    socket.write('bytes the proxy must read and drop\r\n');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(proxy.stat('http.delayed.downstream_cx_active'), 1, 'the proxy still holds the socket');
    await until(
      'the socket closed after the delay',
      () => proxy.stat('http.delayed.downstream_cx_active') === 0,
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(reset(), false, 'the client saw a reset');
  } finally {
    socket.destroy();
  }
});

test('delayed_close_timeout: the client closing its side ends the wait at once', async () => {
  const { socket } = await closingExchange(proxy.port('delayedlong'));
  try {
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(proxy.stat('http.delayedlong.downstream_cx_active'), 1, 'the proxy waits for the client');
    socket.end();
    // Far less than the 30 s delay.
    await until('the socket closed', () => proxy.stat('http.delayedlong.downstream_cx_active') === 0, 2000);
  } finally {
    socket.destroy();
  }
});

test('a closing connection whose client never reads the rest is cut off by the stream idle timeout', async () => {
  const socket = connect({ port: proxy.port('stuck'), host: '127.0.0.1', allowHalfOpen: true });
  try {
    await once(socket, 'connect');
    socket.pause(); // never reads: the 16 MiB response cannot be flushed
    socket.write('GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n');
    await until('the proxy holds the connection', () => proxy.stat('http.stuck.downstream_cx_active') === 1);
    // Not the 30 s delayed close: that only starts once the response is flushed.
    await until('the connection cut off', () => proxy.stat('http.stuck.downstream_cx_active') === 0, 5000);
  } finally {
    socket.destroy();
  }
});
