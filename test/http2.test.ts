// Integration: HTTP/2 through the proxy with real clients — h2c, translation to and from HTTP/1.1, trailers,
// multiplexing upstream, use_downstream_protocol_config, graceful drain, idle timeout, upstream failures.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttp1Server, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  type ClientHttp2Session,
  constants,
  createServer as createHttp2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Stream,
} from 'node:http2';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { until } from './support/child.js';
import { curl } from './support/clients.js';
import {
  FRAME,
  frame,
  type H2Upstream,
  h2Connect,
  h2ProtocolOptions,
  h2Request,
  headersFrame,
  type RawH2Connection,
  rstStreamFrame,
  startH2Upstream,
  startRawH2Upstream,
} from './support/h2.js';
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
import { closedPort, startUpstream, type Upstream } from './support/upstream.js';

const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

let dir: string;
let proxy: RunningProxy;
let web: Upstream;
let h2web: H2Upstream;
let h2limited: H2Upstream;
let h2single: H2Upstream;
let sniffing: { port: number; protocols: string[]; close(): Promise<void> };
let raw: { port: number; close(): Promise<void> };
/** The request the frame-by-frame upstream has answered with a head and part of a body. */
let rawRequest: { peer: RawH2Connection; streamId: number } | undefined;
const sessions = new Set<ClientHttp2Session>();

/** Responses the HTTP/2 upstream holds until the test lets them go; all released in after(). */
const held = new Set<() => void>();
/** Finishes the /h2/trailers response, which waits until the client has its first part. */
let finishTrailers: (() => void) | undefined;
/** The multiplexing upstreams answer once this many requests are open at once (0: at once). */
const release = { limited: 0, single: 0 };

function hold(stream: ServerHttp2Stream, answer: () => void): void {
  const once = () => {
    if (held.delete(once) && !stream.destroyed) answer();
  };
  held.add(once);
}

/** An upstream that answers once `want()` requests are open at once: requests that are queued never get there. */
function gathering(want: () => number): (stream: ServerHttp2Stream) => void {
  const waiting: ServerHttp2Stream[] = [];
  return (stream) => {
    waiting.push(stream);
    if (waiting.length < want()) return;
    for (const s of waiting.splice(0)) {
      if (s.destroyed) continue;
      s.respond({ ':status': 200, 'content-type': 'text/plain' });
      s.end('ok');
    }
  };
}

/** A server that takes HTTP/1.1 and h2c on one port, sniffing the preface, and records which one arrived. */
async function startSniffingUpstream(): Promise<typeof sniffing> {
  const protocols: string[] = [];
  const answer = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
    protocols.push(req.httpVersion);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'text/plain');
      res.end(`upstream saw HTTP/${req.httpVersion}`);
    });
  };
  const h1 = createHttp1Server(answer);
  const h2 = createHttp2Server(answer);
  const sockets = new Set<Socket>();
  const tcp = createTcpServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.once('readable', () => {
      const first: Buffer | null = s.read();
      if (first === null) return;
      s.unshift(first);
      const h2c = first.subarray(0, 3).toString('latin1') === 'PRI';
      (h2c ? h2 : h1).emit('connection', s);
    });
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  return {
    port: (tcp.address() as { port: number }).port,
    protocols,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        tcp.close(() => r());
      }),
  };
}

function fileLog(): Json {
  return {
    name: 'envoy.access_loggers.file',
    typed_config: {
      '@type': FILE_LOG,
      path: join(dir, 'access.log'),
      log_format: {
        text_format_source: { inline_string: '%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %PROTOCOL%\n' },
      },
    },
  };
}

async function logLine(path: string): Promise<string> {
  let found: string | undefined;
  await until(`an access log line for ${path}`, () => {
    const file = join(dir, 'access.log');
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : [];
    found = lines.find((l) => l.startsWith(`${path} `));
    return found !== undefined;
  });
  return found!;
}

const routeTable = (): Json =>
  routes([
    { match: { prefix: '/h1/' }, route: { cluster: 'web' } },
    { match: { prefix: '/h2/' }, route: { cluster: 'h2' } },
    { match: { prefix: '/max/' }, route: { cluster: 'h2max' } },
    { match: { prefix: '/single/' }, route: { cluster: 'h2single' } },
    { match: { prefix: '/dead' }, route: { cluster: 'h2dead' } },
    { match: { prefix: '/auto' }, route: { cluster: 'auto' } },
    { match: { prefix: '/raw/' }, route: { cluster: 'raw' } },
  ]);

async function connect(listener = 'main', opts = {}): Promise<ClientHttp2Session> {
  const s = await h2Connect(proxy.url(listener), opts);
  sessions.add(s);
  s.once('close', () => sessions.delete(s));
  return s;
}

function runClient(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(
          new Error(`${cmd} is required by the HTTP/2 tests (apt-get install nghttp2-client curl)`),
        );
      }
      if (err) return reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`));
      resolve(stdout);
    });
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'remora-http2-'));
  web = await startUpstream('web', (req, res, body) => {
    if (req.url === '/h1/connection-headers') {
      res.writeHead(200, {
        connection: 'keep-alive',
        'keep-alive': 'timeout=5',
        'x-ok': 'yes',
        'content-type': 'text/plain',
      });
      res.end('fine');
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ headers: req.headers, body }));
  });
  h2web = await startH2Upstream((stream, req) => {
    const path = String(req.headers[':path']);
    switch (path) {
      case '/h2/trailers':
        stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
        stream.write('part-1;');
        // The rest, and the trailers, only once the client has the first part: they cannot ride along with it.
        finishTrailers = () => stream.end('part-2');
        return;
      case '/h2/hold':
        return hold(stream, () => {
          stream.respond({ ':status': 200, 'content-type': 'text/plain' });
          stream.end('released');
        });
      case '/h2/never':
        return;
      case '/h2/reset-before':
        return stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      default:
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(
          JSON.stringify({
            rawHeaders: req.rawHeaders,
            body: req.body.toString(),
            trailers: req.trailers ?? null,
          }),
        );
    }
  });
  h2limited = await startH2Upstream(gathering(() => release.limited));
  h2single = await startH2Upstream(gathering(() => release.single));
  sniffing = await startSniffingUpstream();
  raw = await startRawH2Upstream((peer, streamId) => {
    peer.write(
      headersFrame(
        streamId,
        [
          [':status', '200'],
          ['content-type', 'text/plain'],
        ],
        false,
      ),
    );
    peer.write(frame(FRAME.DATA, 0, streamId, Buffer.from('partial')));
    rawRequest = { peer, streamId };
  });
  const clusters = [
    staticCluster('web', [web.port]),
    staticCluster('h2', [h2web.port], h2ProtocolOptions()),
    staticCluster('h2max', [h2limited.port], h2ProtocolOptions({ max_concurrent_streams: 10 })),
    staticCluster('h2single', [h2single.port], h2ProtocolOptions()),
    deadCluster('h2dead', await closedPort(), h2ProtocolOptions()),
    staticCluster('raw', [raw.port], h2ProtocolOptions()),
    staticCluster('auto', [sniffing.port], {
      typed_extension_protocol_options: {
        [PROTOCOL_OPTIONS]: {
          '@type': `type.googleapis.com/${PROTOCOL_OPTIONS}`,
          use_downstream_protocol_config: {},
        },
      },
    }),
  ];
  proxy = await startProxy(
    bootstrap(
      [
        httpListener('main', routeTable(), { stat_prefix: 'main', access_log: [fileLog()] }),
        httpListener('idle', routeTable(), {
          stat_prefix: 'idle',
          common_http_protocol_options: { idle_timeout: '0.2s' },
        }),
      ],
      clusters,
    ),
  );
});

after(async () => {
  for (const s of sessions) s.destroy();
  for (const r of [...held]) r();
  finishTrailers?.();
  await proxy?.close();
  await Promise.all([web, h2web, h2limited, h2single, sniffing, raw].map((u) => u?.close()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---- 1. h2c with prior knowledge

test('curl --http2-prior-knowledge gets the HTTP/1.1 upstream answer over h2c', async () => {
  const r = await curl(['--http2-prior-knowledge', `${proxy.url('main')}/h1/hello`]);
  assert.equal(r.status, 200);
  assert.match(r.body, /"host":"127\.0\.0\.1:\d+"/);
  assert.equal(r.headers.server, 'remora');
});

test('nghttp (prior knowledge h2c) gets the upstream answer', async () => {
  const out = await runClient('nghttp', ['-v', `${proxy.url('main')}/h1/nghttp`]);
  assert.match(out, /recv \(stream_id=\d+\) :status: 200/);
  assert.match(out, /"host":"127\.0\.0\.1:\d+"/);
});

test('HTTP/1.1 and h2c share one port: each is counted under its protocol', async () => {
  const cx2 = proxy.stat('http.main.downstream_cx_http2_total');
  const rq2 = proxy.stat('http.main.downstream_rq_http2_total');
  const cx1 = proxy.stat('http.main.downstream_cx_http1_total');
  const rq1 = proxy.stat('http.main.downstream_rq_http1_total');
  const h1 = await curl(['--http1.1', `${proxy.url('main')}/h1/one`]);
  const h2 = await curl(['--http2-prior-knowledge', `${proxy.url('main')}/h1/two`]);
  assert.equal(h1.status, 200);
  assert.equal(h2.status, 200);
  assert.equal(proxy.stat('http.main.downstream_cx_http1_total') - cx1, 1);
  assert.equal(proxy.stat('http.main.downstream_rq_http1_total') - rq1, 1);
  assert.equal(proxy.stat('http.main.downstream_cx_http2_total') - cx2, 1);
  assert.equal(proxy.stat('http.main.downstream_rq_http2_total') - rq2, 1);
  assert.match(await logLine('/h1/two'), /^\/h1\/two 200 - HTTP\/2$/);
  assert.match(await logLine('/h1/one'), /^\/h1\/one 200 - HTTP\/1\.1$/);
});

// ---- 2. translation

test('h2 -> HTTP/1.1: Host from :authority, no pseudo-headers, cookie crumbs joined, chunked body intact', async () => {
  const session = await connect();
  const body = 'x'.repeat(100_000);
  const r = await h2Request(
    session,
    {
      ':method': 'POST',
      ':path': '/h1/translate',
      ':authority': 'api.example.test',
      cookie: ['a=1', 'b=2', 'c=3'],
    },
    { body },
  );
  assert.equal(r.status, 200);
  const seen = web.requests.at(-1)!;
  assert.equal(seen.url, '/h1/translate');
  assert.equal(seen.headers.host, 'api.example.test');
  assert.equal(seen.headers.cookie, 'a=1; b=2; c=3');
  assert.deepEqual(
    Object.keys(seen.headers).filter((k) => k.startsWith(':')),
    [],
  );
  assert.equal(seen.headers['transfer-encoding'], 'chunked');
  assert.equal(seen.headers['content-length'], undefined);
  assert.equal(seen.body, body);
});

test('HTTP/1.1 -> h2: the h2c upstream sees :authority from Host and no connection-specific headers', async () => {
  const r = await curl([
    '--http1.1',
    '-H',
    'Host: svc.example.test',
    '-H',
    'Connection: keep-alive',
    '-H',
    'Keep-Alive: timeout=5',
    '-H',
    'Transfer-Encoding: chunked',
    '--data-binary',
    'hello over h2',
    `${proxy.url('main')}/h2/from-h1`,
  ]);
  assert.equal(r.status, 200, r.body);
  const seen = JSON.parse(r.body) as { rawHeaders: string[]; body: string };
  const names = seen.rawHeaders.filter((_, i) => i % 2 === 0);
  const value = (n: string) => seen.rawHeaders[seen.rawHeaders.indexOf(n) + 1];
  assert.equal(value(':authority'), 'svc.example.test');
  assert.equal(value(':method'), 'POST');
  assert.equal(value(':path'), '/h2/from-h1');
  assert.equal(value(':scheme'), 'http');
  for (const banned of ['connection', 'keep-alive', 'transfer-encoding', 'host', 'upgrade']) {
    assert.ok(!names.includes(banned), `the upstream got ${banned}: ${names.join(', ')}`);
  }
  assert.equal(seen.body, 'hello over h2');
});

test('connection headers of an HTTP/1.1 upstream response do not reach an h2 client', async () => {
  const session = await connect();
  const r = await h2Request(session, { ':path': '/h1/connection-headers' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-ok'], 'yes');
  assert.equal(r.headers.connection, undefined);
  assert.equal(r.headers['keep-alive'], undefined);
  assert.equal(r.body.toString(), 'fine');
});

// ---- 3. trailers

test('response trailers from an h2 upstream reach the h2 client, also when they come after the body', async () => {
  const session = await connect();
  const req = session.request({ ':path': '/h2/trailers' });
  let body = '';
  let trailers: Record<string, unknown> | undefined;
  req.setEncoding('utf8');
  req.on('data', (d: string) => {
    body += d;
    // Only now may the upstream finish: its trailers cannot have been read together with the head.
    if (body === 'part-1;') finishTrailers?.();
  });
  req.on('trailers', (t) => {
    trailers = t;
  });
  const status = await new Promise<number>((r) => req.on('response', (h) => r(Number(h[':status']))));
  await new Promise<void>((r) => req.on('close', r));
  finishTrailers = undefined;
  assert.equal(status, 200);
  assert.equal(req.rstCode, constants.NGHTTP2_NO_ERROR);
  assert.equal(body, 'part-1;part-2');
  assert.equal(trailers?.['x-checksum'], 'abc');
});

test('request body and trailers from an h2 client reach the h2 upstream', async () => {
  const session = await connect();
  const r = await h2Request(
    session,
    { ':method': 'POST', ':path': '/h2/upload', 'content-type': 'application/octet-stream' },
    { body: 'payload', trailers: { 'x-request-checksum': 'def' } },
  );
  assert.equal(r.status, 200);
  const seen = JSON.parse(r.body.toString()) as { body: string; trailers: Record<string, string> | null };
  assert.equal(seen.body, 'payload');
  assert.equal(seen.trailers?.['x-request-checksum'], 'def');
});

// ---- 4. multiplexing upstream

test('50 concurrent streams over max_concurrent_streams 10: 5+ upstream connections, never more than 10 streams each', async () => {
  release.limited = 50;
  const before = proxy.stat('cluster.h2max.upstream_cx_http2_total');
  const session = await connect();
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => h2Request(session, { ':path': `/max/${i}` })),
  );
  assert.deepEqual(
    results.map((r) => r.status),
    Array(50).fill(200),
  );
  const opened = proxy.stat('cluster.h2max.upstream_cx_http2_total') - before;
  assert.ok(opened >= 5, `only ${opened} upstream connections carried 50 streams at once`);
  assert.ok(h2limited.sessions >= 5);
  assert.ok(
    h2limited.peakStreams.every((n) => n <= 10),
    `streams at once per upstream connection: ${h2limited.peakStreams.join(', ')}`,
  );
});

test('without max_concurrent_streams, 20 concurrent streams share one upstream connection', async () => {
  release.single = 20;
  const session = await connect();
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => h2Request(session, { ':path': `/single/${i}` })),
  );
  assert.ok(results.every((r) => r.status === 200));
  assert.equal(h2single.sessions, 1);
  assert.equal(h2single.peakStreams[0], 20);
  assert.equal(proxy.stat('cluster.h2single.upstream_cx_http2_total'), 1);
});

// ---- 5. use_downstream_protocol_config

test('use_downstream_protocol_config: h2 clients reach the host over h2c, HTTP/1.1 clients over HTTP/1.1', async () => {
  const session = await connect();
  const viaH2 = await h2Request(session, { ':path': '/auto/h2' });
  assert.equal(viaH2.body.toString(), 'upstream saw HTTP/2.0');
  const viaH1 = await curl(['--http1.1', `${proxy.url('main')}/auto/h1`]);
  assert.equal(viaH1.body, 'upstream saw HTTP/1.1');
  assert.deepEqual(sniffing.protocols, ['2.0', '1.1']);
  assert.equal(proxy.stat('cluster.auto.upstream_cx_http2_total'), 1);
  assert.equal(proxy.stat('cluster.auto.upstream_cx_http1_total'), 1);
});

// ---- 9. idle timeout

test('common_http_protocol_options.idle_timeout closes an idle h2 connection with GOAWAY', async () => {
  const before = proxy.stat('http.idle.downstream_cx_idle_timeout');
  const session = await connect('idle');
  const r = await h2Request(session, { ':path': '/h1/before-idle' });
  assert.equal(r.status, 200);
  let goaway: number | undefined;
  session.once('goaway', (code: number) => {
    goaway = code;
  });
  await new Promise<void>((r2) => session.once('close', r2));
  assert.equal(goaway, constants.NGHTTP2_NO_ERROR, 'the proxy said GOAWAY before closing');
  assert.equal(proxy.stat('http.idle.downstream_cx_idle_timeout') - before, 1);
});

// ---- 10. upstream failures

test('an HTTP/2 cluster whose host refuses connections: 503 with UF for an h2 client', async () => {
  const session = await connect();
  const r = await h2Request(session, { ':path': '/dead' });
  assert.equal(r.status, 503);
  assert.equal(r.headers['x-remora-error'], 'REMORA_ERR_UPSTREAM_CONNECT');
  assert.match(r.body.toString(), /connection failure \(cluster "h2dead" host 127\.0\.0\.254:\d+/);
  assert.match(await logLine('/dead'), /^\/dead 503 UF HTTP\/2$/);
  assert.ok(proxy.stat('cluster.h2dead.upstream_cx_connect_fail') >= 1);
});

test('an upstream stream reset before the response head: 503 for the client', async () => {
  const session = await connect();
  const r = await h2Request(session, { ':path': '/h2/reset-before' });
  assert.equal(r.status, 503);
  assert.equal(r.headers['x-remora-error'], 'REMORA_ERR_UPSTREAM_RESET');
  assert.match(await logLine('/h2/reset-before'), /^\/h2\/reset-before 503 UR HTTP\/2$/);
  // Without a retry policy the request is not sent again: the upstream may have acted on it before resetting.
  assert.equal(h2web.requests.filter((q) => q.headers[':path'] === '/h2/reset-before').length, 1);
  // The connection is not harmed: another request on it works.
  assert.equal((await h2Request(session, { ':path': '/h2/ok' })).status, 200);
});

for (const [name, code] of [
  ['INTERNAL_ERROR', constants.NGHTTP2_INTERNAL_ERROR],
  ['CANCEL', constants.NGHTTP2_CANCEL],
] as const) {
  test(`an upstream RST_STREAM ${name} in the middle of the body resets the client stream`, async () => {
    const session = await connect();
    rawRequest = undefined;
    const req = session.request({ ':path': `/raw/${name}` });
    req.on('error', () => undefined);
    let got = '';
    req.on('data', (d: Buffer) => {
      got += d.toString();
    });
    const status = await new Promise<number>((r) => req.on('response', (h) => r(Number(h[':status']))));
    assert.equal(status, 200);
    await until('the first part of the body', () => got === 'partial');
    rawRequest!.peer.write(rstStreamFrame(rawRequest!.streamId, code));
    await new Promise<void>((r) => req.on('close', r));
    // A clean end would pass the truncated body off as the whole response.
    assert.notEqual(req.rstCode, constants.NGHTTP2_NO_ERROR, `the stream ended cleanly after "${got}"`);
    assert.match(await logLine(`/raw/${name}`), new RegExp(`^/raw/${name} 200 UR HTTP/2$`));
    assert.equal((await h2Request(session, { ':path': '/h2/ok' })).status, 200);
  });
}

// ---- 8. graceful drain (its own proxy: draining stops every listener)

test('drain: GOAWAY to an h2 client, its request in flight completes, no new stream on that connection', async () => {
  const own = await startProxy(
    bootstrap(
      [
        httpListener('drain', routes([{ match: { prefix: '/' }, route: { cluster: 'h2' } }]), {
          stat_prefix: 'd',
        }),
      ],
      [staticCluster('h2', [h2web.port], h2ProtocolOptions())],
    ),
    { drainTimeMs: 10_000 },
  );
  try {
    const session = await h2Connect(own.url());
    sessions.add(session);
    const inFlight = h2Request(session, { ':path': '/h2/hold' });
    await until('the upstream to hold the request', () => held.size === 1);
    const goaway = new Promise<{ code: number; last: number }>((resolve) =>
      session.once('goaway', (code: number, last: number) => resolve({ code, last })),
    );
    const drained = await fetch(`${own.adminUrl}/drain_listeners?graceful`, { method: 'POST' });
    assert.equal(drained.status, 200);
    await drained.text();
    const g = await goaway;
    assert.equal(g.code, constants.NGHTTP2_NO_ERROR);
    assert.equal(g.last, 1, 'the GOAWAY names the stream in flight as the last one served');
    assert.throws(() => session.request({ ':path': '/h2/after-goaway' }), {
      code: 'ERR_HTTP2_GOAWAY_SESSION',
    });
    for (const r of [...held]) r();
    const r = await inFlight;
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'released');
    await until('the drained connection to close', () => session.closed || session.destroyed);
    assert.ok(own.stat('http2.goaway_sent') >= 1);
  } finally {
    await own.close();
  }
});
