// Integration: HTTP/2 flow control end to end — a slow h2 reader holds the upstream back, a slow upstream holds the
// h2 uploader back, and the proxy (a child process, so its memory is its own) stays bounded either way.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
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
import { digest, MiB, Producer, RssSampler } from './support/transfer.js';

const TOTAL = 200 * MiB;
/** How much the proxy's RSS may grow over its idle size while carrying one of these transfers. */
const RSS_GROWTH_LIMIT = 100 * MiB;
/** Bytes that may sit between the two ends while one of them is stalled: windows and socket buffers. */
const IN_FLIGHT_LIMIT = 64 * MiB;

let dir: string;
let proxy: ChildProxy;
let session: ClientHttp2Session;
const servers: { close(cb: () => void): void }[] = [];
const sockets = new Set<Socket>();

/** What the upstream offering a download has written, and since when it has been refused. */
const offer = new Producer();
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
      void digest(req).then((got) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ...got, protocol: req.httpVersion }));
      });
    };
    return;
  }
  const total = Number(url.searchParams.get('bytes'));
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
  void offer.run(res as unknown as Writable, total).then(
    () => res.end(),
    () => undefined,
  );
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
      await until('the upstream to be held back by the paused client', () => offer.heldFor(500), 30_000);
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
      const sender = new Producer();
      const produced = sender.run(req, TOTAL);
      await until('the upstream to get the request', () => slowUpload.startReading !== undefined, 30_000);
      // Had the proxy read the body into memory, the client would never stay blocked.
      await until(
        'the client to be held back by the upstream that does not read',
        () => sender.heldFor(500),
        30_000,
      );
      const growth = rss.sample() - idle;
      t.diagnostic(
        `client blocked after ${(sender.written / MiB).toFixed(1)} MiB; proxy RSS +${(growth / MiB).toFixed(1)} MiB`,
      );
      assert.ok(
        sender.written < IN_FLIGHT_LIMIT,
        `${(sender.written / MiB).toFixed(1)} MiB left the client unread`,
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
