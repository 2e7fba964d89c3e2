// Integration: what an idle sidecar holds. Node built-ins a plaintext HTTP/1.1 sidecar does not use stay unloaded
// (each costs memory: node:http2 1.6 MiB, node:http ~1 MiB, node:tls with node:crypto ~1.3 MiB, node:perf_hooks
// ~0.4 MiB, node:child_process with cluster, dgram and dns ~0.9 MiB), and load when a request needs them.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type ChildProxy, spawnProxy, until } from './support/child.js';
import { curl } from './support/clients.js';
import { bootstrap, httpListener, routes, staticCluster, tcpListener } from './support/proxy.js';
import { closedPort, startTcpServer, startUpstream, type Upstream } from './support/upstream.js';

let dir: string;
let web: Upstream;
let echo: Awaited<ReturnType<typeof startTcpServer>>;
let tcpPort: number;
let proxy: ChildProxy;
let dump: string;

/** The built-in modules the proxy has loaded (process.moduleLoadList), written by a preload on SIGUSR2. */
async function loadedModules(): Promise<Set<string>> {
  if (existsSync(dump)) unlinkSync(dump);
  proxy.process.kill('SIGUSR2');
  await until('the module list', () => existsSync(dump));
  await until('the whole list', () => readFileSync(dump, 'utf8').endsWith(']'));
  const list = JSON.parse(readFileSync(dump, 'utf8')) as string[];
  return new Set(
    list.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length)),
  );
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remora-footprint-'));
  dump = join(dir, 'modules.json');
  const preload = join(dir, 'preload.cjs');
  writeFileSync(
    preload,
    `process.on('SIGUSR2', () => require('node:fs').writeFileSync(${JSON.stringify(dump)}, JSON.stringify(process.moduleLoadList)));\n`,
  );
  web = await startUpstream('web', (req, res) => res.end(String(req.headers['x-request-id'])));
  echo = await startTcpServer((s) => s.pipe(s));
  tcpPort = await closedPort();
  const fileLog = {
    name: 'envoy.access_loggers.file',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
      path: join(dir, 'tcp.log'),
    },
  };
  proxy = await spawnProxy(
    dir,
    bootstrap(
      [
        httpListener('main', routes([{ match: { prefix: '/' }, route: { cluster: 'web' } }])),
        {
          ...tcpListener('tcp', 'echo', { access_log: [fileLog] }),
          address: { socket_address: { address: '127.0.0.1', port_value: tcpPort } },
        },
      ],
      [staticCluster('web', [web.port]), staticCluster('echo', [echo.port])],
    ),
    [],
    { asProgram: true, env: { ...process.env, NODE_OPTIONS: `--require ${preload}` } },
  );
});

after(async () => {
  await proxy?.kill();
  await web?.close();
  await echo?.close();
  rmSync(dir, { recursive: true, force: true });
});

const UNUSED = [
  'http',
  'http2',
  'tls',
  'crypto',
  'internal/crypto/webcrypto',
  'dns/promises',
  'perf_hooks',
  'assert',
];

test('an idle plaintext sidecar has not loaded the built-ins it does not use (node:http, tls, crypto, cluster...)', async () => {
  const loaded = await loadedModules();
  assert.ok(loaded.has('net'), 'the list is the proxy process own');
  for (const m of UNUSED) {
    assert.ok(!loaded.has(m), `${m} is loaded`);
  }
  // The admin API (served by Remora's own codec) works without node:http.
  assert.equal((await fetch(`${proxy.adminUrl}/ready`)).status, 200);
  assert.ok(!(await loadedModules()).has('http'));
});

test('requests get version 4 UUIDs for x-request-id from the kernel CSPRNG, still without node:crypto', async () => {
  const ids = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const r = await curl([`http://127.0.0.1:${proxy.port}/`]);
    assert.equal(r.status, 200);
    assert.match(r.body, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    ids.add(r.body);
  }
  assert.equal(ids.size, 3);
  const loaded = await loadedModules();
  for (const m of UNUSED) assert.ok(!loaded.has(m), `${m} is loaded after requests`);
});

test('a TCP connection through the kernel relay, logged to a file, loads none of the unused built-ins', async () => {
  const s = connect({ port: tcpPort, host: '127.0.0.1' });
  s.write('ping');
  await new Promise((r) => s.once('data', r));
  s.destroy();
  await until('the access log line', () => existsSync(join(dir, 'tcp.log')));
  const loaded = await loadedModules();
  for (const m of UNUSED) assert.ok(!loaded.has(m), `${m} is loaded`);
});
