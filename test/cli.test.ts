// Integration: `remora validate` and `remora proxy` on broken and valid YAML/JSON bootstraps, run as real processes.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { bootstrap, httpListener, type Json, routes, staticCluster } from './support/proxy.js';

const BIN = fileURLToPath(new URL('../../bin/remora', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../examples/bootstrap.yaml', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function remora(args: readonly string[], timeoutMs = 20_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: unknown; killed?: boolean }) | null;
      if (e?.killed) return reject(new Error(`remora ${args.join(' ')} did not finish: ${stderr}`));
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
    });
  });
}

let dir: string;

/** A bootstrap with five mistakes, each in a different place. */
function brokenConfig(): Json {
  const good = staticCluster('good', [1]);
  const bad = staticCluster('bad', [2], { lb_policy: 'FOO', connect_timeout: '250ms' });
  const listener = httpListener(
    'web',
    routes([{ match: { prefix: '/' }, route: { cluster: 'nowhere' } }]),
  ) as { filter_chains: { filters: { typed_config: Json }[] }[] } & Json;
  delete listener.filter_chains[0]!.filters[0]!.typed_config.stat_prefix;
  listener.bogus_field = true;
  return bootstrap([listener], [good, bad]);
}

const EXPECTED_ERRORS = [
  'static_resources.clusters[1].lb_policy: unsupported value "FOO"',
  'static_resources.listeners[0].bogus_field: unknown field "bogus_field"',
  'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefix: missing required field',
  'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster: unknown cluster "nowhere"',
  'static_resources.clusters[1].connect_timeout: invalid duration "250ms"',
];

function assertEveryError(stderr: string): void {
  const lines = stderr.split('\n');
  for (const expected of EXPECTED_ERRORS) {
    assert.ok(
      lines.some((l) => l.startsWith(expected)),
      `expected a line starting with:\n  ${expected}\ngot:\n${stderr}`,
    );
  }
}

function write(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'remora-cli-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('validate: a YAML bootstrap with five mistakes lists each with its field path and exits 1', async () => {
  const file = write('bad.yaml', stringify(brokenConfig()));
  const r = await remora(['validate', '-c', file]);
  assert.equal(r.code, 1, r.stderr);
  assertEveryError(r.stderr);
  assert.match(r.stderr, /bad\.yaml: 5 errors\n$/);
  assert.equal(r.stdout, '');
});

test('validate: the same mistakes in JSON give the same errors', async () => {
  const file = write('bad.json', JSON.stringify(brokenConfig(), null, 2));
  const r = await remora(['validate', '-c', file]);
  assert.equal(r.code, 1, r.stderr);
  assertEveryError(r.stderr);
  assert.match(r.stderr, /bad\.json: 5 errors\n$/);
});

test('validate: a valid bootstrap exits 0 with a one-line summary (YAML and JSON)', async () => {
  const config = bootstrap(
    [
      httpListener(
        'web',
        routes([
          { match: { prefix: '/a' }, route: { cluster: 'a' } },
          { match: { prefix: '/' }, route: { cluster: 'b' } },
        ]),
      ),
    ],
    [staticCluster('a', [1]), staticCluster('b', [2], { lb_policy: 'LEAST_REQUEST' })],
  );
  for (const [name, content] of [
    ['good.yaml', stringify(config)],
    ['good.json', JSON.stringify(config)],
  ] as const) {
    const file = write(name, content);
    const r = await remora(['validate', '-c', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, `${file}: valid: 1 listener, 2 clusters, 2 routes (node "test")\n`);
  }
});

test('validate: the shipped example bootstrap is valid', async () => {
  assert.ok(existsSync(EXAMPLE), `${EXAMPLE} is missing`);
  const r = await remora(['validate', '-c', EXAMPLE]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^.*bootstrap\.yaml: valid: 1 listener, 1 cluster, 1 route \(node ".+"\)\n$/);
});

test('validate: a YAML syntax error is reported with its line and column', async () => {
  const file = write('syntax.yaml', 'node:\n  id: x\nstatic_resources:\n  clusters: [\n    - name: a\n');
  const r = await remora(['validate', '-c', file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^\(file\): YAML syntax error in .*syntax\.yaml at line \d+, column \d+: \S/m);
});

test('validate: a JSON syntax error is reported with its line and column', async () => {
  const file = write('syntax.json', '{\n  "node": {"id": "x"},,\n  "static_resources": {}\n}\n');
  const r = await remora(['validate', '-c', file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^\(file\): YAML syntax error in .*syntax\.json at line 2, column \d+: \S/m);
});

test('validate: a missing file is an error, not a crash', async () => {
  const r = await remora(['validate', '-c', join(dir, 'does-not-exist.yaml')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^\(file\): cannot read .*does-not-exist\.yaml: .*ENOENT/m);
});

test('proxy: refuses to start on a broken bootstrap, prints the same errors and exits 1', async () => {
  const file = write('refuse.yaml', stringify(brokenConfig()));
  const r = await remora(['proxy', '-c', file, '--drain-time-s', '1']);
  assert.equal(r.code, 1, r.stderr);
  assertEveryError(r.stderr);
  assert.match(r.stderr, /remora: refusing to start: .*refuse\.yaml has 5 error\(s\)/);
});

test('proxy: refuses to start on a YAML syntax error', async () => {
  const file = write('refuse-syntax.yaml', 'static_resources: {listeners: [}\n');
  const r = await remora(['proxy', '-c', file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /YAML syntax error in .*refuse-syntax\.yaml at line 1, column \d+/);
  assert.match(r.stderr, /refusing to start/);
});

test('proxy: a bad --drain-time-s is refused by the flag parser', async () => {
  const r = await remora(['proxy', '-c', EXAMPLE, '--drain-time-s', 'soon']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /expected a number of seconds >= 0/);
});

test('proxy: a --release-memory-idle-s under a second (other than 0) is refused by the flag parser', async () => {
  const r = await remora(['proxy', '-c', EXAMPLE, '--release-memory-idle-s', '0.01']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--release-memory-idle-s.*expected 0 \(off\) or seconds >= 1/);
});
