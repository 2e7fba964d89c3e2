// Integration: access logs of real requests — Envoy's default text format, json_format with typed values, response flags, stdout, flush on close.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type ChildProxy, spawnProxy, until } from './support/child.js';
import { curl } from './support/clients.js';
import {
  bootstrap,
  deadCluster,
  httpListener,
  type Json,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
} from './support/proxy.js';
import { closedPort, startUpstream, type Upstream } from './support/upstream.js';

const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const STDOUT_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog';

let dir: string;
let proxy: RunningProxy;
let ok: Upstream;
let failing: Upstream;
let slow: Upstream;
const held: (() => void)[] = [];
const children: ChildProxy[] = [];
const extraProxies: RunningProxy[] = [];

const fileLog = (name: string, extra: Json = {}): Json => ({
  name: 'envoy.access_loggers.file',
  typed_config: { '@type': FILE_LOG, path: join(dir, name), ...extra },
});

function lines(name: string): string[] {
  const path = join(dir, name);
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean);
}

/** Polls a log file (writes are buffered and flushed on a timer) until a line satisfies `match`. */
async function waitLine(name: string, match: (line: string) => boolean): Promise<string> {
  let found: string | undefined;
  await until(`a matching line in ${name}`, () => {
    found = lines(name).find(match);
    return found !== undefined;
  });
  return found!;
}

function routeTable(): Json {
  return routes([
    { match: { prefix: '/ok' }, route: { cluster: 'ok' } },
    { match: { prefix: '/empty' }, route: { cluster: 'empty' } },
    { match: { prefix: '/dead' }, route: { cluster: 'dead' } },
    { match: { prefix: '/slow' }, route: { cluster: 'slow', timeout: '0.2s' } },
    {
      match: { prefix: '/retry' },
      route: { cluster: 'failing', retry_policy: { retry_on: '5xx', num_retries: 1 } },
    },
  ]);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remora-access-log-'));
  ok = await startUpstream('ok');
  failing = await startUpstream('failing', (_req, res) => {
    res.statusCode = 503;
    res.end('unavailable');
  });
  slow = await startUpstream('slow', (_req, res) => {
    held.push(() => res.end('late'));
  });
  const dead = await closedPort();
  proxy = await startProxy(
    bootstrap(
      [
        httpListener('main', routeTable(), {
          access_log: [
            fileLog('default.log'),
            fileLog('json.log', {
              json_format: {
                method: '%REQ(:METHOD)%',
                path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
                protocol: '%PROTOCOL%',
                status: '%RESPONSE_CODE%',
                flags: '%RESPONSE_FLAGS%',
                bytes_sent: '%BYTES_SENT%',
                duration: '%DURATION%',
                upstream_host: '%UPSTREAM_HOST%',
                cluster: '%UPSTREAM_CLUSTER%',
                attempts: '%UPSTREAM_REQUEST_ATTEMPT_COUNT%',
                status_text: 'code=%RESPONSE_CODE%',
                fixed: 'sidecar',
                nested: { ua: '%REQ(USER-AGENT)%' },
              },
            }),
            fileLog('flags.log', { format: '%RESPONSE_FLAGS% %REQ(:PATH)% %RESPONSE_CODE%\n' }),
          ],
        }),
      ],
      [
        staticCluster('ok', [ok.port]),
        { name: 'empty', type: 'STATIC', connect_timeout: '1s' },
        deadCluster('dead', dead),
        staticCluster('slow', [slow.port]),
        staticCluster('failing', [failing.port]),
      ],
    ),
  );
});

after(async () => {
  for (const h of held) h();
  for (const c of children) await c.kill();
  for (const p of extraProxies) await p.close();
  await proxy.close();
  await ok.close();
  await failing.close();
  await slow.close();
  rmSync(dir, { recursive: true, force: true });
});

test('file log in the default format: time, request line, status, flags, bytes, user agent, authority, upstream host', async () => {
  const r = await curl([`${proxy.url()}/ok/default?x=1`, '-A', 'remora-test/1.0']);
  assert.equal(r.status, 200);
  const line = await waitLine('default.log', (l) => l.includes('/ok/default'));
  const m =
    /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] "GET \/ok\/default\?x=1 HTTP\/1\.1" 200 - 0 (\d+) (\d+) (\d+) "-" "remora-test\/1\.0" "[^"]*" "127\.0\.0\.1:(\d+)" "127\.0\.0\.1:(\d+)"$/.exec(
      line!,
    );
  assert.ok(m, `unexpected default-format line: ${line}`);
  assert.ok(Math.abs(Date.parse(m[1]!) - Date.now()) < 60_000, 'start time is now');
  assert.equal(Number(m[2]), Buffer.byteLength(r.body), 'bytes sent is the response body');
  assert.equal(Number(m[5]), proxy.port());
  assert.equal(Number(m[6]), ok.port);
});

test('json_format: one JSON object per line with typed values', async () => {
  const r = await curl([`${proxy.url()}/ok/json`, '-A', 'json-agent']);
  assert.equal(r.status, 200);
  const entry = JSON.parse(await waitLine('json.log', (l) => l.includes('/ok/json'))) as Record<
    string,
    unknown
  >;
  assert.equal(entry.method, 'GET');
  assert.equal(entry.path, '/ok/json');
  assert.equal(entry.protocol, 'HTTP/1.1');
  assert.equal(entry.status, 200, 'a lone numeric operator is a JSON number');
  assert.equal(entry.flags, null, 'no flags is a JSON null');
  assert.equal(entry.bytes_sent, Buffer.byteLength(r.body));
  assert.equal(typeof entry.duration, 'number');
  assert.equal(entry.upstream_host, `127.0.0.1:${ok.port}`);
  assert.equal(entry.cluster, 'ok');
  assert.equal(entry.attempts, 1);
  assert.equal(entry.status_text, 'code=200', 'an operator inside text stays a string');
  assert.equal(entry.fixed, 'sidecar');
  assert.deepEqual(entry.nested, { ua: 'json-agent' });
});

test('%RESPONSE_FLAGS%: NR, UH, UF, UT and URX, each on its request', async () => {
  const expected: [string, number, string][] = [
    ['/nowhere', 404, 'NR'],
    ['/empty', 503, 'UH'],
    ['/dead', 503, 'UF'],
    ['/slow', 504, 'UT'],
    ['/retry', 503, 'URX'],
    ['/ok/fine', 200, '-'],
  ];
  for (const [path, status] of expected)
    assert.equal((await curl([`${proxy.url()}${path}`])).status, status, path);
  for (const [path, status, flag] of expected) {
    const line = await waitLine('flags.log', (l) => l.split(' ')[1] === path);
    assert.equal(line, `${flag} ${path} ${status}`);
  }
  // The same flags reach the JSON log as strings.
  await waitLine('json.log', (l) => l.includes('"/ok/fine"'));
  const json = lines('json.log').map((l) => JSON.parse(l) as { path: string; flags: unknown });
  assert.equal(json.find((e) => e.path === '/dead')?.flags, 'UF');
  assert.equal(json.find((e) => e.path === '/nowhere')?.flags, 'NR');
});

test('closing the proxy flushes buffered lines to the file', async () => {
  const p = await startProxy(
    bootstrap(
      [
        httpListener('flush', routeTable(), {
          access_log: [fileLog('flush.log', { format: 'line %REQ(:PATH)%\n' })],
        }),
      ],
      [staticCluster('ok', [ok.port])].concat(
        ['empty', 'dead', 'slow', 'failing'].map((n) => staticCluster(n, [ok.port])),
      ),
    ),
  );
  extraProxies.push(p);
  for (let i = 0; i < 3; i++) assert.equal((await curl([`${p.url()}/ok/${i}`])).status, 200);
  await p.close();
  assert.deepEqual(lines('flush.log'), ['line /ok/0', 'line /ok/1', 'line /ok/2']);
});

test('the stdout logger of a remora process writes one line per request', async () => {
  const config = bootstrap(
    [
      httpListener('out', routes([{ match: { prefix: '/' }, route: { cluster: 'ok' } }]), {
        access_log: [
          {
            name: 'envoy.access_loggers.stdout',
            typed_config: {
              '@type': STDOUT_LOG,
              log_format: {
                text_format_source: { inline_string: 'STDOUT %REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE%\n' },
              },
            },
          },
        ],
      }),
    ],
    [staticCluster('ok', [ok.port])],
  );
  const child = await spawnProxy(dir, config, ['--drain-time-s', '1']);
  children.push(child);
  assert.equal((await curl([`http://127.0.0.1:${child.port}/stdout/1`])).status, 200);
  // Written while the process runs (on the flush timer at the latest) ...
  await until('the first line on stdout', () => child.stdout().includes('STDOUT GET /stdout/1 200\n'));
  // ... and a line still buffered at a graceful exit is not lost.
  assert.equal(
    (await curl([`http://127.0.0.1:${child.port}/stdout/2`, '-X', 'POST', '-d', 'x'])).status,
    200,
  );
  child.process.kill('SIGTERM');
  assert.equal(await child.exited, 0, child.output());
  const logged = child
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('STDOUT '));
  assert.deepEqual(logged, ['STDOUT GET /stdout/1 200', 'STDOUT POST /stdout/2 200']);
});
