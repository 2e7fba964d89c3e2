import assert from 'node:assert/strict';
import { connect, createServer, type Server } from 'node:net';
import { test } from 'node:test';
import { listenOn } from './listen.js';

function listening(server: Server, host: string, port = 0, ipv6Only?: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    listenOn(server, { host, port, ...(ipv6Only !== undefined && { ipv6Only }) }, () => {
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : -1);
    });
  });
}

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const close = (s: Server): Promise<void> => new Promise((r) => s.close(() => r()));

test('an IPv4 address: listening, with the port chosen when 0, and accepting', async () => {
  const server = createServer((s) => s.end());
  const port = await listening(server, '127.0.0.1');
  assert.ok(port > 0);
  assert.equal(await connects('127.0.0.1', port), true);
  await close(server);
});

test('an IPv6 address with ipv6Only takes no IPv4 connections; without it, it does', async () => {
  const only = createServer((s) => s.end());
  const port = await listening(only, '::', 0, true);
  assert.equal(await connects('::1', port), true);
  assert.equal(await connects('127.0.0.1', port), false);
  await close(only);
  const dual = createServer((s) => s.end());
  const dualPort = await listening(dual, '::', 0, false);
  assert.equal(await connects('127.0.0.1', dualPort), true);
  await close(dual);
});

test('a port in use is an error event, as with listen()', async () => {
  const first = createServer();
  const port = await listening(first, '127.0.0.1');
  const second = createServer();
  await assert.rejects(listening(second, '127.0.0.1', port), { code: 'EADDRINUSE' });
  await close(first);
});

test('a host name goes through listen() and its lookup', async () => {
  const server = createServer((s) => s.end());
  const port = await listening(server, 'localhost');
  assert.ok(port > 0);
  await close(server);
});
