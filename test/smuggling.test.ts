// Integration: ambiguous or malformed HTTP/1.1 framing is refused with a clear 400 and never smuggled upstream.

import assert from 'node:assert/strict';
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
import { parseOneResponse, RawConnection, rawRoundTrip } from './support/raw_http.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const PROTOCOL_ERRORS = 'http.ingress.downstream_cx_protocol_error';

let proxy: RunningProxy;
let backend: Upstream;
/** A keep-alive connection opened before any bad request: it must keep working throughout. */
let bystander: RawConnection;

before(async () => {
  backend = await startUpstream('backend');
  proxy = await startProxy(
    bootstrap(
      [httpListener('main', routes([{ match: { prefix: '/' }, route: { cluster: 'backend' } }]))],
      [staticCluster('backend', [backend.port])],
    ),
  );
  bystander = await RawConnection.open(proxy.port());
  bystander.write('GET /bystander HTTP/1.1\r\nHost: app\r\n\r\n');
  assert.equal((await bystander.response()).status, 200);
});

after(async () => {
  bystander?.destroy();
  await proxy?.close();
  await backend?.close();
});

/**
 * Sends `bytes` on a fresh connection and checks the whole contract of a refused request: one clear-text
 * error answer and nothing after it, the connection closed, the protocol error counted, nothing smuggled
 * upstream, and the proxy still serving this and other connections.
 */
async function expectRefused(
  bytes: string,
  opts: { statuses?: readonly number[]; upstreamMaySeeStart?: boolean } = {},
): Promise<string> {
  const statuses = opts.statuses ?? [400];
  const errorsBefore = proxy.stat(PROTOCOL_ERRORS);
  const seenBefore = backend.requests.length;
  const dispatchedBefore = proxy.stat('cluster.backend.upstream_rq_total');

  const { received, closed } = await rawRoundTrip(proxy.port(), bytes);

  assert.ok(closed, `the proxy must close the connection after refusing; got ${JSON.stringify(received)}`);
  const parsed = parseOneResponse(received, { closed: true });
  assert.ok(parsed, `expected an error response, got ${JSON.stringify(received)}`);
  const r = parsed.response;
  assert.ok(statuses.includes(r.status), `status ${r.status} not in ${statuses.join('/')}: ${r.raw}`);
  assert.equal(parsed.rest, '', 'nothing may follow the error response (no answer to a smuggled request)');
  assert.match(r.headers['content-type'] ?? '', /^text\/plain/);
  assert.equal(r.headers.connection, 'close');
  assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body, 'latin1'));
  assert.match(r.body, /^malformed HTTP request: [\x20-\x7e]+\n$/, `error body is not clear text: ${r.body}`);

  assert.equal(proxy.stat(PROTOCOL_ERRORS), errorsBefore + 1, 'downstream_cx_protocol_error counts it');
  // No request completed upstream: neither the refused one nor anything hidden in its body.
  assert.deepEqual(
    backend.requests.slice(seenBefore).map((q) => q.url),
    [],
    'the upstream must not see any part of a refused request',
  );
  if (!opts.upstreamMaySeeStart) {
    // Refused on its headers: not even the start of it may be dispatched upstream.
    assert.equal(proxy.stat('cluster.backend.upstream_rq_total'), dispatchedBefore, 'dispatched upstream');
  }

  // The proxy is still up: a fresh client and an older keep-alive connection both get through.
  const fresh = await curl([`${proxy.url()}/after`]);
  assert.equal(fresh.status, 200);
  bystander.write('GET /bystander HTTP/1.1\r\nHost: app\r\n\r\n');
  assert.equal((await bystander.response()).status, 200);
  assert.ok(!backend.requests.some((q) => q.url.startsWith('/smuggled')), 'a smuggled request got through');
  return r.body;
}

test('Content-Length together with Transfer-Encoding: 400, closed, no second request', async () => {
  const body = await expectRefused(
    'POST /cl-te HTTP/1.1\r\nHost: app\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n',
  );
  assert.match(body, /content-length|transfer-encoding/i);
});

test('Transfer-Encoding before Content-Length is refused just the same', async () => {
  await expectRefused(
    'POST /te-cl HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n' +
      '0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n',
  );
});

test('two different Content-Length values: 400', async () => {
  await expectRefused(
    'POST /two-cl HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\n' +
      'hello' +
      'GET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n',
  );
});

test('a list of Content-Length values in one header: 400', async () => {
  await expectRefused('POST /cl-list HTTP/1.1\r\nHost: app\r\nContent-Length: 5, 6\r\n\r\nhello!');
});

test('a Content-Length that is not a number: 400', async () => {
  await expectRefused('POST /cl-nan HTTP/1.1\r\nHost: app\r\nContent-Length: +5\r\n\r\nhello');
  await expectRefused('POST /cl-neg HTTP/1.1\r\nHost: app\r\nContent-Length: -1\r\n\r\n');
});

test('Transfer-Encoding "chunked, identity" is refused, not forwarded ambiguously', async () => {
  await expectRefused(
    'POST /te-identity HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked, identity\r\n\r\n' +
      '5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n',
    { statuses: [400, 501] },
  );
});

test('Transfer-Encoding "xchunked" is refused, not forwarded ambiguously', async () => {
  await expectRefused(
    'POST /te-xchunked HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: xchunked\r\n\r\n' +
      '5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n',
    { statuses: [400, 501] },
  );
});

test('an invalid chunk size: 400 and the partial request is not completed upstream', async () => {
  const body = await expectRefused(
    'POST /bad-chunk HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5\r\nhello\r\nzz\r\nGET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n',
    { upstreamMaySeeStart: true },
  );
  assert.match(body, /chunk/i);
});

test('a chunk size that overflows: 400', async () => {
  await expectRefused(
    'POST /huge-chunk HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n' +
      'fffffffffffffffff1\r\nhello\r\n0\r\n\r\n',
    { upstreamMaySeeStart: true },
  );
});

test('obs-fold header continuation: 400', async () => {
  await expectRefused(
    'GET /fold HTTP/1.1\r\nHost: app\r\nX-Folded: first\r\n second\r\nContent-Length: 0\r\n\r\n',
  );
});

test('whitespace between a header name and the colon: 400', async () => {
  await expectRefused('GET /space HTTP/1.1\r\nHost: app\r\nContent-Length : 5\r\n\r\nhello');
  await expectRefused(
    'POST /space-te HTTP/1.1\r\nHost: app\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc',
  );
});

test('NUL or a bare CR inside a header value: 400', async () => {
  await expectRefused('GET /nul HTTP/1.1\r\nHost: app\r\nX-Bad: a\x00b\r\n\r\n');
  await expectRefused('GET /cr HTTP/1.1\r\nHost: app\r\nX-Bad: a\rContent-Length: 20\r\n\r\n');
});

test('bare LF line endings are refused or read as exactly one request', async () => {
  const seen = backend.requests.length;
  const errorsBefore = proxy.stat(PROTOCOL_ERRORS);
  const { received, closed } = await rawRoundTrip(
    proxy.port(),
    'GET /bare-lf HTTP/1.1\nHost: app\nContent-Length: 0\n\nGET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n',
    2000,
  );
  const parsed = parseOneResponse(received, { closed: true });
  assert.ok(parsed, `expected a response, got ${JSON.stringify(received)}`);
  if (parsed.response.status === 400) {
    assert.ok(closed);
    assert.equal(parsed.rest, '');
    assert.match(parsed.response.body, /^malformed HTTP request: [\x20-\x7e]+\n$/);
    assert.equal(proxy.stat(PROTOCOL_ERRORS), errorsBefore + 1);
    assert.equal(backend.requests.length, seen);
  } else {
    // Accepted: then exactly the LF-framed request went upstream, with its own headers only.
    assert.equal(parsed.response.status, 200);
    const first = backend.requests[seen];
    assert.equal(first?.url, '/bare-lf');
    assert.equal(first?.headers.host, 'app');
  }
  assert.ok(!backend.requests.some((q) => q.url.startsWith('/smuggled') && q.headers.host !== 'app'));
  const fresh = await curl([`${proxy.url()}/after`]);
  assert.equal(fresh.status, 200);
});

test('a well-formed chunked request with chunk extensions and trailers is forwarded intact', async () => {
  const c = await RawConnection.open(proxy.port());
  try {
    c.write(
      'POST /chunked-ok HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n',
    );
    const r = await c.response();
    assert.equal(r.status, 200);
    const echoed = JSON.parse(r.body) as { url: string; body: string };
    assert.equal(echoed.url, '/chunked-ok');
    assert.equal(echoed.body, 'hello world');
  } finally {
    c.destroy();
  }
});
