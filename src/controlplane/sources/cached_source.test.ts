// CachedSource: the live source's state saved; the kept state served when the source is late or fails at start,
// replaced (and its problem cleared) once the source answers; a corrupt file reported and ignored.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseManifests } from '../manifests/parse.js';
import type { MeshObject } from '../model/objects.js';
import { DataDir } from '../state/data_dir.js';
import { CachedSource } from './cached_source.js';
import { FilesSource } from './files.js';
import type { Source, SourceListener, SourceUpdate } from './source.js';
import { SourceStateFile } from './source_store.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'remora-cached-source-'));
  dirs.push(d);
  return d;
}

const svc = (name: string, port = 80) =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: shop}\nspec: {ports: [{name: http, port: ${port}}]}\n`;

function objects(...names: string[]): MeshObject[] {
  const r = parseManifests(names.map((n) => svc(n)).join('---\n'), { source: 'etcd' });
  assert.deepEqual(r.errors, []);
  return r.objects;
}

const names = (u: SourceUpdate) => (u.kind === 'full' ? u.objects : u.upserts).map((o) => o.meta.name).sort();

/** A stand-in for a remote source whose start the test settles: it answers, fails, or never does. */
class PlannedSource implements Source {
  private listener: SourceListener | undefined;
  private settle: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private wasStarted: (() => void) | undefined;
  /** Resolves once start() has been called. */
  readonly started = new Promise<void>((r) => {
    this.wasStarted = r;
  });
  closed = false;

  constructor(readonly name = 'etcd') {}

  start(listener: SourceListener): Promise<void> {
    this.listener = listener;
    this.wasStarted?.();
    return new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
  }

  /** The first full read: delivered, then start() resolves. */
  answer(objs: MeshObject[]): void {
    this.send({ kind: 'full', objects: objs, problems: [] });
    this.settle?.resolve();
  }

  fail(message: string): void {
    this.settle?.reject(new Error(message));
  }

  send(u: SourceUpdate): void {
    this.listener?.(u);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.settle?.resolve();
  }
}

/** What a registry would hear from the source, with a wait for an update that satisfies a condition. */
class Recorder {
  readonly updates: SourceUpdate[] = [];
  private readonly waiters: { pred: (u: SourceUpdate) => boolean; resolve: (u: SourceUpdate) => void }[] = [];

  readonly listener: SourceListener = (u) => {
    this.updates.push(u);
    for (const w of [...this.waiters])
      if (w.pred(u)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(u);
      }
  };

  /** The last update if it satisfies `pred`, else the next one that does. */
  until(pred: (u: SourceUpdate) => boolean): Promise<SourceUpdate> {
    const last = this.updates.at(-1);
    if (last !== undefined && pred(last)) return Promise.resolve(last);
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }
}

interface Harness {
  readonly source: CachedSource;
  /** The state file of source "etcd". */
  readonly file: SourceStateFile;
  readonly dir: DataDir;
  readonly rec: Recorder;
  /** Every live source made, in order. */
  readonly made: Source[];
}

async function harness(
  dataDir: string,
  make: () => Source = () => new PlannedSource(),
  waitMs = 50,
): Promise<Harness> {
  const dir = await DataDir.open(dataDir);
  const made: Source[] = [];
  const source = new CachedSource({
    create: () => {
      const s = make();
      made.push(s);
      return s;
    },
    stateFile: (name) => new SourceStateFile(dir.sourceStateFile(name), name),
    waitMs,
    saveIntervalMs: 0,
    backoff: { initialMs: 5, maxMs: 20 },
  });
  const file = new SourceStateFile(dir.sourceStateFile('etcd'), 'etcd');
  return { source, file, dir, rec: new Recorder(), made };
}

const planned = (h: Harness, i = 0) => h.made[i] as PlannedSource;

test('without a kept state, start() is the live source: its failure fails it, its states are saved', async () => {
  const data = tempDir();
  const h = await harness(data);
  const start = h.source.start(h.rec.listener);
  await planned(h).started;
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(h.rec.updates, [], 'nothing is served before the source answers');
  planned(h).fail('etcd http://127.0.0.1:1: cannot read /remora/: connection refused');
  await assert.rejects(start, /connection refused/);
  await h.source.close();
  assert.equal((await h.file.load()).kind, 'none');

  const h2 = await harness(data);
  const started = h2.source.start(h2.rec.listener);
  await planned(h2).started;
  planned(h2).answer(objects('a', 'b'));
  await started;
  assert.deepEqual(h2.rec.updates.map(names), [['a', 'b']]);
  assert.deepEqual(h2.rec.updates[0]!.problems, []);
  // Deltas are merged into what is saved.
  planned(h2).send({ kind: 'delta', upserts: objects('c'), removals: ['Service/shop/a'], problems: [] });
  await h2.source.close();
  const kept = await h2.file.load();
  assert.ok(kept.kind === 'saved');
  assert.deepEqual(kept.state.objects.map((o) => o.meta.name).sort(), ['b', 'c']);
  assert.deepStrictEqual(
    kept.state.objects.find((o) => o.meta.name === 'c'),
    objects('c')[0],
  );
});

test('a late source: the kept state is served with RA0403 after the wait, then replaced when the source answers', async () => {
  const data = tempDir();
  const h = await harness(data);
  const savedAt = new Date('2025-05-06T07:08:09.000Z');
  await h.file.save(objects('a', 'b'), savedAt);
  const before = readFileSync(h.file.path, 'utf8');

  await h.source.start(h.rec.listener);
  assert.equal(h.rec.updates.length, 1);
  const kept = h.rec.updates[0]!;
  assert.deepEqual(names(kept), ['a', 'b']);
  assert.equal(kept.problems.length, 1);
  assert.equal(kept.problems[0]!.code, 'RA0403');
  assert.match(kept.problems[0]!.message, /^source "etcd" cannot be read \(no answer within 0.05 s\)/);
  assert.ok(kept.problems[0]!.message.includes(h.file.path));
  assert.ok(kept.problems[0]!.message.includes('saved 2025-05-06T07:08:09.000Z'));
  assert.equal(readFileSync(h.file.path, 'utf8'), before, 'the kept state is not written back');

  planned(h).answer(objects('b', 'c'));
  const live = await h.rec.until((u) => names(u).includes('c'));
  assert.equal(live.kind, 'full');
  assert.deepEqual(names(live), ['b', 'c']);
  assert.deepEqual(live.problems, []);
  assert.equal(h.made.length, 1, 'the late source was kept, not replaced');
  await h.source.close();
  const saved = await h.file.load();
  assert.ok(saved.kind === 'saved');
  assert.deepEqual(saved.state.objects.map((o) => o.meta.name).sort(), ['b', 'c']);
  assert.ok(saved.state.savedAt > savedAt);
  assert.ok(planned(h).closed);
});

test('a source whose start fails is made again until one starts; then it is followed and saved as usual', async () => {
  const data = tempDir();
  // A real source: a files source whose directory does not exist yet fails to start.
  const manifests = join(data, 'manifests');
  const h = await harness(data, () => new FilesSource({ dir: manifests, debounceMs: 10 }), 60_000);
  const file = new SourceStateFile(h.dir.sourceStateFile('files'), 'files');
  await file.save(objects('a'), new Date());
  await h.source.start(h.rec.listener);
  const kept = h.rec.updates[0]!;
  assert.deepEqual(names(kept), ['a']);
  assert.equal(kept.problems[0]?.code, 'RA0403');
  assert.match(kept.problems[0]!.message, /\(manifest directory .*manifests: does not exist\)/);
  while (h.made.length < 3) await new Promise((r) => setTimeout(r, 5));
  mkdirSync(manifests);
  writeFileSync(join(manifests, 'svc.yaml'), svc('z'));
  const live = await h.rec.until((u) => names(u).includes('z'));
  assert.deepEqual(names(live), ['z']);
  assert.deepEqual(live.problems, []);
  assert.equal(h.rec.updates.indexOf(live), 1, 'failures for the same reason repeat no update');
  const settled = h.made.length;
  writeFileSync(join(manifests, 'svc2.yaml'), svc('y'));
  await h.rec.until((u) => names(u).includes('y'));
  await h.source.close();
  assert.equal(h.made.length, settled, 'no source is made once one has started');
  const saved = await file.load();
  assert.ok(saved.kind === 'saved');
  assert.deepEqual(saved.state.objects.map((o) => o.meta.name).sort(), ['y', 'z']);
});

test('a corrupt kept file: reported as RA0404 and ignored; the first save clears the problem', async () => {
  const data = tempDir();
  const failing = await harness(data);
  writeFileSync(failing.file.path, '{"format": 1, "objects": [');

  // The source fails: start fails as without a kept state, and says why the file was no help.
  const start = failing.source.start(failing.rec.listener);
  await planned(failing).started;
  planned(failing).fail('cannot read /remora/');
  await assert.rejects(
    start,
    /cannot read \/remora\/ \(its kept state .*etcd\.json is unusable: not valid JSON/,
  );
  await failing.source.close();

  const h = await harness(data);
  const started = h.source.start(h.rec.listener);
  await planned(h).started;
  planned(h).answer(objects('a'));
  await started;
  assert.deepEqual(
    h.rec.updates[0]!.problems.map((p) => p.code),
    ['RA0404'],
  );
  assert.match(
    h.rec.updates[0]!.problems[0]!.message,
    /etcd\.json: the kept state of source "etcd" is ignored: not valid JSON/,
  );
  const cleared = await h.rec.until((u) => u.problems.length === 0);
  assert.deepEqual(names(cleared), ['a']);
  await h.source.close();
  assert.equal((await h.file.load()).kind, 'saved');
});

test('close() while waiting for the source: start() resolves, nothing is delivered afterwards', async () => {
  const h = await harness(tempDir(), undefined, 60_000);
  await h.file.save(objects('a'), new Date());
  const start = h.source.start(h.rec.listener);
  await planned(h).started;
  await h.source.close();
  await start;
  planned(h).send({ kind: 'full', objects: objects('b'), problems: [] });
  assert.deepEqual(h.rec.updates, []);
  assert.ok(planned(h).closed);
});
