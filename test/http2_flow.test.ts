// Integration: HTTP/2 flow control end to end — a slow h2 reader holds the upstream back, a slow upstream holds the
// h2 uploader back, and the proxy (a child process, so its memory is its own) stays bounded either way.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttp1Server, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  type ClientHttp2Session,
  createServer as createHttp2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from 'node:http2';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { type ChildProxy, spawnProxy, until } from './support/child.js';
import { h2Connect, h2ProtocolOptions } from './support/h2.js';
import { bootstrap, httpListener, routes, staticCluster } from './support/proxy.js';

const MiB = 1024 ** 2;
const TOTAL = 200 * MiB;
/** How much the proxy's RSS may grow over its idle size while carrying one of these transfers. */
const RSS_GROWTH_LIMIT = 100 * MiB;
/** Bytes that may sit between the two ends while one of them is stalled: windows and socket buffers. */
const IN_FLIGHT_LIMIT = 64 * MiB;
const CHUNK = 256 * 1024;

let dir: string;
let proxy: ChildProxy;
let session: ClientHttp2Session;
const servers: { close(cb: () => void): void }[] = [];
const sockets = new Set<Socket>();

const block = randomBytes(CHUNK);
function chunkAt(i: number, size = CHUNK): Buffer {
  const c = Buffer.allocUnsafe(size);
  block.copy(c, 0, 0, size);
  c.writeUInt32BE(i, 0);
  return c;
}

/** Writes `total` bytes to `out` as fast as backpressure allows; `onBlocked` hears each refused write. */
async function produce(out: Writable, total: number, onBlocked?: (sent: number) => void): Promise<string> {
  const hash = createHash('sha256');
  let sent = 0;
  for (let i = 0; sent < total; i++) {
    const c = chunkAt(i, Math.min(CHUNK, total - sent));
    hash.update(c);
    sent += c.length;
    if (!out.write(c)) {
      onBlocked?.(sent);
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          out.off('error', onError);
          resolve();
        };
        const onError = (err: Error) => {
          out.off('drain', onDrain);
          reject(err);
        };
        out.once('drain', onDrain);
        out.once('error', onError);
      });
    }
  }
  return hash.digest('hex');
}

/** What the upstream offering a download has written, and since when it has been refused. */
const offer = { written: 0, blockedSince: 0, done: false, sha256: '' };
/** The upload the upstream has not started reading. */
const slowUpload: { startReading?: () => void } = {};

/** One handler for both upstreams (node's compatibility API makes HTTP/1.1 and HTTP/2 look alike). */
function upstreamHandler(
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
): void {
  const url = new URL(req.url ?? '/', 'http://upstream');
  if (url.pathname.endsWith('/slow-upload')) {
    slowUpload.startReading = () => {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ bytes, sha256: hash.digest('hex'), protocol: req.httpVersion }));
      });
    };
    return;
  }
  const total = Number(url.searchParams.get('bytes'));
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
  Object.assign(offer, { written: 0, blockedSince: 0, done: false, sha256: '' });
  const out = res as unknown as Writable;
  out.on('drain', () => {
    offer.blockedSince = 0;
  });
  void produce(out, total, (sent) => {
    offer.written = sent;
    offer.blockedSince = Date.now();
  }).then(
    (sha) => {
      Object.assign(offer, { written: total, sha256: sha, done: true });
      res.end();
    },
    () => undefined,
  );
}

class RssSampler {
  peak = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), 20);
  }
  sample(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const bytes = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) * 1024;
    if (bytes > this.peak) this.peak = bytes;
    return bytes;
  }
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'remora-http2-flow-'));
  const h1 = createHttp1Server(upstreamHandler);
  const h2 = createHttp2Server(upstreamHandler);
  const ports: number[] = [];
  for (const s of [h1, h2]) {
    s.on('connection', (c: Socket) => {
      sockets.add(c);
      c.once('close', () => sockets.delete(c));
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    ports.push((s.address() as { port: number }).port);
    servers.push(s);
  }
  proxy = await spawnProxy(
    dir,
    bootstrap(
      [
        httpListener(
          'main',
          routes([
            { match: { prefix: '/h1/' }, route: { cluster: 'h1', timeout: '0s' } },
            { match: { prefix: '/h2/' }, route: { cluster: 'h2', timeout: '0s' } },
          ]),
        ),
      ],
      [staticCluster('h1', [ports[0]!]), staticCluster('h2', [ports[1]!], h2ProtocolOptions())],
    ),
    ['--log-level', 'error'],
  );
  session = await h2Connect(`http://127.0.0.1:${proxy.port}`);
});

after(async () => {
  session?.destroy();
  await proxy?.kill();
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  if (dir) await rm(dir, { recursive: true, force: true });
});

for (const upstream of ['h1', 'h2'] as const) {
  test(`a paused h2 client holds back an ${upstream} upstream streaming 200 MiB; proxy memory bounded`, {
    timeout: 120_000,
  }, async (t) => {
    const rss = new RssSampler(proxy.process.pid!);
    const idle = rss.peak;
    try {
      const req = session.request({ ':path': `/${upstream}/offer?bytes=${TOTAL}` });
      const hash = createHash('sha256');
      let received = 0;
      req.on('data', (d: Buffer) => {
        received += d.length;
        hash.update(d);
        // Read the first few MiB, then stop reading: the client is now a slow reader.
        if (received >= 4 * MiB && received - d.length < 4 * MiB) req.pause();
      });
      const ended = new Promise<void>((resolve, reject) => {
        req.on('end', resolve);
        req.on('error', reject);
      });
      await until('the client to stop reading', () => req.isPaused(), 30_000);
      // Had the proxy gone on reading from the upstream, the upstream would never stay blocked.
      await until(
        'the upstream to be held back by the paused client',
        () => offer.blockedSince > 0 && Date.now() - offer.blockedSince >= 500,
        30_000,
      );
      const inFlight = offer.written - received;
      const growth = rss.sample() - idle;
      t.diagnostic(
        `paused at ${(received / MiB).toFixed(1)} MiB; upstream wrote ${(offer.written / MiB).toFixed(1)} MiB; ` +
          `proxy RSS +${(growth / MiB).toFixed(1)} MiB`,
      );
      assert.ok(!offer.done, 'the upstream could not finish while the client was paused');
      assert.ok(inFlight < IN_FLIGHT_LIMIT, `${(inFlight / MiB).toFixed(1)} MiB between upstream and client`);
      assert.ok(growth < RSS_GROWTH_LIMIT, `proxy RSS grew ${(growth / MiB).toFixed(1)} MiB while paused`);

      req.resume();
      await ended;
      assert.equal(received, TOTAL);
      await until('the upstream to finish', () => offer.done);
      assert.equal(hash.digest('hex'), offer.sha256, 'every byte arrived, in order');
      const peak = rss.stop() - idle;
      assert.ok(peak < RSS_GROWTH_LIMIT, `proxy RSS grew ${(peak / MiB).toFixed(1)} MiB at its peak`);
    } finally {
      rss.stop();
    }
  });

  test(`an ${upstream} upstream that does not read holds back a 200 MiB h2 upload; proxy memory bounded`, {
    timeout: 120_000,
  }, async (t) => {
    const rss = new RssSampler(proxy.process.pid!);
    const idle = rss.peak;
    slowUpload.startReading = undefined;
    try {
      const req = session.request({ ':method': 'POST', ':path': `/${upstream}/slow-upload` });
      let reply = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => {
        reply += d;
      });
      const ended = new Promise<void>((resolve, reject) => {
        req.on('end', resolve);
        req.on('error', reject);
      });
      const sender = { sent: 0, blockedSince: 0 };
      req.on('drain', () => {
        sender.blockedSince = 0;
      });
      const produced = produce(req, TOTAL, (sent) => {
        sender.sent = sent;
        sender.blockedSince = Date.now();
      });
      await until('the upstream to get the request', () => slowUpload.startReading !== undefined, 30_000);
      // Had the proxy read the body into memory, the client would never stay blocked.
      await until(
        'the client to be held back by the upstream that does not read',
        () => sender.blockedSince > 0 && Date.now() - sender.blockedSince >= 500,
        30_000,
      );
      const growth = rss.sample() - idle;
      t.diagnostic(
        `client blocked after ${(sender.sent / MiB).toFixed(1)} MiB; proxy RSS +${(growth / MiB).toFixed(1)} MiB`,
      );
      assert.ok(
        sender.sent < IN_FLIGHT_LIMIT,
        `${(sender.sent / MiB).toFixed(1)} MiB left the client unread`,
      );
      assert.ok(growth < RSS_GROWTH_LIMIT, `proxy RSS grew ${(growth / MiB).toFixed(1)} MiB while held`);

      slowUpload.startReading!();
      const sentSha = await produced;
      req.end();
      await ended;
      const got = JSON.parse(reply) as { bytes: number; sha256: string; protocol: string };
      assert.equal(got.protocol, upstream === 'h2' ? '2.0' : '1.1');
      assert.equal(got.bytes, TOTAL);
      assert.equal(got.sha256, sentSha);
      const peak = rss.stop() - idle;
      assert.ok(peak < RSS_GROWTH_LIMIT, `proxy RSS grew ${(peak / MiB).toFixed(1)} MiB at its peak`);
    } finally {
      rss.stop();
    }
  });
}
