// The native HTTP/2 client pool against node:http2 servers and a raw-frame peer.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createH2Server, type Http2Server } from 'node:http2';
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { translateCluster } from '../../../config/cluster.js';
import {
  ErrorCode,
  FrameReader,
  frame,
  goawayFrame,
  headerBlockFrames,
  settingsFrame,
  Type,
} from '../../http/h2/native/frames.js';
import { HpackEncoder } from '../../http/h2/native/hpack.js';
import type { HeaderList } from '../../http/header_list.js';
import { StatsStore } from '../../observe/stats.js';
import { Cluster } from '../cluster.js';
import type {
  BodyTarget,
  ConnectionPool,
  RequestBody,
  UpstreamController,
  UpstreamError,
  UpstreamHandler,
  UpstreamRequest,
} from '../upstream_request.js';

const closers: (() => unknown)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

function clusterFor(port: number, extra: Record<string, unknown> = {}): Cluster {
  const r = translateCluster(
    {
      name: 'up',
      connect_timeout: '1s',
      type: 'STATIC',
      http2_protocol_options: {},
      load_assignment: {
        cluster_name: 'up',
        endpoints: [
          {
            lb_endpoints: [
              { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } },
            ],
          },
        ],
      },
      ...extra,
    },
    'cluster',
  );
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const c = new Cluster(r.value, new StatsStore());
  closers.push(() => c.destroy());
  return c;
}

function poolOf(c: Cluster): ConnectionPool {
  return c.pool(c.allHosts()[0]!, 'HTTP/2');
}

interface Result {
  status: number;
  headers: HeaderList;
  body: string;
  trailers?: HeaderList;
  error?: UpstreamError;
  waiting: number;
}

function send(pool: ConnectionPool, req: Partial<UpstreamRequest>): Promise<Result> {
  return new Promise((resolve) => {
    const r: Result = { status: 0, headers: [], body: '', waiting: 0 };
    const handler: UpstreamHandler = {
      onRequestStart() {},
      onResponseStart(_c, status, headers) {
        r.status = status;
        r.headers = headers;
      },
      onResponseData(_c, chunk) {
        r.body += chunk.toString();
      },
      onResponseEnd(_c, trailers) {
        r.trailers = trailers;
        resolve(r);
      },
      onResponseError(_c, err) {
        r.error = err;
        resolve(r);
      },
      onResponseWaiting() {
        r.waiting++;
      },
    };
    pool.dispatch(
      {
        method: 'GET',
        path: '/',
        scheme: 'http',
        headers: ['host', 'example.test'],
        body: undefined,
        ...req,
      },
      handler,
    );
  });
}

/** A body of fixed chunks, then trailers. */
function body(chunks: string[], trailers?: HeaderList): RequestBody {
  return {
    open(target: BodyTarget) {
      for (const c of chunks) target.onData(Buffer.from(c));
      target.onEnd(trailers);
    },
    resume() {},
    detach() {},
  };
}

async function h2server(handler: Parameters<typeof createH2Server>[1]): Promise<number> {
  const s: Http2Server = createH2Server({}, handler);
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  closers.push(() => new Promise((r) => s.close(r)));
  const sessions = new Set<import('node:http2').ServerHttp2Session>();
  s.on('session', (x) => sessions.add(x));
  closers.push(() => {
    for (const x of sessions) x.destroy();
  });
  return (s.address() as AddressInfo).port;
}

test('a GET and a POST with body and trailers against a node:http2 server', async () => {
  const port = await h2server((req, res) => {
    let got = '';
    req.on('data', (c) => {
      got += c;
    });
    req.on('end', () => {
      res.addTrailers({ 'x-trailer': String(req.trailers['x-req-trailer'] ?? '') });
      res.setHeader('x-authority', req.headers[':authority'] ?? '');
      res.end(`${req.method} ${req.url} ${got}`);
    });
  });
  const pool = poolOf(clusterFor(port));
  const get = await send(pool, { headers: ['host', 'a.test', 'connection', 'x', 'te', 'gzip'] });
  assert.equal(get.status, 200);
  assert.equal(get.body, 'GET / ');
  assert.equal(get.headers[get.headers.indexOf('x-authority') + 1], 'a.test');
  const big = 'x'.repeat(200_000);
  const post = await send(pool, {
    method: 'POST',
    path: '/p',
    body: body(['hello ', big], ['x-req-trailer', 'yes']),
  });
  assert.equal(post.error, undefined);
  assert.equal(post.body, `POST /p hello ${big}`);
  assert.deepEqual(post.trailers, ['x-trailer', 'yes']);
  const many = await Promise.all(Array.from({ length: 30 }, (_, i) => send(pool, { path: `/${i}` })));
  assert.deepEqual(
    many.map((r) => r.body),
    many.map((_, i) => `GET /${i} `),
  );
});

/** A raw HTTP/2 server: answers the preface with SETTINGS, then lets `onHeaders` reply to each request stream. */
async function rawServer(onHeaders: (sock: Socket, id: number, enc: HpackEncoder) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const s: Server = createNetServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    const enc = new HpackEncoder();
    let preface = 24;
    const reader = new FrameReader(1 << 20, (type, _flags, id) => {
      if (type === Type.HEADERS) onHeaders(sock, id, enc);
    });
    sock.write(settingsFrame([]));
    sock.on('data', (chunk: Buffer) => {
      if (preface > 0) {
        const n = Math.min(preface, chunk.length);
        preface -= n;
        chunk = chunk.subarray(n);
      }
      if (chunk.length > 0) reader.feed(chunk);
    });
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  closers.push(() => {
    for (const x of sockets) x.destroy();
    return new Promise((r) => s.close(r));
  });
  return (s.address() as AddressInfo).port;
}

test('RST_STREAM before the head fails the exchange as a reset before the response', async () => {
  const port = await rawServer((sock, id) =>
    sock.write(frame(Type.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 2]))),
  );
  const r = await send(poolOf(clusterFor(port)), {});
  assert.equal(r.error?.kind, 'reset');
  assert.equal(r.error?.beforeResponse, true);
  assert.match(r.error!.message, /error code 2/);
});

test('a response without :status is a protocol error; a 1xx is skipped; trailers-only ends at once', async () => {
  let n = 0;
  const port = await rawServer((sock, id, enc) => {
    n++;
    if (n === 1) sock.write(headerBlockFrames(id, enc.encode(['x-a', 'b']), true, 16384));
    else {
      sock.write(headerBlockFrames(id, enc.encode([':status', '100']), false, 16384));
      sock.write(headerBlockFrames(id, enc.encode([':status', '200', 'grpc-status', '0']), true, 16384));
    }
  });
  const pool = poolOf(clusterFor(port));
  const bad = await send(pool, {});
  assert.equal(bad.error?.kind, 'protocol_error');
  const ok = await send(pool, {});
  assert.equal(ok.error, undefined);
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.headers, ['grpc-status', '0']);
});

test('GOAWAY: streams above last-stream-id fail as retriable resets, the one below finishes', async () => {
  const ids: number[] = [];
  let port = 0;
  port = await rawServer((sock, id, enc) => {
    ids.push(id);
    if (ids.length < 2) return;
    sock.write(goawayFrame(ids[0]!, ErrorCode.NO_ERROR));
    sock.write(headerBlockFrames(ids[0]!, enc.encode([':status', '204']), true, 16384));
  });
  const pool = poolOf(clusterFor(port));
  const [a, b] = await Promise.all([send(pool, {}), send(pool, {})]);
  assert.equal(a.status, 204);
  assert.equal(b.error?.kind, 'reset');
  assert.equal(b.error?.reused, true);
  assert.equal(b.error?.beforeResponse, true);
});

test('abort sends RST_STREAM CANCEL and no more callbacks arrive', async () => {
  let gotRst: (code: number) => void = () => undefined;
  const rst = { promise: new Promise<number>((r) => (gotRst = r)) };
  const sockets = new Set<Socket>();
  const s = createNetServer((sock) => {
    sockets.add(sock);
    sock.write(settingsFrame([]));
    let preface = 24;
    const reader = new FrameReader(1 << 20, (type, _f, _id, payload) => {
      if (type === Type.RST_STREAM) gotRst(payload.readUInt32BE(0));
    });
    sock.on('data', (chunk: Buffer) => {
      const n = Math.min(preface, chunk.length);
      preface -= n;
      if (chunk.length > n) reader.feed(chunk.subarray(n));
    });
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  closers.push(() => {
    for (const x of sockets) x.destroy();
    return new Promise((r) => s.close(r));
  });
  const pool = poolOf(clusterFor((s.address() as AddressInfo).port));
  let calls = 0;
  let ctl: UpstreamController | undefined;
  let onStarted: () => void = () => undefined;
  const started = { promise: new Promise<void>((r) => (onStarted = r)) };
  pool.dispatch(
    { method: 'GET', path: '/', scheme: 'http', headers: ['host', 'h'], body: undefined },
    {
      onRequestStart(c) {
        ctl = c;
        onStarted();
      },
      onResponseStart: () => calls++,
      onResponseData: () => calls++,
      onResponseEnd: () => calls++,
      onResponseError: () => calls++,
      onResponseWaiting: () => calls++,
    },
  );
  await started.promise;
  ctl!.abort(new Error('client gone'));
  assert.equal(await rst.promise, ErrorCode.CANCEL);
  assert.equal(calls, 0);
});

test('a refused connection is a connect failure', async () => {
  const s = createNetServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  const r = await send(poolOf(clusterFor(port)), {});
  assert.equal(r.error?.kind, 'connect_failure');
});
