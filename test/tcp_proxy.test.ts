// Integration: tcp_proxy through a real proxy — echo with a hash check, half-close, idle timeout, connect failures, byte stats, weighted clusters, connect attempts.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
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
  const named = (name: string) =>
    server((s) => {
      s.resume();
      s.end(name);
    });
  const a = await named('a');
  const b = await named('b');
  const dead = await closedPort();
  proxy = await startProxy(
    bootstrap(
      [
        tcpListener('echo', 'echo'),
        tcpListener('halfclose', 'after_end'),
        tcpListener('idle', 'echo', { idle_timeout: '0.5s' }),
        tcpListener('dead', 'dead'),
        tcpListener('counted', 'fixed'),
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
      ],
      [
        staticCluster('echo', [echo]),
        staticCluster('after_end', [afterEnd]),
        deadCluster('dead', dead),
        staticCluster('fixed', [fixed]),
        staticCluster('a', [a]),
        staticCluster('b', [b]),
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
  const s = await open(proxy.port('idle'));
  const got = readAll(s).catch(() => Buffer.alloc(0));
  s.write('hello');
  // The proxy ends the connection (the client, open to half-close, sees the end of the stream).
  assert.equal((await got).toString(), 'hello');
  s.destroy();
  assert.equal(proxy.stat('tcp.idle.idle_timeout'), 1);
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
  const sent = randomBytes(54_321);
  const got = await exchange(proxy.port('counted'), sent);
  assert.deepEqual(got, FIXED_REPLY);
  await until('the connection stats', () => proxy.stat('tcp.counted.downstream_cx_rx_bytes_total') > 0);
  assert.equal(proxy.stat('tcp.counted.downstream_cx_rx_bytes_total'), sent.length);
  assert.equal(proxy.stat('tcp.counted.downstream_cx_tx_bytes_total'), FIXED_REPLY.length);
  assert.equal(proxy.stat('cluster.fixed.upstream_cx_tx_bytes_total'), sent.length);
  assert.equal(proxy.stat('cluster.fixed.upstream_cx_rx_bytes_total'), FIXED_REPLY.length);
  assert.equal(proxy.stat('tcp.counted.downstream_cx_total'), 1);
});

test('weighted_clusters: connections are spread over both clusters', async () => {
  const seen = new Map<string, number>();
  for (let i = 0; i < 60; i++) {
    const name = (await exchange(proxy.port('weighted'), '')).toString();
    seen.set(name, (seen.get(name) ?? 0) + 1);
  }
  assert.deepEqual([...seen.keys()].sort(), ['a', 'b']);
  assert.equal(proxy.stat('cluster.a.upstream_cx_total') + proxy.stat('cluster.b.upstream_cx_total'), 60);
});

test('max_connect_attempts: 2 — a connection whose first host is down is tried on the next one', async () => {
  // Round robin over [dead, live]: of two connections, at least one tries the dead host first.
  for (let i = 0; i < 4; i++) {
    assert.equal((await exchange(proxy.port('retry'), `attempt ${i}`)).toString(), `attempt ${i}`);
  }
  assert.ok(proxy.stat('cluster.half_dead.upstream_cx_connect_fail') >= 1);
  assert.equal(proxy.stat('cluster.half_dead.upstream_cx_total'), 4);
});
