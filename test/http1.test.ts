// Integration: HTTP/1.1 proxying — framing, 1xx/HEAD/204/304, trailers, keep-alive, HTTP/1.0, header limits, timeouts.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { curl } from './support/clients.js';
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
let web: Upstream;
let hang: Upstream;
let early: { port: number; close(): Promise<void> };
let dir: string;
/** Responses an upstream holds until the test lets them go; all released in after(). */
const held = new Set<() => void>();
/** Upstream responses of /hang, to see that the proxy gave up on them. */
const hung: ServerResponse[] = [];

function hold(release: () => void): () => void {
  const once = () => {
    if (held.delete(once)) release();
  };
  held.add(once);
  return once;
}

/** The release callback of the /stream request in flight. */
let releaseStream: (() => void) | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'remora-http1-'));
  web = await startUpstream('web', (req, res, body) => {
    const path = (req.url ?? '').replace(/^\/(ka|limits|cxidle|streamidle)/, '');
    switch (path) {
      case '/stream':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first-chunk;');
        releaseStream = hold(() => res.end('second-chunk'));
        return;
      case '/trailers':
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('body-part-1;');
        res.addTrailers({ 'x-checksum': 'abc123' });
        res.end('body-part-2');
        return;
      case '/head':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1234' });
        res.end(req.method === 'HEAD' ? undefined : 'x'.repeat(1234));
        return;
      case '/204':
        res.writeHead(204, { 'x-kind': 'no-content' });
        res.end();
        return;
      case '/304':
        res.writeHead(304, { etag: '"v1"' });
        res.end();
        return;
      case '/stall-body':
        // Headers and a first piece, then nothing: the stream goes idle mid-body.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial;');
        hold(() => res.end());
        return;
      case '/slow':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.flushHeaders();
        hold(() => res.end('slow-done'));
        return;
      default:
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            url: req.url,
            method: req.method,
            httpVersion: req.httpVersion,
            headers: req.headers,
            bodyLength: Buffer.byteLength(body),
            sha256: createHash('sha256').update(body).digest('hex'),
          }),
        );
    }
  });
  hang = await startUpstream('hang', (_req, res) => {
    hung.push(res);
    hold(() => res.destroy());
  });
  // An upstream that sends 102 and 103 interim responses before its final answer.
  early = await startTcpServer((s) => {
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      while (got.includes('\r\n\r\n')) {
        got = got.slice(got.indexOf('\r\n\r\n') + 4);
        s.write(
          'HTTP/1.1 102 Processing\r\n\r\n' +
            'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n' +
            'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nfinal-answer',
        );
      }
    });
  });
  proxy = await startProxy(
    bootstrap(
      [
        httpListener(
          'main',
          routes([
            { match: { prefix: '/ka' }, route: { cluster: 'ka' } },
            { match: { prefix: '/early' }, route: { cluster: 'early' } },
            { match: { prefix: '/' }, route: { cluster: 'web' } },
          ]),
          { http_protocol_options: { accept_http_10: true } },
        ),
        httpListener('limits', routes([{ match: { prefix: '/' }, route: { cluster: 'web' } }]), {
          stat_prefix: 'limits',
          max_request_headers_kb: 8,
          request_headers_timeout: '0.5s',
          common_http_protocol_options: { max_headers_count: 20 },
        }),
        httpListener('cxidle', routes([{ match: { prefix: '/' }, route: { cluster: 'web' } }]), {
          stat_prefix: 'cxidle',
          common_http_protocol_options: { idle_timeout: '0.5s' },
        }),
        httpListener(
          'streamidle',
          routes([
            { match: { prefix: '/streamidle/hang' }, route: { cluster: 'hang', timeout: '0s' } },
            { match: { prefix: '/' }, route: { cluster: 'web', timeout: '0s' } },
          ]),
          { stat_prefix: 'streamidle', stream_idle_timeout: '0.5s' },
        ),
      ],
      [
        staticCluster('web', [web.port]),
        staticCluster('ka', [web.port]),
        staticCluster('hang', [hang.port]),
        staticCluster('early', [early.port]),
      ],
    ),
  );
});

after(async () => {
  for (const release of [...held]) release();
  await proxy?.close();
  await web?.close();
  await hang?.close();
  await early?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** curl's raw output (-i prints interim responses too); curl must be installed. */
function curlRaw(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-s', '-S', '--max-time', '20', ...args],
      { encoding: 'latin1' },
      (err, out, errOut) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          return reject(new Error('curl is required by the integration tests: apt-get install curl'));
        }
        if (err) return reject(new Error(`curl ${args.join(' ')} failed: ${errOut || err.message}`));
        resolve(out);
      },
    );
  });
}

async function withConnection<T>(port: number, fn: (c: RawConnection) => Promise<T>): Promise<T> {
  const c = await RawConnection.open(port);
  try {
    return await fn(c);
  } finally {
    c.destroy();
  }
}

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ---------------------------------------------------------------- framing

test('a chunked request body reaches the upstream intact, re-framed', async () => {
  const echoed = await withConnection(proxy.port(), async (c) => {
    c.write(
      'POST /chunked-in HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '3\r\nabc\r\n' +
        '1;ext=1\r\nd\r\n' +
        '10\r\n0123456789abcdef\r\n' +
        '0\r\n\r\n',
    );
    const r = await c.response();
    assert.equal(r.status, 200);
    return JSON.parse(r.body) as { bodyLength: number; sha256: string; headers: Record<string, string> };
  });
  const sent = 'abcd0123456789abcdef';
  assert.equal(echoed.bodyLength, sent.length);
  assert.equal(echoed.sha256, createHash('sha256').update(sent).digest('hex'));
  const h = echoed.headers;
  assert.ok(
    h['transfer-encoding'] === 'chunked' || h['content-length'] === String(sent.length),
    `upstream framing: ${JSON.stringify(h)}`,
  );
});

test('a large chunked upload from curl arrives byte for byte', async () => {
  const text = Array.from({ length: 40_000 }, (_, i) => `line ${i} of the upload\n`).join('');
  const file = join(dir, 'upload.txt');
  await writeFile(file, text);
  const r = await curl([
    '-H',
    'Transfer-Encoding: chunked',
    '-H',
    'content-type: text/plain',
    '--data-binary',
    `@${file}`,
    `${proxy.url()}/upload`,
  ]);
  assert.equal(r.status, 200);
  const echoed = JSON.parse(r.body) as { bodyLength: number; sha256: string };
  assert.equal(echoed.bodyLength, Buffer.byteLength(text));
  assert.equal(echoed.sha256, createHash('sha256').update(text).digest('hex'));
});

test('a chunked response streams: the client has the first chunk before the upstream sends the rest', async () => {
  const { headers, body } = await new Promise<{ headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      const req = httpRequest(`${proxy.url()}/stream`, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
          // The upstream writes the rest only once the first chunk has crossed the proxy.
          if (body.includes('first-chunk;')) releaseStream?.();
        });
        res.on('end', () => resolve({ headers: res.headers, body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    },
  );
  assert.equal(body, 'first-chunk;second-chunk');
  assert.equal(headers['transfer-encoding'], 'chunked');
});

test('upstream response trailers are not sent to an HTTP/1.1 client, and the body stays whole', async () => {
  await withConnection(proxy.port(), async (c) => {
    c.write('GET /trailers HTTP/1.1\r\nHost: app\r\nTE: trailers\r\n\r\n');
    const r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(r.body, 'body-part-1;body-part-2');
    assert.equal(r.trailers, '', `trailers leaked: ${JSON.stringify(r.trailers)}`);
    assert.doesNotMatch(r.raw, /x-checksum|abc123/i);
    assert.equal(r.headers.trailer, undefined);
    // The framing is intact: the same connection carries the next request.
    c.write('GET /after-trailers HTTP/1.1\r\nHost: app\r\n\r\n');
    assert.equal((await c.response()).status, 200);
  });
  const viaCurl = await curl([`${proxy.url()}/trailers`]);
  assert.equal(viaCurl.body, 'body-part-1;body-part-2');
});

test('Expect: 100-continue from curl gets 100 from the proxy, then the upstream response', async () => {
  const body = 'e'.repeat(4096);
  const file = join(dir, 'expect.txt');
  await writeFile(file, body);
  const seen = web.requests.length;
  // A long expect100-timeout: curl sends the body only after a real 100 Continue.
  const out = await curlRaw([
    '-i',
    '--expect100-timeout',
    '15',
    '-H',
    'Expect: 100-continue',
    '--data-binary',
    `@${file}`,
    `${proxy.url()}/expect`,
  ]);
  const statuses = [...out.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [100, 200], out);
  const echoed = JSON.parse(out.slice(out.lastIndexOf('\r\n\r\n') + 4)) as {
    bodyLength: number;
    headers: Record<string, string>;
  };
  assert.equal(echoed.bodyLength, body.length);
  assert.equal(echoed.headers.expect, undefined, 'the proxy answered Expect itself; it is not forwarded');
  assert.equal(web.requests.length, seen + 1);
});

test('HEAD: headers with the upstream content-length, and no body on the wire', async () => {
  await withConnection(proxy.port(), async (c) => {
    c.write('HEAD /head HTTP/1.1\r\nHost: app\r\n\r\n');
    const r = await c.response({ head: true });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], '1234');
    assert.equal(r.headers['transfer-encoding'], undefined);
    // Had any body byte been sent, it would be read as the start of the next response.
    c.write('GET /after-head HTTP/1.1\r\nHost: app\r\n\r\n');
    const next = await c.response();
    assert.equal(next.status, 200);
    assert.equal((JSON.parse(next.body) as { url: string }).url, '/after-head');
    assert.equal(c.pending, '');
  });
});

for (const status of [204, 304]) {
  test(`${status} is relayed without a body or body framing`, async () => {
    await withConnection(proxy.port(), async (c) => {
      c.write(`GET /${status} HTTP/1.1\r\nHost: app\r\n\r\n`);
      const r = await c.response();
      assert.equal(r.status, status);
      assert.equal(r.headers['transfer-encoding'], undefined);
      assert.ok(r.headers['content-length'] === undefined || r.headers['content-length'] === '0');
      if (status === 204) assert.equal(r.headers['x-kind'], 'no-content');
      else assert.equal(r.headers.etag, '"v1"');
      c.write('GET /after HTTP/1.1\r\nHost: app\r\n\r\n');
      const next = await c.response();
      assert.equal(next.status, 200);
      assert.equal(c.pending, '');
    });
  });
}

test('interim 102 and 103 responses from the upstream do not break the final response', async () => {
  await withConnection(proxy.port(), async (c) => {
    c.write('GET /early HTTP/1.1\r\nHost: app\r\n\r\n');
    let r = await c.response();
    while (r.status === 103) r = await c.response(); // 103 may be relayed; 102 never reaches the client
    assert.equal(r.status, 200);
    assert.equal(r.body, 'final-answer');
    c.write('GET /early/again HTTP/1.1\r\nHost: app\r\n\r\n');
    r = await c.response();
    while (r.status === 103) r = await c.response();
    assert.equal(r.status, 200);
    assert.equal(r.body, 'final-answer');
  });
  const viaCurl = await curl([`${proxy.url()}/early`]);
  assert.equal(viaCurl.status, 200);
  assert.equal(viaCurl.body, 'final-answer');
});

// ---------------------------------------------------------------- connections

test('keep-alive on both sides: sequential requests share one client and one upstream connection', async () => {
  const cxBefore = proxy.stat('http.ingress.downstream_cx_total');
  const u = `${proxy.url()}/ka`;
  const out = await curlRaw([
    '-o',
    '/dev/null',
    '-o',
    '/dev/null',
    '-o',
    '/dev/null',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code} %{num_connects}\\n',
    `${u}/1`,
    `${u}/2`,
    `${u}/3`,
    `${u}/4`,
  ]);
  assert.deepEqual(out.trim().split('\n'), ['200 1', '200 0', '200 0', '200 0']);
  assert.equal(proxy.stat('http.ingress.downstream_cx_total'), cxBefore + 1);
  assert.equal(proxy.stat('cluster.ka.upstream_rq_total'), 4);
  assert.equal(proxy.stat('cluster.ka.upstream_cx_total'), 1, 'the upstream connection is reused');
});

test('an HTTP/1.0 client is answered without chunking, and the connection closes after', async () => {
  const r = await curl(['--http1.0', `${proxy.url()}/ten`]);
  assert.equal(r.status, 200);
  assert.equal((JSON.parse(r.body) as { url: string }).url, '/ten');

  await withConnection(proxy.port(), async (c) => {
    // A chunked upstream response must reach an HTTP/1.0 client close-delimited, not chunked.
    releaseStream = undefined;
    c.write('GET /stream HTTP/1.0\r\nHost: app\r\n\r\n');
    await until(() => releaseStream !== undefined, 'the upstream to start /stream');
    assert.ok(await c.until((got) => got.includes('first-chunk;')), 'first chunk arrives');
    (releaseStream as (() => void) | undefined)?.();
    assert.ok(await c.waitClosed(), 'the proxy closes the HTTP/1.0 connection after the response');
    const res = await c.response();
    assert.equal(res.status, 200);
    assert.notEqual(res.headers['transfer-encoding'], 'chunked');
    assert.equal(res.body, 'first-chunk;second-chunk');
  });
});

// ---------------------------------------------------------------- limits

test('max_request_headers_kb: 8 — a 10 KiB header gets 431, a 6 KiB one passes', async () => {
  const limits = proxy.url('limits');
  const big = await curl(['-H', `x-big: ${'a'.repeat(10 * 1024)}`, `${limits}/big`]);
  assert.equal(big.status, 431);
  assert.match(big.body, /max_request_headers_kb/);
  assert.equal(proxy.stat('http.limits.downstream_rq_too_large'), 1);
  const fits = await curl(['-H', `x-big: ${'a'.repeat(6 * 1024)}`, `${limits}/fits`]);
  assert.equal(fits.status, 200);
});

test('max_headers_count: 20 — 30 headers get 431, 15 pass', async () => {
  const limits = proxy.url('limits');
  const headers = (n: number) => Array.from({ length: n }, (_, i) => ['-H', `x-h-${i}: v${i}`]).flat();
  const many = await curl([...headers(30), `${limits}/many`]);
  assert.equal(many.status, 431);
  assert.match(many.body, /max_headers_count/);
  const few = await curl([...headers(15), `${limits}/few`]);
  assert.equal(few.status, 200);
  assert.equal((JSON.parse(few.body) as { headers: Record<string, string> }).headers['x-h-14'], 'v14');
});

test('request_headers_timeout: half-sent headers get 408 and the connection is closed', async () => {
  await withConnection(proxy.port('limits'), async (c) => {
    c.write('GET /stalled HTTP/1.1\r\nHost: app\r\nX-Half: ');
    assert.ok(await c.waitClosed(10_000), 'the proxy closes a connection whose headers never complete');
    const r = await c.response();
    assert.equal(r.status, 408);
    assert.match(r.body, /request_headers_timeout/);
  });
  assert.equal(proxy.stat('http.limits.downstream_rq_header_timeout'), 1);
  assert.ok(!web.requests.some((q) => q.url === '/stalled'));
});

// ---------------------------------------------------------------- timeouts

test('stream_idle_timeout with the route timeout disabled: a silent upstream gets 408 after the idle time', async () => {
  const started = Date.now();
  const r = await curl([`${proxy.url('streamidle')}/streamidle/hang`]);
  const elapsed = Date.now() - started;
  assert.equal(r.status, 408);
  assert.match(r.body, /stream_idle_timeout/);
  assert.ok(elapsed >= 450, `the stream ended after ${elapsed} ms, before the 500 ms idle timeout`);
  assert.equal(proxy.stat('http.streamidle.downstream_rq_idle_timeout'), 1);
  // The upstream exchange is abandoned, not left hanging.
  await until(() => hung.length === 1 && hung[0]!.socket?.destroyed !== false, 'the upstream request reset');
});

test('stream_idle_timeout mid-body: the response is cut and the connection reset', async () => {
  await withConnection(proxy.port('streamidle'), async (c) => {
    c.write('GET /streamidle/stall-body HTTP/1.1\r\nHost: app\r\n\r\n');
    assert.ok(await c.until((got) => got.includes('partial;')));
    assert.ok(await c.waitClosed(), 'the idle stream is reset');
    // Chunked framing never completed: the client can tell the body was cut short.
    assert.doesNotMatch(c.pending, /\r\n0\r\n\r\n$/);
  });
});

test('idle_timeout closes an idle keep-alive connection, but not one with a request in flight', async () => {
  const port = proxy.port('cxidle');
  const idleBefore = proxy.stat('http.cxidle.downstream_cx_idle_timeout');
  const idle = await RawConnection.open(port);
  const busy = await RawConnection.open(port);
  try {
    busy.write('GET /cxidle/slow HTTP/1.1\r\nHost: app\r\n\r\n');
    assert.ok(await busy.until((got) => got.includes('\r\n\r\n')), 'slow response headers');
    idle.write('GET /cxidle/quick HTTP/1.1\r\nHost: app\r\n\r\n');
    assert.equal((await idle.response()).status, 200);
    assert.ok(await idle.waitClosed(10_000), 'the idle keep-alive connection is closed');
    assert.equal(proxy.stat('http.cxidle.downstream_cx_idle_timeout'), idleBefore + 1);
    // The busy connection outlived the idle one: its stream is active, so the idle timeout does not apply.
    assert.ok(!busy.closed, 'a connection with a request in flight is not idle');
    for (const release of [...held]) release();
    const r = await busy.response();
    assert.equal(r.status, 200);
    assert.equal(r.body, 'slow-done');
  } finally {
    idle.destroy();
    busy.destroy();
  }
});
