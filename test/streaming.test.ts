// Integration: 1 GiB uploads and downloads stream through a child-process proxy with bounded memory, slow readers too.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type ChildProxy, spawnProxy, until } from './support/child.js';
import { bootstrap, httpListener, routes, staticCluster } from './support/proxy.js';
import { CHUNK, chunkAt, digest, MiB, Producer, produce, RssSampler } from './support/transfer.js';

const GiB = 1024 ** 3;
const RSS_LIMIT = 150 * MiB;

let dir: string;
let proxy: ChildProxy;
let upstream: Server;
const upstreamSockets = new Set<Socket>();
const children = new Set<ChildProcess>();

/** What the /offer upstream has written to the proxy for the current slow-reader request. */
const offer = new Producer();

/** The /slow-upload request the upstream has not started reading. */
const slowUpload: { startReading?: () => void } = {};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'remora-streaming-'));
  upstream = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (url.pathname === '/upload') {
      void digest(req).then((got) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ...got, te: req.headers['transfer-encoding'] }));
      });
      return;
    }
    if (url.pathname === '/slow-upload') {
      // Reads nothing until the test says so: the request body has to wait somewhere.
      slowUpload.startReading = () => {
        void digest(req).then((got) => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(got));
        });
      };
      return;
    }
    const total = Number(url.searchParams.get('bytes'));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
    if (url.pathname === '/download') {
      void produce(res, total).then(
        () => res.end(),
        () => res.destroy(),
      );
      return;
    }
    if (url.pathname === '/offer') {
      void offer.run(res, total).then(
        () => res.end(),
        () => res.destroy(),
      );
      return;
    }
    res.writeHead(404).end();
  });
  upstream.on('connection', (s: Socket) => {
    upstreamSockets.add(s);
    s.once('close', () => upstreamSockets.delete(s));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as { port: number }).port;
  proxy = await spawnProxy(
    dir,
    bootstrap(
      [httpListener('main', routes([{ match: { prefix: '/' }, route: { cluster: 'bulk', timeout: '0s' } }]))],
      [staticCluster('bulk', [port])],
    ),
    ['--log-level', 'error'],
  );
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await proxy?.kill();
  for (const s of upstreamSockets) s.destroy();
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs curl (it must be installed) and resolves with its exit code; stdout goes to `onStdout`. */
function runCurl(
  args: readonly string[],
  onStdout: (chunk: Buffer) => void,
): { proc: ChildProcess; exit: Promise<{ code: number | null; stderr: string }> } {
  const proc = spawn('curl', ['-sS', '--fail', '--max-time', '300', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(proc);
  let stderr = '';
  proc.stdout?.on('data', onStdout);
  proc.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    proc.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT'
          ? new Error('curl is required by the streaming tests: apt-get install curl')
          : err,
      ),
    );
    proc.once('close', (code) => {
      children.delete(proc);
      resolve({ code, stderr });
    });
  });
  return { proc, exit };
}

test('a 1 GiB upload streams through the proxy intact with bounded proxy memory', {
  timeout: 300_000,
}, async (t) => {
  const rss = new RssSampler(proxy.process.pid!);
  t.diagnostic(`proxy RSS before the upload ${(rss.peak / MiB).toFixed(1)} MiB`);
  let reply = '';
  const started = Date.now();
  // curl -T - streams its stdin as a chunked request body; nothing is ever held whole in memory.
  const { proc, exit } = runCurl(
    [
      '-T',
      '-',
      '-X',
      'POST',
      '-H',
      'content-type: application/octet-stream',
      `http://127.0.0.1:${proxy.port}/upload`,
    ],
    (d) => {
      reply += d.toString();
    },
  );
  proc.stdin!.on('error', () => undefined);
  const sentSha = await produce(proc.stdin!, GiB);
  proc.stdin!.end();
  const { code, stderr } = await exit;
  const peak = rss.stop();
  t.diagnostic(`upload took ${Date.now() - started} ms; proxy peak RSS ${(peak / MiB).toFixed(1)} MiB`);
  assert.equal(code, 0, `curl failed: ${stderr}`);
  const got = JSON.parse(reply) as { bytes: number; sha256: string };
  assert.equal(got.bytes, GiB, 'the upstream received every byte');
  assert.equal(got.sha256, sentSha, 'the upstream received the bytes in order, unchanged');
  assert.ok(peak < RSS_LIMIT, `proxy peak RSS ${(peak / MiB).toFixed(1)} MiB exceeds 150 MiB`);
});

test('a 1 GiB download streams through the proxy intact with bounded proxy memory', {
  timeout: 300_000,
}, async (t) => {
  // The expected digest: the same deterministic data, hashed here.
  const expected = createHash('sha256');
  for (let sent = 0, i = 0; sent < GiB; i++, sent += CHUNK) expected.update(chunkAt(i));
  const expectedSha = expected.digest('hex');

  const rss = new RssSampler(proxy.process.pid!);
  const hash = createHash('sha256');
  let bytes = 0;
  const started = Date.now();
  const { exit } = runCurl(['-o', '-', `http://127.0.0.1:${proxy.port}/download?bytes=${GiB}`], (d) => {
    bytes += d.length;
    hash.update(d);
  });
  const { code, stderr } = await exit;
  const peak = rss.stop();
  t.diagnostic(`download took ${Date.now() - started} ms; proxy peak RSS ${(peak / MiB).toFixed(1)} MiB`);
  assert.equal(code, 0, `curl failed: ${stderr}`);
  assert.equal(bytes, GiB, 'the client received every byte');
  assert.equal(hash.digest('hex'), expectedSha, 'the client received the bytes in order, unchanged');
  assert.ok(peak < RSS_LIMIT, `proxy peak RSS ${(peak / MiB).toFixed(1)} MiB exceeds 150 MiB`);
});

test('a paused client holds the upstream back instead of the proxy buffering', {
  timeout: 120_000,
}, async (t) => {
  const total = 256 * MiB;
  const rss = new RssSampler(proxy.process.pid!);
  const client = connect(proxy.port, '127.0.0.1');
  try {
    client.write(`GET /offer?bytes=${total} HTTP/1.1\r\nHost: bulk\r\n\r\n`);
    let received = 0;
    let pausedOnce = false;
    let head = Buffer.alloc(0);
    let headDone = false;
    const hash = createHash('sha256');
    let resolveEnd: () => void = () => undefined;
    const ended = new Promise<void>((r) => {
      resolveEnd = r;
    });
    client.on('data', (d: Buffer) => {
      if (!headDone) {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        headDone = true;
        assert.match(head.subarray(0, end).toString('latin1'), /^HTTP\/1\.1 200 /);
        d = head.subarray(end + 4);
      }
      received += d.length;
      hash.update(d);
      // Read the first few MiB, then stop reading: the client is now a slow reader.
      if (received >= 4 * MiB && !pausedOnce) {
        pausedOnce = true;
        client.pause();
      }
      if (received === total) resolveEnd();
    });
    await until('the client to stop reading', () => client.isPaused(), 30_000);
    // The upstream keeps offering data until backpressure reaches it through the proxy. Had the proxy kept
    // reading from the upstream, the upstream would never stay blocked and would send all 256 MiB.
    await until('the upstream to be held back by the paused client', () => offer.heldFor(500), 30_000);
    const inFlight = offer.written - received;
    const rssWhilePaused = rss.sample();
    t.diagnostic(
      `paused at ${(received / MiB).toFixed(1)} MiB; upstream wrote ${(offer.written / MiB).toFixed(1)} MiB; ` +
        `proxy RSS ${(rssWhilePaused / MiB).toFixed(1)} MiB`,
    );
    assert.ok(!offer.done, 'the upstream could not finish while the client was paused');
    assert.ok(
      inFlight < 64 * MiB,
      `${(inFlight / MiB).toFixed(1)} MiB are between upstream and paused client`,
    );
    assert.ok(rssWhilePaused < RSS_LIMIT, `proxy RSS ${(rssWhilePaused / MiB).toFixed(1)} MiB while paused`);

    // Reading again drains everything, intact.
    client.resume();
    await ended;
    const peak = rss.stop();
    assert.equal(received, total);
    await until('the upstream to finish', () => offer.done);
    assert.equal(hash.digest('hex'), offer.sha256);
    assert.ok(peak < RSS_LIMIT, `proxy peak RSS ${(peak / MiB).toFixed(1)} MiB exceeds 150 MiB`);
  } finally {
    rss.stop();
    client.destroy();
  }
});

test('two clients that keep stopping to read each get their own download intact', {
  timeout: 120_000,
}, async () => {
  // Each upstream connection reads into the proxy's one shared read buffer; a write to a stalled client keeps
  // bytes it was given until the client reads again. Another connection's read must not overwrite them.
  const total = 32 * MiB;
  const expected = createHash('sha256');
  for (let sent = 0, i = 0; sent < total; i++, sent += CHUNK) expected.update(chunkAt(i));
  const expectedSha = expected.digest('hex');
  const download = (stallEvery: number): Promise<{ bytes: number; sha256: string }> =>
    new Promise((resolve, reject) => {
      const client = connect(proxy.port, '127.0.0.1');
      client.write(`GET /download?bytes=${total} HTTP/1.1\r\nHost: bulk\r\nConnection: close\r\n\r\n`);
      const hash = createHash('sha256');
      let head: Buffer | undefined = Buffer.alloc(0);
      let bytes = 0;
      let nextStall = stallEvery;
      client.on('data', (d: Buffer) => {
        if (head !== undefined) {
          head = Buffer.concat([head, d]);
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return;
          d = head.subarray(end + 4);
          head = undefined;
        }
        bytes += d.length;
        hash.update(d);
        if (bytes >= nextStall) {
          nextStall += stallEvery;
          client.pause();
          setTimeout(() => client.resume(), 30);
        }
      });
      client.on('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
      client.on('error', reject);
    });
  const [a, b] = await Promise.all([download(3 * MiB), download(2 * MiB)]);
  assert.deepEqual(a, { bytes: total, sha256: expectedSha }, 'the first client got other bytes');
  assert.deepEqual(b, { bytes: total, sha256: expectedSha }, 'the second client got other bytes');
});

test('an upstream that stops reading holds the uploading client back', { timeout: 120_000 }, async (t) => {
  const total = 256 * MiB;
  const rss = new RssSampler(proxy.process.pid!);
  const client = connect(proxy.port, '127.0.0.1');
  client.on('error', () => undefined);
  let reply = '';
  client.on('data', (d: Buffer) => {
    reply += d.toString('latin1');
  });
  try {
    client.write(`POST /slow-upload HTTP/1.1\r\nHost: bulk\r\nContent-Length: ${total}\r\n\r\n`);
    const sender = new Producer();
    const produced = sender.run(client, total);
    await until('the upstream to get the request', () => slowUpload.startReading !== undefined, 30_000);
    // Had the proxy kept reading the body into memory, the client would never stay blocked.
    await until(
      'the client to be held back by the upstream that does not read',
      () => sender.heldFor(500),
      30_000,
    );
    const rssWhileHeld = rss.sample();
    t.diagnostic(
      `client blocked after ${(sender.written / MiB).toFixed(1)} MiB; proxy RSS ${(rssWhileHeld / MiB).toFixed(1)} MiB`,
    );
    assert.ok(
      sender.written < 64 * MiB,
      `${(sender.written / MiB).toFixed(1)} MiB left the client unread upstream`,
    );
    assert.ok(rssWhileHeld < RSS_LIMIT, `proxy RSS ${(rssWhileHeld / MiB).toFixed(1)} MiB while held`);

    slowUpload.startReading?.();
    const sentSha = await produced;
    await until('the upstream answer', () => reply.includes('}'), 60_000);
    const got = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { bytes: number; sha256: string };
    assert.match(reply, /^HTTP\/1\.1 200 /);
    assert.equal(got.bytes, total);
    assert.equal(got.sha256, sentSha);
    const peak = rss.stop();
    assert.ok(peak < RSS_LIMIT, `proxy peak RSS ${(peak / MiB).toFixed(1)} MiB exceeds 150 MiB`);
  } finally {
    rss.stop();
    client.destroy();
  }
});
