// SourceRegistry: several sources merged into one snapshot, conflicts reported, no-op changes not announced.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifests } from '../manifests/parse.js';
import type { MeshObject } from '../model/objects.js';
import { type MeshState, SourceKinds, SourceRegistry } from './registry.js';
import type { Source, SourceListener, SourceUpdate } from './source.js';

function objects(text: string, source: string): MeshObject[] {
  const r = parseManifests(text, { source });
  assert.deepEqual(r.errors, []);
  return r.objects;
}

const svc = (name: string, port = 80, ns = 'default') =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {ports: [{port: ${port}}]}\n---\n`;

/** A source driven by the test: its first update is given up front, later ones through `send`. */
class ScriptedSource implements Source {
  private listener: SourceListener | undefined;
  observed: (readonly MeshObject[])[] = [];
  closed = false;

  constructor(
    readonly name: string,
    private readonly first: SourceUpdate,
  ) {}

  async start(listener: SourceListener): Promise<void> {
    this.listener = listener;
    listener(this.first);
  }

  send(u: SourceUpdate): void {
    this.listener?.(u);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  observe(o: readonly MeshObject[]): void {
    this.observed.push(o);
  }
}

const full = (objs: MeshObject[], problems: SourceUpdate['problems'] = []): SourceUpdate => ({
  kind: 'full',
  objects: objs,
  problems,
});

test('objects of several sources make one snapshot; the first source added wins a conflict', async () => {
  const a = new ScriptedSource('a', full(objects(svc('one') + svc('shared', 80), 'a')));
  const b = new ScriptedSource('b', full(objects(svc('two') + svc('shared', 81), 'b')));
  const reg = new SourceRegistry().add(a).add(b);
  const state = await reg.start();
  assert.deepEqual(
    state.snapshot.services.map((s) => `${s.name}:${s.ports[0]!.port}`),
    ['one:80', 'shared:80', 'two:80'],
  );
  assert.deepEqual(state.problems, [
    {
      source: 'b',
      code: 'RA0104',
      message: 'Service default/shared from source "b" is ignored: source "a" has it too',
    },
  ]);
  // Sources that derive objects (DNS) see the merged set.
  assert.equal(a.observed.at(-1)?.length, 3);
  await reg.close();
  assert.ok(a.closed && b.closed);
});

test('listeners hear of new versions and of problem changes, never of no-ops; deltas apply', async () => {
  const a = new ScriptedSource('a', full(objects(svc('one'), 'a')));
  const reg = new SourceRegistry().add(a);
  const first = await reg.start();
  const seen: MeshState[] = [];
  reg.subscribe((s) => seen.push(s));

  // The same objects again, even from another file: nothing to say.
  a.send(full(objects(svc('one'), 'elsewhere')));
  assert.equal(seen.length, 0);

  a.send(full(objects(svc('one'), 'a'), [{ code: 'RA0102', message: 'x.yaml: broken' }]));
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.changed, false);
  assert.equal(seen[0]!.snapshot.version, first.snapshot.version);
  assert.deepEqual(
    seen[0]!.problems.map((p) => p.message),
    ['x.yaml: broken'],
  );

  a.send({
    kind: 'delta',
    upserts: objects(svc('two'), 'a'),
    removals: ['Service/default/one'],
    problems: [],
  });
  assert.equal(seen.length, 2);
  assert.equal(seen[1]!.changed, true);
  assert.deepEqual(
    seen[1]!.snapshot.services.map((s) => s.name),
    ['two'],
  );
  assert.deepEqual(seen[1]!.problems, []);
  assert.equal(reg.state, seen[1]);

  await reg.close();
  a.send(full([]));
  assert.equal(seen.length, 2);
});

test('a source that fails to start stops the others; kinds are registered by name', async () => {
  const ok = new ScriptedSource('ok', full([]));
  const broken: Source = {
    name: 'broken',
    start: async () => {
      throw new Error('cannot start');
    },
    close: async () => {},
  };
  const reg = new SourceRegistry().add(ok).add(broken);
  await assert.rejects(reg.start(), /cannot start/);
  assert.ok(ok.closed);
  assert.throws(() => new SourceRegistry().add(ok).add(ok), /already added/);

  const kinds = new SourceKinds().register('scripted', (o) => new ScriptedSource(String(o.name), full([])));
  assert.equal(kinds.create('scripted', { name: 'x' }).name, 'x');
  assert.throws(() => kinds.create('etcd'), /unknown source kind "etcd" \(known: scripted\)/);
  assert.throws(() => kinds.register('scripted', () => ok), /already registered/);
});

test('the built-in kinds: files (needs a directory) and dns', async () => {
  const { builtinSourceKinds } = await import('./kinds.js');
  const kinds = builtinSourceKinds();
  assert.deepEqual(kinds.names(), ['files', 'dns', 'etcd', 'kubernetes', 'consul']);
  assert.equal(kinds.create('files', { dir: '/tmp' }).name, 'files');
  assert.throws(() => kinds.create('files', {}), /needs a directory/);
  const dns = kinds.create('dns', { servers: ['127.0.0.1:53'] });
  assert.equal(dns.name, 'dns');
  await dns.close();
  assert.throws(() => kinds.create('dns', { servers: 'x' }), /servers must be a list/);
});
