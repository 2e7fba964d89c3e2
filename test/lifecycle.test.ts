// Integration: the proxy as a child process — SIGTERM under load loses nothing, /quitquitquit, drain time, drain and health admin.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type ChildProxy as Child, sleep, spawnProxy as spawnChild, until } from './support/child.js';
import { curl } from './support/clients.js';
import { bootstrap, httpListener, routes, staticCluster } from './support/proxy.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let dir: string;
let fast: Upstream;
let slow: Upstream;
let hang: Upstream;
const held: (() => void)[] = [];
const children: Child[] = [];

/** Runs `remora proxy --drain-time-s N` with routes to the fast, slow (20 ms) and never-answering upstreams. */
async function spawnProxy(drainTimeS: number): Promise<Child> {
  const config = bootstrap(
    [
      httpListener(
        'main',
        routes([
          { match: { prefix: '/slow' }, route: { cluster: 'slow' } },
          { match: { prefix: '/hang' }, route: { cluster: 'hang', timeout: '0s' } },
          { match: { prefix: '/' }, route: { cluster: 'fast' } },
        ]),
      ),
    ],
    [
      staticCluster('fast', [fast.port]),
      staticCluster('slow', [slow.port]),
      staticCluster('hang', [hang.port]),
    ],
  );
  const child = await spawnChild(dir, config, ['--drain-time-s', String(drainTimeS)]);
  children.push(child);
  return child;
}

async function adminStatus(child: Child, path: string, method = 'GET'): Promise<number> {
  try {
    const r = await fetch(`${child.adminUrl}${path}`, { method });
    await r.text();
    return r.status;
  } catch {
    return 0;
  }
}

async function admin(child: Child, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const r = await fetch(`${child.adminUrl}${path}`, { method });
  return { status: r.status, body: await r.text() };
}

/** Whether a new TCP connection to the port is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remora-lifecycle-'));
  fast = await startUpstream('fast');
  slow = await startUpstream('slow', (_req, res) => {
    setTimeout(() => res.end('slow ok'), 20);
  });
  hang = await startUpstream('hang', (_req, res) => {
    held.push(() => res.end('too late'));
  });
});

after(async () => {
  await Promise.all(children.map((c) => c.kill()));
  for (const h of held) h();
  await fast.close();
  await slow.close();
  await hang.close();
  rmSync(dir, { recursive: true, force: true });
});

interface LoadResult {
  ok: number;
  non2xx: number[];
  closeResponses: number;
  refusedConnects: number;
  lost: string[];
  /** Date.now() of the last 2xx response. */
  lastOkAt: number;
}

/**
 * `clients` keep-alive clients, each sending requests one after another until `stopped()`; a response is
 * read to its end before the next request. A refused connect ends a client (the listener is closed).
 */
async function runLoad(port: number, clients: number, result: LoadResult, stopped: () => boolean) {
  const one = (agent: Agent): Promise<'again' | 'refused'> =>
    new Promise((resolve) => {
      let gotHead = false;
      const req = request({ host: '127.0.0.1', port, path: '/slow', agent }, (res) => {
        gotHead = true;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => {
          if (!res.complete || body !== 'slow ok')
            result.lost.push(`incomplete response: ${JSON.stringify(body)}`);
          else if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) {
            result.ok++;
            result.lastOkAt = Date.now();
          } else result.non2xx.push(res.statusCode ?? 0);
          if (res.headers.connection === 'close') result.closeResponses++;
          resolve('again');
        });
        res.on('error', (err) => {
          result.lost.push(`response reset: ${err.message}`);
          resolve('again');
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED' && !gotHead) {
          result.refusedConnects++;
          return resolve('refused');
        }
        if (!gotHead)
          result.lost.push(`no response (${err.code ?? err.message}, reused socket: ${req.reusedSocket})`);
        resolve('again');
      });
      req.end();
    });
  const loop = async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (!stopped()) if ((await one(agent)) === 'refused') return;
    } finally {
      agent.destroy();
    }
  };
  await Promise.all(Array.from({ length: clients }, loop));
}

test('SIGTERM during steady load: every answered request is a 2xx, none is lost, and the process exits 0', async () => {
  const child = await spawnProxy(5);
  const result: LoadResult = {
    ok: 0,
    non2xx: [],
    closeResponses: 0,
    refusedConnects: 0,
    lost: [],
    lastOkAt: 0,
  };
  let stop = false;
  const load = runLoad(child.port, 20, result, () => stop);
  await until('load to be running', () => result.ok >= 200 || result.lost.length > 0);
  const okBeforeSigterm = result.ok;
  child.process.kill('SIGTERM');
  const code = await child.exited;
  const exitedAt = Date.now();
  stop = true;
  await load;
  assert.deepEqual(result.lost, [], `lost requests:\n${result.lost.join('\n')}\n${child.output()}`);
  assert.deepEqual(result.non2xx, []);
  assert.equal(code, 0, child.output());
  assert.ok(result.ok > okBeforeSigterm, 'requests in flight at SIGTERM were answered');
  assert.ok(result.lastOkAt <= exitedAt, 'the process exited only after the last response was delivered');
  // Requests in flight at SIGTERM were answered with connection: close; the clients' next connects were refused.
  assert.ok(result.closeResponses > 0, 'some responses carried connection: close while draining');
  assert.ok(result.refusedConnects > 0, 'new connections were refused once draining');
  assert.ok(await refused(child.port));
});

test('a keep-alive connection idle at SIGTERM still gets its next request answered, with connection: close', async () => {
  const child = await spawnProxy(5);
  const s = connect(child.port, '127.0.0.1');
  let received = '';
  s.setEncoding('latin1');
  s.on('data', (d: string) => {
    received += d;
  });
  const ended = new Promise<void>((r) => s.once('end', () => r()));
  const ask = (path: string) => s.write(`GET ${path} HTTP/1.1\r\nhost: idle.test\r\n\r\n`);
  ask('/first');
  await until('the first response', () => /\r\n\r\n\{.*\}$/s.test(received));
  assert.match(received, /^HTTP\/1\.1 200 /);
  assert.doesNotMatch(received, /connection: close/i);
  received = '';
  child.process.kill('SIGTERM');
  await until('the listener to close', () => refused(child.port));
  // The connection was idle when draining began; a request sent on it now is not lost.
  ask('/second');
  await ended;
  assert.match(received, /^HTTP\/1\.1 200 /);
  assert.match(received, /\r\nconnection: close\r\n/i);
  assert.match(received, /"url":"\/second"/);
  s.destroy();
  assert.equal(await child.exited, 0, child.output());
});

test('POST /quitquitquit answers OK, drains and exits 0', async () => {
  const child = await spawnProxy(5);
  assert.equal((await curl([`http://127.0.0.1:${child.port}/hello`])).status, 200);
  assert.equal(await adminStatus(child, '/quitquitquit', 'GET'), 405, 'GET /quitquitquit must not quit');
  const r = await admin(child, '/quitquitquit', 'POST');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'OK\n');
  assert.equal(await child.exited, 0, child.output());
  assert.ok(await refused(child.port));
});

test('--drain-time-s bounds the wait for an upstream that never answers; /ready is 503 DRAINING meanwhile', async () => {
  const child = await spawnProxy(2);
  const heldBefore = held.length;
  const stuck = curl([`http://127.0.0.1:${child.port}/hang`]).then(
    (r) => `status ${r.status}`,
    (err: Error) => `failed: ${err.message}`,
  );
  await until('the upstream to hold the request', () => held.length > heldBefore);
  const sent = Date.now();
  child.process.kill('SIGTERM');
  await until('/ready to answer 503', async () => (await adminStatus(child, '/ready')) === 503, 1500);
  const ready = await admin(child, '/ready').catch(() => undefined);
  // The admin server closes with the rest once the drain time is over; if it is still up, it says DRAINING.
  if (ready) assert.deepEqual(ready, { status: 503, body: 'DRAINING\n' });
  const code = await Promise.race([child.exited, sleep(8000).then(() => 'still running' as const)]);
  assert.equal(code, 0, child.output());
  const waited = Date.now() - sent;
  assert.ok(
    waited >= 1900,
    `exited after ${waited} ms, before the 2 s drain time although a request was in flight`,
  );
  // The request that outlived the drain time was cut, not answered by the proxy with a made-up status.
  assert.match(await stuck, /^failed: /);
});

test('POST /drain_listeners stops accepting new connections while the process stays up', async () => {
  const child = await spawnProxy(5);
  assert.equal((await curl([`http://127.0.0.1:${child.port}/a`])).status, 200);
  assert.equal(await adminStatus(child, '/drain_listeners', 'GET'), 405);
  assert.equal((await admin(child, '/drain_listeners', 'POST')).status, 200);
  await until('the listener to refuse connections', () => refused(child.port));
  assert.equal(child.process.exitCode, null, 'the process is still running');
  assert.deepEqual(await admin(child, '/ready'), { status: 503, body: 'DRAINING\n' });
  const info = JSON.parse((await admin(child, '/server_info')).body) as { state: string };
  assert.equal(info.state, 'DRAINING');
  child.process.kill('SIGTERM');
  assert.equal(await child.exited, 0, child.output());
});

test('/healthcheck/fail makes /ready 503 and /healthcheck/ok restores it; traffic flows throughout', async () => {
  const child = await spawnProxy(5);
  assert.equal(await adminStatus(child, '/ready'), 200);
  assert.equal(await adminStatus(child, '/healthcheck/fail', 'GET'), 405);
  assert.equal(await adminStatus(child, '/ready'), 200, 'a GET does not fail health checks');
  assert.equal((await admin(child, '/healthcheck/fail', 'POST')).status, 200);
  const failing = await admin(child, '/ready');
  assert.equal(failing.status, 503);
  assert.match(failing.body, /health check failed/);
  assert.equal((await curl([`http://127.0.0.1:${child.port}/x`])).status, 200);
  assert.equal((await admin(child, '/healthcheck/ok', 'POST')).status, 200);
  assert.deepEqual(await admin(child, '/ready'), { status: 200, body: 'LIVE\n' });
  child.process.kill('SIGTERM');
  assert.equal(await child.exited, 0, child.output());
});
