// Tests of loading bootstrap files (YAML and JSON), syntax errors, the shipped example and per-resource translators.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  loadBootstrapFile,
  summarize,
  translateCluster,
  translateListener,
  translateRouteConfiguration,
} from './bootstrap.js';
import { formatErrors } from './result.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'remora-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(name: string, text: string) {
  const file = join(dir, name);
  await writeFile(file, text);
  return { file, ...(await loadBootstrapFile(file)) };
}

const YAML_CONFIG = `
node: { id: sidecar~a }
static_resources:
  clusters:
    - name: backend
      connect_timeout: 1s
`;

test('loads YAML', async () => {
  const { raw, result } = await load('b.yaml', YAML_CONFIG);
  assert.deepEqual(raw, {
    node: { id: 'sidecar~a' },
    static_resources: { clusters: [{ name: 'backend', connect_timeout: '1s' }] },
  });
  assert.ok(result.ok);
  assert.equal(summarize(result.value), 'valid: 0 listeners, 1 cluster, 0 routes (node "sidecar~a")');
  assert.equal(result.value.clusters[0]!.connectTimeoutMs, 1000);
});

test('loads JSON', async () => {
  const { result } = await load(
    'b.json',
    JSON.stringify({ staticResources: { clusters: [{ name: 'x', lbPolicy: 'RANDOM' }] } }),
  );
  assert.ok(result.ok);
  assert.equal(result.value.clusters[0]!.lbPolicy, 'RANDOM');
});

test('a YAML syntax error names the file, line and column', async () => {
  const { file, raw, result } = await load('bad.yaml', 'node:\n  id: a\n  cluster: [b\nadmin: {}\n');
  assert.equal(raw, undefined);
  assert.ok(!result.ok);
  assert.equal(result.errors[0]!.path, '(file)');
  assert.match(
    result.errors[0]!.message,
    new RegExp(`^YAML syntax error in ${file} at line \\d+, column \\d+: .+`),
  );
  const dup = await load('dup.json', '{"node": {"id": "a"}, "node": {"id": "b"}}');
  assert.deepEqual(dup.result, {
    ok: false,
    errors: [
      {
        path: '(file)',
        message: `YAML syntax error in ${dup.file} at line 1, column 23: Map keys must be unique`,
      },
    ],
  });
});

test('unreadable, empty and hostile files are errors, not crashes', async () => {
  const missing = join(dir, 'missing.yaml');
  const r = await loadBootstrapFile(missing);
  assert.ok(!r.result.ok);
  assert.match(formatErrors(r.result.errors), /^\(file\): cannot read .*missing\.yaml: ENOENT/);
  const empty = await load('empty.yaml', '');
  assert.deepEqual(empty.result, {
    ok: false,
    errors: [{ path: '(file)', message: `${empty.file} is empty` }],
  });
  // "Billion laughs": each level repeats the previous one ten times.
  const names = ['a', 'b', 'c', 'd', 'e', 'f'];
  const laughs = [`a: &a [${Array(10).fill('x').join(', ')}]`];
  for (let i = 1; i < names.length; i++) {
    laughs.push(
      `${names[i]}: &${names[i]} [${Array(10)
        .fill(`*${names[i - 1]}`)
        .join(', ')}]`,
    );
  }
  const bomb = await load('bomb.yaml', laughs.join('\n'));
  assert.ok(!bomb.result.ok);
  assert.match(bomb.result.errors[0]!.message, /alias/i);
  const deep = await load('deep.yaml', `${'['.repeat(50_000)}${']'.repeat(50_000)}`);
  assert.equal(deep.result.ok, false);
  const multi = await load('multi.yaml', 'a: 1\n---\nb: 2\n');
  assert.ok(!multi.result.ok);
  assert.match(multi.result.errors[0]!.message, /more than one YAML document/);
});

test('examples/bootstrap.yaml is valid', async () => {
  const example = fileURLToPath(new URL('../../../examples/bootstrap.yaml', import.meta.url));
  const { result } = await loadBootstrapFile(example);
  if (!result.ok) assert.fail(formatErrors(result.errors));
  assert.match(summarize(result.value), /^valid: 1 listener, 1 cluster, 1 route /);
  const l = result.value.listeners[0]!;
  assert.deepEqual(l.address, { address: '0.0.0.0', port: 10000 });
  assert.equal(l.filterChains[0]!.filter.kind, 'http_connection_manager');
  assert.equal(result.value.clusters[0]!.type, 'STATIC');
});

test('the example in docs/configuration.md is examples/bootstrap.yaml', async () => {
  const root = new URL('../../../', import.meta.url);
  const doc = await readFile(new URL('docs/configuration.md', root), 'utf8');
  const example = await readFile(new URL('examples/bootstrap.yaml', root), 'utf8');
  const block = /## Example\n[\s\S]*?```yaml\n([\s\S]*?)```/.exec(doc);
  assert.equal(block?.[1], example);
});

test('per-resource translators prefix their paths and do not check cluster names', () => {
  const rc = translateRouteConfiguration(
    {
      name: 'r',
      virtual_hosts: [
        { name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'from-cds' } }] },
      ],
    },
    'resources[0]',
  );
  assert.ok(rc.ok);
  const listener = translateListener(
    { address: { socket_address: { address: '::', port_value: 0 } }, filter_chains: [] },
    'resources[1]',
  );
  assert.deepEqual(listener, {
    ok: false,
    errors: [
      { path: 'resources[1].name', message: 'missing required field' },
      { path: 'resources[1].filter_chains', message: 'must not be empty' },
    ],
  });
  const cluster = translateCluster({ name: 'c', type: 'LOGICAL_DNS', alt_stat_name: 'x' }, 'resources[2]');
  assert.deepEqual(cluster, {
    ok: false,
    errors: [
      {
        path: 'resources[2].type',
        message:
          'value "LOGICAL_DNS" is not supported by Remora yet (supported: STATIC, STRICT_DNS, ORIGINAL_DST, EDS)',
      },
      { path: 'resources[2].alt_stat_name', message: 'field not supported by Remora' },
    ],
  });
  const ok = translateCluster(
    { name: 'c', type: 'STRICT_DNS', load_assignment: { cluster_name: 'c', endpoints: [] } },
    'x',
  );
  assert.ok(ok.ok);
});
