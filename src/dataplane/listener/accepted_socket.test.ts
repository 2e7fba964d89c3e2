// Tests accepted sockets read through onread: the adopted connection, claimed reads, and the way back to 'data'.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { readBuffer } from '../read_buffer.js';
import { adoptAccepted, claimReads, releaseReads } from './accepted_socket.js';

let server: Server;
const accepted: Socket[] = [];
const waiting: ((s: Socket) => void)[] = [];

before(async () => {
  server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => {
    const socket = adoptAccepted(s);
    const w = waiting.shift();
    if (w) w(socket);
    else accepted.push(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
});

after(() => server.close());

/** A client connection and the server's adopted socket for it. */
async function pair(): Promise<{ client: Socket; socket: Socket }> {
  const port = (server.address() as { port: number }).port;
  const got = new Promise<Socket>((r) => {
    const s = accepted.shift();
    if (s) r(s);
    else waiting.push(r);
  });
  const client = connect(port, '127.0.0.1');
  client.setNoDelay(true);
  await once(client, 'connect');
  return { client, socket: await got };
}

function nextChunk(socket: Socket): Promise<string> {
  return new Promise((r) => socket.once('data', (d: Buffer) => r(d.toString())));
}

function tick(ms = 20): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

test('an adopted socket is the same connection, read as a stream until claimed, and its server stops counting it', async () => {
  const { client, socket } = await pair();
  assert.notEqual(socket.remotePort, undefined);
  assert.equal(socket.remotePort, client.localPort);
  client.write('hello');
  const d = await nextChunk(socket);
  assert.equal(d, 'hello');
  socket.write('back');
  assert.equal(await nextChunk(client), 'back');
  const counted = await new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
  assert.equal(counted, 0, 'the server still counts the connection it no longer owns');
  client.end();
  await once(socket, 'end');
  socket.destroy();
  client.destroy();
});

test('claimed reads come first from what the stream held, then straight from the shared read buffer', async () => {
  const { client, socket } = await pair();
  client.write('early');
  await tick();
  socket.pause();
  const seen: string[] = [];
  let shared = 0;
  const claimed = claimReads(socket, (chunk) => {
    seen.push(chunk.toString());
    if (chunk.buffer === readBuffer().buffer) shared++;
  });
  assert.equal(claimed, true);
  assert.deepEqual(seen, ['early']);
  client.write('while paused');
  await tick();
  assert.deepEqual(seen, ['early'], 'a claimed socket left paused read anyway');
  socket.resume();
  await tick();
  assert.deepEqual(seen, ['early', 'while paused']);
  client.write('later');
  await tick();
  assert.deepEqual(seen, ['early', 'while paused', 'later']);
  assert.equal(shared, 2, 'claimed reads did not come from the shared read buffer');
  assert.equal(socket.bytesRead, 'earlywhile pausedlater'.length);
  client.end();
  await once(socket, 'end');
  socket.destroy();
});

test('released reads go back to data events, as copies', async () => {
  const { client, socket } = await pair();
  const seen: string[] = [];
  claimReads(socket, (chunk) => {
    seen.push(chunk.toString());
  });
  client.write('one');
  await tick();
  socket.pause();
  releaseReads(socket);
  client.write('two');
  const got = nextChunk(socket);
  socket.resume();
  const chunk = await new Promise<Buffer>((r) => socket.once('data', r));
  assert.equal(chunk.toString(), 'two');
  assert.notEqual(chunk.buffer, readBuffer().buffer);
  assert.equal(await got, 'two');
  assert.deepEqual(seen, ['one']);
  client.destroy();
  socket.destroy();
});

test('a socket adoptAccepted did not make is not claimed', async () => {
  const { client, socket } = await pair();
  const plain = connect((server.address() as { port: number }).port, '127.0.0.1');
  await once(plain, 'connect');
  assert.equal(
    claimReads(plain, () => undefined),
    false,
  );
  plain.destroy();
  client.destroy();
  socket.destroy();
  // The server side of `plain`.
  const s = accepted.shift() ?? (await new Promise<Socket>((r) => waiting.push(r)));
  s.destroy();
});

test('a consumer returning false pauses the socket until it is resumed', async () => {
  const { client, socket } = await pair();
  const seen: string[] = [];
  claimReads(socket, (chunk) => {
    seen.push(chunk.toString());
    return false;
  });
  client.write('first');
  await tick();
  client.write('second');
  await tick();
  assert.deepEqual(seen, ['first']);
  socket.resume();
  await tick();
  assert.deepEqual(seen, ['first', 'second']);
  client.destroy();
  socket.destroy();
});
