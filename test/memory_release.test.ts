// Integration: `remora proxy` gives memory back to the system when it goes LIVE and when it is idle after traffic
// grew it (the native addon's release: full collections that shrink V8's heap, then malloc_trim), and not with
// --release-memory-idle-s 0.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type ChildProxy, spawnProxy, until } from './support/child.js';
import { bootstrap, httpListener, routes, staticCluster } from './support/proxy.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let dir: string;
let web: Upstream;
const proxies: ChildProxy[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remora-memory-'));
  const body = Buffer.alloc(32 * 1024, 'x');
  web = await startUpstream('web', (_req, res) => res.end(body));
});

after(async () => {
  for (const p of proxies) await p.kill();
  await web?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function start(idleS: number): Promise<ChildProxy> {
  const config = bootstrap(
    [httpListener('main', routes([{ match: { prefix: '/' }, route: { cluster: 'web' } }]))],
    [staticCluster('web', [web.port])],
  );
  const p = await spawnProxy(
    dir,
    config,
    ['--log-level', 'debug', '--release-memory-idle-s', String(idleS)],
    {
      asProgram: true,
    },
  );
  proxies.push(p);
  return p;
}

async function stat(p: ChildProxy, name: string): Promise<number> {
  const text = await (await fetch(`${p.adminUrl}/stats?filter=^${name}$`)).text();
  const m = new RegExp(`^${name.replace(/\./g, '\\.')}: (\\d+)$`, 'm').exec(text);
  assert.ok(m, `${name} in /stats:\n${text}`);
  return Number(m[1]);
}

/** The debug lines `memory released {...}` the proxy logged. */
function releases(p: ChildProxy): { rss_before_mib: number; rss_after_mib: number; ms: number }[] {
  return [...p.output().matchAll(/memory released (\{.*\})/g)].map((m) => JSON.parse(m[1]!));
}

/** Keeps 16 keep-alive connections busy for `ms`: the young generation and the pools grow. */
async function traffic(port: number, ms: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const end = Date.now() + ms;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (Date.now() < end) {
      await new Promise<void>((resolve, reject) => {
        request({ port, host: '127.0.0.1', path: '/', agent }, (res) => {
          res.on('data', () => {});
          res.on('end', resolve);
        })
          .on('error', reject)
          .end();
      });
      done++;
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  agent.destroy();
  return done;
}

test('a sidecar gives its start-up garbage back when it goes LIVE', async () => {
  const p = await start(5);
  assert.equal(await stat(p, 'server.memory_release_total'), 1);
  const [r] = releases(p);
  assert.ok(r, `a release was logged:\n${p.output()}`);
  assert.ok(r.rss_after_mib < r.rss_before_mib, `resident memory went down: ${JSON.stringify(r)}`);
});

test('after a burst of traffic, an idle sidecar gives back what the burst grew', async () => {
  const p = await start(1);
  const requests = await traffic(p.port, 2000);
  assert.ok(requests > 100, `${requests} requests`);
  await until('a release after the traffic', () => releases(p).length >= 2, 10_000);
  const r = releases(p)[1]!;
  assert.ok(r.rss_after_mib < r.rss_before_mib, `resident memory went down: ${JSON.stringify(r)}`);
  assert.ok((await stat(p, 'server.memory_release_total')) >= 2);
});

test('--release-memory-idle-s 0 leaves memory to V8 alone', async () => {
  const p = await start(0);
  await traffic(p.port, 500);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await stat(p, 'server.memory_release_total'), 0);
  assert.deepEqual(releases(p), []);
});
