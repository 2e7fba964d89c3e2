// Integration: HTTP/2 abuse defences — concurrent stream limit, oversized header lists, rapid reset, PING and
// SETTINGS floods; each bad connection is dealt with while other clients are served.

import assert from 'node:assert/strict';
import { type ClientHttp2Session, constants, type ServerHttp2Stream } from 'node:http2';
import { after, before, test } from 'node:test';
import { until } from './support/child.js';
import {
  FRAME,
  H2_PREFACE,
  H2StreamError,
  type H2Upstream,
  h2Connect,
  h2ProtocolOptions,
  h2Request,
  headersFrame,
  pingFrame,
  RawH2Connection,
  settingsFrame,
  startH2Upstream,
} from './support/h2.js';
import {
  bootstrap,
  httpListener,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
} from './support/proxy.js';

const MiB = 1024 * 1024;

let proxy: RunningProxy;
let upstream: H2Upstream;
const sessions = new Set<ClientHttp2Session>();
const raws = new Set<RawH2Connection>();
/** Responses the upstream holds until the test lets them go, by path; all released in after(). */
const held = new Map<string, () => void>();

function releaseAll(): void {
  for (const [path, answer] of [...held]) {
    held.delete(path);
    answer();
  }
}

before(async () => {
  upstream = await startH2Upstream((stream: ServerHttp2Stream, req) => {
    const path = String(req.headers[':path']);
    const answer = () => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(`ok ${path}`);
    };
    if (path.startsWith('/hold')) return void held.set(path, answer);
    if (path.startsWith('/never')) return;
    answer();
  });
  const table = routes([{ match: { prefix: '/' }, route: { cluster: 'h2' } }]);
  proxy = await startProxy(
    bootstrap(
      [
        httpListener('limits', table, {
          stat_prefix: 'limits',
          http2_protocol_options: { max_concurrent_streams: 5 },
          max_request_headers_kb: 60,
        }),
        httpListener('rr', table, { stat_prefix: 'rr' }),
        httpListener('flood', table, { stat_prefix: 'flood' }),
      ],
      [staticCluster('h2', [upstream.port], h2ProtocolOptions())],
    ),
  );
});

after(async () => {
  for (const s of sessions) s.destroy();
  for (const r of raws) r.destroy();
  releaseAll();
  await proxy?.close();
  await upstream?.close();
});

async function connect(listener: string, opts = {}): Promise<ClientHttp2Session> {
  const s = await h2Connect(proxy.url(listener), opts);
  sessions.add(s);
  s.once('close', () => sessions.delete(s));
  return s;
}

async function raw(listener: string): Promise<RawH2Connection> {
  const c = await RawH2Connection.open(proxy.port(listener));
  raws.add(c);
  return c;
}

/** A GET as a raw HEADERS frame (literal fields, END_STREAM). */
function get(streamId: number, path: string): Buffer {
  return headersFrame(
    streamId,
    [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':authority', 'raw.test'],
      [':path', path],
    ],
    true,
  );
}

test('max_concurrent_streams is announced; a client that ignores it gets REFUSED_STREAM for the excess', async () => {
  const session = await connect('limits');
  assert.equal(session.remoteSettings.maxConcurrentStreams, 5);

  const c = await raw('limits');
  c.write(Buffer.concat([H2_PREFACE, settingsFrame()]));
  // Six streams at once, the SETTINGS not acknowledged yet (a client may send before it has read them).
  for (let i = 0; i < 6; i++) c.write(get(1 + 2 * i, `/hold/${i}`));
  await until('RST_STREAM for the sixth stream', () => c.resets().has(11));
  assert.equal(c.resets().get(11), constants.NGHTTP2_REFUSED_STREAM);
  await until('the upstream to hold five requests', () =>
    [0, 1, 2, 3, 4].every((i) => held.has(`/hold/${i}`)),
  );
  assert.ok(!held.has('/hold/5'));
  releaseAll();
  const answered = () => new Set(c.frames.filter((f) => f.type === FRAME.HEADERS).map((f) => f.streamId));
  await until('answers on the five admitted streams', () => answered().size === 5);
  assert.deepEqual(
    [...answered()].sort((a, b) => a - b),
    [1, 3, 5, 7, 9],
  );
  assert.equal(c.goaway, undefined, 'the connection was not torn down');
  assert.equal(c.resets().size, 1);
});

test('a client that acknowledged max_concurrent_streams and still exceeds it loses its connection, no one else', async () => {
  const bystander = await connect('limits');
  const c = await raw('limits');
  c.write(Buffer.concat([H2_PREFACE, settingsFrame()]));
  await until('the proxy SETTINGS', () => c.frames.some((f) => f.type === FRAME.SETTINGS && f.flags === 0));
  c.write(settingsFrame([], true));
  await until('the proxy to see the SETTINGS acknowledged', () =>
    c.frames.some((f) => f.type === FRAME.SETTINGS && f.flags === 1),
  );
  for (let i = 0; i < 6; i++) c.write(get(1 + 2 * i, `/hold/acked-${i}`));
  // nghttp2 treats a limit the client has acknowledged as a connection error (RFC 9113 §5.1.2 asks for a stream
  // error): the whole connection goes, with GOAWAY.
  await until('GOAWAY for the connection that broke the limit', () => c.goaway !== undefined);
  assert.notEqual(c.goaway!.errorCode, constants.NGHTTP2_NO_ERROR);
  await until('the connection to close', () => c.closed);
  releaseAll();
  assert.equal((await h2Request(bystander, { ':path': '/after-excess' })).status, 200);
});

test('a header list over max_request_headers_kb fails its stream only: the connection and other streams go on', async (t) => {
  // node's client would refuse to send a header block this large; the limit under test is the proxy's.
  const session = await connect('limits', { maxSendHeaderBlockLength: 4 * MiB });
  const inFlight = h2Request(session, { ':path': '/hold/neighbour' });
  await until('the neighbour to reach the upstream', () => held.has('/hold/neighbour'));
  const big = h2Request(session, { ':path': '/big', 'x-big': 'a'.repeat(100 * 1024) });
  const outcome = await big.then(
    (r) => `status ${r.status}`,
    (err: unknown) => (err instanceof H2StreamError ? 'reset' : String(err)),
  );
  t.diagnostic(`a 100 KiB header: ${outcome}`);
  assert.ok(outcome === 'reset' || outcome === 'status 431', `oversized header list: ${outcome}`);
  assert.ok(!upstream.requests.some((r) => r.headers[':path'] === '/big'), 'the upstream never saw it');
  releaseAll();
  assert.equal((await inFlight).status, 200);
  assert.equal((await h2Request(session, { ':path': '/after-big' })).status, 200);
});

test('CR, LF or NUL in a field, or a space in :path, fails that stream: nothing is smuggled to the upstream', async () => {
  const c = await raw('limits');
  c.write(Buffer.concat([H2_PREFACE, settingsFrame()]));
  const fields = (path: string, extra: [string, string][] = []): [string, string][] => [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':authority', 'raw.test'],
    [':path', path],
    ...extra,
  ];
  // Forwarded to an HTTP/1.1 upstream these would be a second header, a second request line, a cut value.
  c.write(headersFrame(1, fields('/crlf', [['x-a', 'v\r\ntransfer-encoding: chunked']]), true));
  c.write(headersFrame(3, fields('/lf', [['x-b', 'v\nx-injected: 1']]), true));
  c.write(headersFrame(5, fields('/nul', [['x-c', 'v\u0000w']]), true));
  c.write(headersFrame(7, fields('/a b HTTP/1.1'), true));
  c.write(headersFrame(9, fields('/name', [['x-d\r\nx-e', 'v']]), true));
  c.write(get(11, '/after-malformed'));
  await until('five resets and the good answer', () => {
    const headers = c.frames.filter((f) => f.type === FRAME.HEADERS && f.streamId === 11);
    return c.resets().size >= 5 && headers.length > 0;
  });
  const resets = c.resets();
  for (const id of [1, 3, 5, 7, 9])
    assert.equal(resets.get(id), constants.NGHTTP2_PROTOCOL_ERROR, `stream ${id}`);
  assert.ok(!c.closed && c.goaway === undefined, 'the connection goes on');
  const paths = upstream.requests.map((r) => String(r.headers[':path']));
  for (const p of ['/crlf', '/lf', '/nul', '/name'])
    assert.ok(!paths.includes(p), `${p} never reached the upstream`);
  assert.ok(!paths.some((p) => p.startsWith('/a ')));
  assert.ok(paths.includes('/after-malformed'));
});

test('rapid reset: streams reset as soon as opened get the connection closed with ENHANCE_YOUR_CALM', async () => {
  const before = proxy.stat('http.rr.downstream_rq_too_many_premature_resets');
  const bystander = await connect('rr');
  const attacker = await connect('rr');
  let goaway: number | undefined;
  attacker.on('goaway', (code: number) => {
    goaway = code;
  });
  const served: Promise<number>[] = [];
  let opened = 0;
  for (let round = 0; round < 50 && !attacker.closed && !attacker.destroyed; round++) {
    for (let i = 0; i < 100; i++) {
      let req: ReturnType<ClientHttp2Session['request']>;
      try {
        req = attacker.request({ ':path': `/never/${opened}` });
      } catch {
        break; // the session is going away
      }
      opened++;
      req.on('error', () => undefined);
      req.close(constants.NGHTTP2_CANCEL);
    }
    // Meanwhile another client on the same listener is served as usual.
    served.push(h2Request(bystander, { ':path': `/bystander/${round}` }).then((r) => r.status));
    await new Promise((r) => setImmediate(r));
  }
  await until('the attacking connection to close', () => attacker.closed || attacker.destroyed);
  assert.equal(goaway, constants.NGHTTP2_ENHANCE_YOUR_CALM, `GOAWAY code after ${opened} streams`);
  assert.ok(opened < 5000, 'the connection was closed before the client gave up');
  assert.equal(proxy.stat('http.rr.downstream_rq_too_many_premature_resets') - before, 1);
  for (const status of await Promise.all(served)) assert.equal(status, 200);
  assert.equal((await h2Request(bystander, { ':path': '/after-rapid-reset' })).status, 200);
  const fresh = await connect('rr');
  assert.equal((await h2Request(fresh, { ':path': '/fresh' })).status, 200);
});

for (const [name, flood] of [
  ['PING', (i: number) => pingFrame(i)],
  ['SETTINGS', (_i: number) => settingsFrame([[0x4, 65_535 + (_i % 2)]])],
] as const) {
  test(`${name} flood from a client that never reads: the proxy closes it, memory bounded, others served`, async (t) => {
    const bystander = await connect('flood');
    const rssBefore = process.memoryUsage().rss;
    const c = await raw('flood');
    // Never read: what the proxy answers piles up unless it stops.
    c.socket.pause();
    c.write(Buffer.concat([H2_PREFACE, settingsFrame(), settingsFrame([], true)]));
    const batch = 1000;
    let sent = 0;
    while (sent < 100_000 && !c.closed) {
      const frames: Buffer[] = [];
      for (let i = 0; i < batch; i++) frames.push(flood(sent + i));
      sent += batch;
      if (!c.write(Buffer.concat(frames))) {
        await new Promise<void>((r) => {
          const done = () => {
            c.socket.off('drain', done);
            c.socket.off('close', done);
            r();
          };
          c.socket.once('drain', done);
          c.socket.once('close', done);
        });
      }
      assert.equal((await h2Request(bystander, { ':path': `/during-${name}` })).status, 200);
    }
    await until(`the proxy to close the ${name} flooding connection`, () => c.closed, 20_000);
    const growth = process.memoryUsage().rss - rssBefore;
    t.diagnostic(`closed after ${sent} ${name} frames; RSS grew ${(growth / MiB).toFixed(1)} MiB`);
    assert.ok(growth < 100 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB during the flood`);
    assert.equal((await h2Request(bystander, { ':path': `/after-${name}` })).status, 200);
    assert.ok(proxy.stat('http.flood.downstream_cx_destroy') >= 1);
  });
}

test('the proxy still takes new connections after all of the above', async () => {
  const s = await connect('flood');
  assert.equal((await h2Request(s, { ':path': '/last' })).status, 200);
});
