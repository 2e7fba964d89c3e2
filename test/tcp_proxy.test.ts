// Integration: tcp_proxy through a real proxy — echo with a hash check, half-close, idle timeout, connect failures,
// byte stats, weighted clusters, connect attempts, server-first protocols, resets. Every test runs twice: with the
// kernel relay (native/tcp_relay.c, the default where the addon is built) and with bytes relayed through Node's
// streams (REMORA_TCP_RELAY=node).

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { kernelRelayAvailable, runningRelays } from '../src/dataplane/network/kernel_relay.js';
import {
  bootstrap,
  DEAD_ADDRESS,
  deadCluster,
  endpoint,
  type RunningProxy,
  startProxy,
  staticCluster,
  tcpListener,
} from './support/proxy.js';
import { closedPort, startTcpServer } from './support/upstream.js';

type TcpServer = Awaited<ReturnType<typeof startTcpServer>>;

let proxy: RunningProxy;
const servers: TcpServer[] = [];
/** What the half-close upstream saw: bytes before its read side ended. */
const halfCloseSeen: number[] = [];
const FIXED_REPLY = Buffer.alloc(12_345, 'r');
const BANNER = '220 ready when you are\r\n';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function server(onSocket: (s: Socket) => void): Promise<number> {
  const s = await startTcpServer(onSocket);
  servers.push(s);
  return s.port;
}

/** Reads everything a socket sends until its end. */
function readAll(s: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

const STREAM_BYTES = 24 * 1024 * 1024;

/** Bytes `offset .. offset + n` of the stream the streamer sends: position-dependent, so a lost, repeated or
 * overwritten chunk shows. */
function patternChunk(offset: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = ((offset + i) * 31 + ((offset + i) >>> 16)) & 0xff;
  return b;
}

function closed(s: Socket): Promise<void> {
  return new Promise((r) => (s.closed ? r() : s.once('close', () => r())));
}

/** Sends `data`, ends the write side, and returns everything received until the proxy ends the stream. */
async function exchange(port: number, data: Buffer | string): Promise<Buffer> {
  const s = await open(port);
  const got = readAll(s);
  s.end(data);
  const out = await got;
  s.destroy();
  return out;
}

before(async () => {
  // Echoes every byte; ends its side when the client ends (the pipe does).
  const echo = await server((s) => s.pipe(s));
  // Reads to the end, then answers and closes: the reply comes after the client's FIN.
  const afterEnd = await server((s) => {
    let n = 0;
    s.on('data', (c: Buffer) => {
      n += c.length;
    });
    s.on('end', () => {
      halfCloseSeen.push(n);
      setTimeout(() => s.end(`got ${n} bytes after your FIN`), 50);
    });
  });
  const fixed = await server((s) => {
    s.resume();
    s.on('end', () => s.end(FIXED_REPLY));
  });
  // Sends STREAM_BYTES of a known pattern as fast as the proxy takes them, then ends.
  const streamer = await server((s) => {
    s.resume();
    let sent = 0;
    const pump = (): void => {
      while (sent < STREAM_BYTES) {
        const chunk = patternChunk(sent, Math.min(64 * 1024, STREAM_BYTES - sent));
        sent += chunk.length;
        if (!s.write(chunk)) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
    };
    pump();
  });
  const named = (name: string) =>
    server((s) => {
      s.resume();
      s.end(name);
    });
  const a = await named('a');
  const b = await named('b');
  // Speaks first, then echoes (SMTP, MySQL and SSH servers greet before the client says anything).
  const banner = await server((s) => {
    s.write(BANNER);
    s.pipe(s);
  });
  // Resets the connection when the first bytes come.
  const resetter = await server((s) => s.once('data', () => s.resetAndDestroy()));
  const dead = await closedPort();
  proxy = await startProxy(
    bootstrap(
      [
        tcpListener('echo', 'echo'),
        tcpListener('halfclose', 'after_end'),
        tcpListener('idle', 'echo', { idle_timeout: '0.5s' }),
        tcpListener('dead', 'dead'),
        tcpListener('counted', 'fixed'),
        tcpListener('stream', 'streamer'),
        {
          ...tcpListener('weighted', 'unused'),
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.tcp_proxy',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                    stat_prefix: 'weighted',
                    weighted_clusters: {
                      clusters: [
                        { name: 'a', weight: 1 },
                        { name: 'b', weight: 1 },
                      ],
                    },
                  },
                },
              ],
            },
          ],
        },
        tcpListener('retry', 'half_dead', { max_connect_attempts: 2 }),
        tcpListener('banner', 'banner'),
        tcpListener('reset', 'resetter'),
      ],
      [
        staticCluster('echo', [echo]),
        staticCluster('after_end', [afterEnd]),
        deadCluster('dead', dead),
        staticCluster('fixed', [fixed]),
        staticCluster('streamer', [streamer]),
        staticCluster('a', [a]),
        staticCluster('b', [b]),
        staticCluster('banner', [banner]),
        staticCluster('resetter', [resetter]),
        {
          ...staticCluster('half_dead', []),
          load_assignment: {
            cluster_name: 'half_dead',
            endpoints: [{ lb_endpoints: [endpoint(dead, { address: DEAD_ADDRESS }), endpoint(echo)] }],
          },
        },
      ],
    ),
  );
});

after(async () => {
  await proxy.close();
  for (const s of servers) await s.close();
});

for (const relay of ['kernel', 'node'] as const) {
  describe(`relayed by ${relay === 'kernel' ? 'the kernel relay' : "Node's streams"}`, () => {
    before(() => {
      if (relay === 'node') process.env.REMORA_TCP_RELAY = 'node';
      else delete process.env.REMORA_TCP_RELAY;
    });
    after(() => {
      delete process.env.REMORA_TCP_RELAY;
    });

    test(`connections go to ${relay === 'kernel' ? 'the kernel relay' : 'Node'}`, async () => {
      if (relay === 'kernel') {
        assert.ok(
          kernelRelayAvailable(),
          'the native addon is not built (npm install builds it; it needs python3, make and a C compiler)',
        );
      }
      const s = await open(proxy.port('echo'));
      s.write('ping');
      await new Promise((r) => s.once('data', r));
      assert.equal(runningRelays(), relay === 'kernel' ? 1 : 0);
      s.destroy();
      await until('the relay to let go', () => runningRelays() === 0);
    });

    test('echo: 8 MiB both ways arrive intact (sha256) and the connection ends cleanly', async () => {
      const payload = randomBytes(8 * 1024 * 1024);
      const got = await exchange(proxy.port('echo'), payload);
      assert.equal(got.length, payload.length);
      assert.equal(
        createHash('sha256').update(got).digest('hex'),
        createHash('sha256').update(payload).digest('hex'),
      );
    });

    test('half-close: the upstream sees the client FIN and its later reply still reaches the client', async () => {
      const s = await open(proxy.port('halfclose'));
      const got = readAll(s);
      const seenBefore = halfCloseSeen.length;
      s.end('ping ping');
      await until('the upstream to see the end of the stream', () => halfCloseSeen.length > seenBefore);
      assert.equal(halfCloseSeen.at(-1), 9);
      assert.equal((await got).toString(), 'got 9 bytes after your FIN');
      await closed(s);
    });

    test('idle_timeout: 0.5s closes a quiet proxied connection and counts idle_timeout', async () => {
      const idleBefore = proxy.stat('tcp.idle.idle_timeout');
      const s = await open(proxy.port('idle'));
      const got = readAll(s).catch(() => Buffer.alloc(0));
      s.write('hello');
      // The proxy ends the connection (the client, open to half-close, sees the end of the stream).
      assert.equal((await got).toString(), 'hello');
      s.destroy();
      await until('idle_timeout counted', () => proxy.stat('tcp.idle.idle_timeout') === idleBefore + 1);
    });

    test('upstream down: the downstream connection is closed and the cluster counts a connect failure', async () => {
      const before = proxy.stat('cluster.dead.upstream_cx_connect_fail');
      const s = await open(proxy.port('dead'));
      const got = readAll(s).catch(() => Buffer.alloc(0));
      s.write('anyone there?');
      assert.equal((await got).length, 0);
      s.destroy();
      assert.equal(proxy.stat('cluster.dead.upstream_cx_connect_fail'), before + 1);
    });

    test('byte stats: downstream rx/tx totals match what was sent and received', async () => {
      const names = [
        'tcp.counted.downstream_cx_rx_bytes_total',
        'tcp.counted.downstream_cx_tx_bytes_total',
        'cluster.fixed.upstream_cx_tx_bytes_total',
        'cluster.fixed.upstream_cx_rx_bytes_total',
        'tcp.counted.downstream_cx_total',
      ];
      const before = names.map((n) => proxy.stat(n));
      const sent = randomBytes(54_321);
      const got = await exchange(proxy.port('counted'), sent);
      assert.deepEqual(got, FIXED_REPLY);
      await until('the connection stats', () => proxy.stat(names[0]!) > before[0]!);
      const delta = names.map((n, i) => proxy.stat(n) - before[i]!);
      assert.deepEqual(delta, [sent.length, FIXED_REPLY.length, sent.length, FIXED_REPLY.length, 1]);
    });

    test('weighted_clusters: connections are spread over both clusters', async () => {
      const total = () =>
        proxy.stat('cluster.a.upstream_cx_total') + proxy.stat('cluster.b.upstream_cx_total');
      const before = total();
      const seen = new Map<string, number>();
      for (let i = 0; i < 60; i++) {
        const name = (await exchange(proxy.port('weighted'), '')).toString();
        seen.set(name, (seen.get(name) ?? 0) + 1);
      }
      assert.deepEqual([...seen.keys()].sort(), ['a', 'b']);
      assert.equal(total() - before, 60);
    });

    test('max_connect_attempts: 2 — a connection whose first host is down is tried on the next one', async () => {
      const failsBefore = proxy.stat('cluster.half_dead.upstream_cx_connect_fail');
      const totalBefore = proxy.stat('cluster.half_dead.upstream_cx_total');
      // Round robin over [dead, live]: of two connections, at least one tries the dead host first.
      for (let i = 0; i < 4; i++) {
        assert.equal((await exchange(proxy.port('retry'), `attempt ${i}`)).toString(), `attempt ${i}`);
      }
      assert.ok(proxy.stat('cluster.half_dead.upstream_cx_connect_fail') >= failsBefore + 1);
      assert.equal(proxy.stat('cluster.half_dead.upstream_cx_total') - totalBefore, 4);
    });

    test('a client that keeps stopping to read: the stream resumes after every stall and arrives intact', async () => {
      const s = await open(proxy.port('stream'));
      try {
        let received = 0;
        let mismatch: number | undefined;
        let stalls = 0;
        let nextStall = 2 * 1024 * 1024;
        const done = new Promise<void>((resolve, reject) => {
          s.on('data', (c: Buffer) => {
            const expected = patternChunk(received, c.length);
            if (mismatch === undefined && !expected.equals(c)) mismatch = received;
            received += c.length;
            if (received >= nextStall) {
              // Long enough for the proxy's write buffer to fill and its upstream reads to stop.
              nextStall += 2 * 1024 * 1024;
              stalls++;
              s.pause();
              setTimeout(() => s.resume(), 60);
            }
          });
          s.on('end', () => resolve());
          s.on('error', reject);
        });
        await Promise.race([
          done,
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error(`stalled after ${received} bytes (${stalls} pauses)`)), 20_000),
          ),
        ]);
        assert.equal(received, STREAM_BYTES);
        assert.equal(mismatch, undefined, `bytes differ from offset ${mismatch}`);
        assert.ok(stalls >= 5, `only ${stalls} stalls`);
      } finally {
        s.destroy();
      }
    });

    test('a server that speaks first: its greeting reaches a client that has sent nothing', async () => {
      const s = await open(proxy.port('banner'));
      const greeting = await new Promise<string>((resolve) =>
        s.once('data', (c: Buffer) => resolve(c.toString())),
      );
      assert.equal(greeting, BANNER);
      const rest = readAll(s);
      s.end('and then the client');
      assert.equal((await rest).toString(), 'and then the client');
      s.destroy();
    });

    test('bytes written at once on connect, before the upstream is connected, arrive first and in order', async () => {
      const s = connect({ port: proxy.port('echo'), host: '127.0.0.1', allowHalfOpen: true });
      const got = readAll(s);
      const parts = Array.from({ length: 20 }, (_, i) => `part ${i};`);
      for (const p of parts) s.write(p);
      s.end();
      assert.equal((await got).toString(), parts.join(''));
      s.destroy();
    });

    test('traffic keeps a connection open past idle_timeout; once quiet, it closes', async () => {
      const idleBefore = proxy.stat('tcp.idle.idle_timeout');
      const s = await open(proxy.port('idle'));
      const got = readAll(s).catch(() => Buffer.alloc(0));
      // 0.2 s apart for 1.2 s: never 0.5 s quiet.
      for (let i = 0; i < 6; i++) {
        s.write(`${i}`);
        await sleep(200);
      }
      assert.equal(s.readableEnded, false, 'closed while active');
      assert.equal((await got).toString(), '012345');
      await until('idle_timeout counted', () => proxy.stat('tcp.idle.idle_timeout') === idleBefore + 1);
      s.destroy();
    });

    test('an upstream that resets the connection: the downstream connection is ended', async () => {
      const s = await open(proxy.port('reset'));
      // The proxy closes its side (the client, open to half-close, sees the end of the stream, or a reset).
      const ended = new Promise<void>((resolve) => {
        s.once('end', () => resolve());
        s.once('error', () => resolve());
      });
      s.write('this gets a reset');
      await ended;
      s.destroy();
    });
  });
}

test('closing the proxy ends connections the kernel relay is moving bytes for, and the relay lets go of them', async () => {
  const echo = await server((s) => s.pipe(s));
  const own = await startProxy(bootstrap([tcpListener('own', 'own')], [staticCluster('own', [echo])]));
  const s = await open(own.port('own'));
  const ended = new Promise<void>((resolve) => {
    s.once('end', () => resolve());
    s.once('error', () => resolve());
  });
  s.write('ping');
  await new Promise((r) => s.once('data', r));
  assert.equal(runningRelays(), kernelRelayAvailable() ? 1 : 0);
  await own.close();
  await ended;
  assert.equal(runningRelays(), 0);
  s.destroy();
});
