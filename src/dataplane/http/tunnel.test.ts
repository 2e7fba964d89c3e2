// Unit tests of the tunnel with real socket pairs: bytes both ways, half-close passed on, resets, idle timeout.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { Tunnel, type TunnelEnd } from './tunnel.js';

const servers: Server[] = [];
const sockets: Socket[] = [];
after(() => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
});

/** A connected pair: `client` (the far end, a test peer) and `proxySide` (what the tunnel gets), both half-open. */
async function pair(): Promise<{ client: Socket; proxySide: Socket }> {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect({
    port: (server.address() as { port: number }).port,
    host: '127.0.0.1',
    allowHalfOpen: true,
  });
  client.on('error', () => undefined);
  const proxySide = await accepted;
  sockets.push(client, proxySide);
  return { client, proxySide };
}

function readAll(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((r) => s.once('end', () => r(Buffer.concat(chunks))));
}

async function tunnel(idleMs = 0) {
  const down = await pair();
  const up = await pair();
  let resolveEnd!: (e: TunnelEnd) => void;
  const ended = new Promise<TunnelEnd>((r) => {
    resolveEnd = r;
  });
  const t = new Tunnel(down.proxySide, up.proxySide, idleMs, resolveEnd);
  return { t, client: down.client, server: up.client, ended };
}

test('bytes flow both ways, early bytes first; a FIN each way is passed on and the counts are exact', async () => {
  const { t, client, server, ended } = await tunnel();
  const big = randomBytes(3 * 1024 * 1024);
  const atServer = readAll(server);
  const atClient = readAll(client);
  t.sendEarly(Buffer.from('early-up '), Buffer.from('early-down '));
  t.start();
  client.end(big);
  // The client has half-closed; the server can still answer, then ends its side.
  assert.equal((await atServer).length, 'early-up '.length + big.length);
  server.end('reply');
  assert.equal((await atClient).toString(), 'early-down reply');
  const end = await ended;
  assert.deepEqual(end, { downstreamBytes: 9 + big.length, upstreamBytes: 16, reason: undefined });
});

test('a reset on one side closes the other and says which', async () => {
  const { t, client, server, ended } = await tunnel();
  t.start();
  const serverEnded = new Promise((r) => server.resume().once('end', r));
  client.resetAndDestroy();
  await serverEnded;
  assert.equal((await ended).reason, 'downstream_reset');
});

test('idle for the timeout: both sides are closed', async () => {
  const { t, client, server, ended } = await tunnel(50);
  t.start();
  const ends = [client, server].map((s) => new Promise((r) => s.resume().once('end', r)));
  client.write('ping');
  await Promise.all(ends);
  assert.equal((await ended).reason, 'idle_timeout');
});
