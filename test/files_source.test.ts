// Integration: the files source on a real directory, watched while files are added, edited, broken, renamed, deleted.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FilesSource } from '../src/controlplane/sources/files.js';
import { type MeshState, SourceRegistry } from '../src/controlplane/sources/registry.js';

const HOST = 'reviews.shop.svc.cluster.local';

const SERVICE = `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec: {ports: [{name: http, port: 9080}]}
`;

function slice(name: string, ...addresses: string[]): string {
  return `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}, namespace: shop, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [${addresses.map((a) => `{addresses: [${a}]}`).join(', ')}]
`;
}

let dir: string;
let registry: SourceRegistry;
const states: MeshState[] = [];
const waiters: { pred: (s: MeshState) => boolean; resolve: (s: MeshState) => void }[] = [];

/** The next state (after those already seen) that satisfies `pred`; fails after 10 s with what was seen. */
function next(what: string, pred: (s: MeshState) => boolean): Promise<MeshState> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const last = states.at(-1);
      reject(new Error(`no state with ${what}; last: ${last ? describe(last) : 'none'}`));
    }, 10_000);
    waiters.push({
      pred,
      resolve: (s) => {
        clearTimeout(timer);
        resolve(s);
      },
    });
  });
}

function addresses(s: MeshState): string[] {
  return s.snapshot.endpoints(HOST).map((e) => e.address);
}

function describe(s: MeshState): string {
  return JSON.stringify({ endpoints: addresses(s), problems: s.problems.map((p) => p.message) });
}

function write(name: string, text: string): void {
  writeFileSync(join(dir, name), text);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remora-files-'));
  write('service.yaml', SERVICE);
  write('slice-a.yaml', slice('a', '10.0.0.1'));
  registry = new SourceRegistry().add(new FilesSource({ dir, debounceMs: 20 }));
  registry.subscribe((s) => {
    states.push(s);
    for (const w of [...waiters]) {
      if (w.pred(s)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(s);
      }
    }
  });
});

after(async () => {
  await registry.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the initial snapshot holds the directory', async () => {
  const s = await registry.start();
  assert.deepEqual(addresses(s), ['10.0.0.1']);
  assert.deepEqual(s.problems, []);
  assert.equal(s.snapshot.service(HOST)?.ports[0]?.port, 9080);
});

test('a new EndpointSlice file adds its endpoints', async () => {
  const got = next('two endpoints', (s) => addresses(s).length === 2);
  write('slice-b.yaml', slice('b', '10.0.0.2'));
  assert.deepEqual(addresses(await got), ['10.0.0.1', '10.0.0.2']);
});

test('an edited EndpointSlice replaces its endpoints; rewriting the same content is no change', async () => {
  write('slice-a.yaml', slice('a', '10.0.0.1')); // same bytes: no new state may come of it
  const got = next('10.0.0.3', (s) => addresses(s).includes('10.0.0.3'));
  write('slice-a.yaml', slice('a', '10.0.0.3'));
  const s = await got;
  assert.deepEqual(addresses(s), ['10.0.0.2', '10.0.0.3']);
  assert.equal(states.at(-1), s, 'the identical rewrite produced a state of its own');
});

test('an invalid file is reported with its path and field path, and its last good version keeps serving', async () => {
  const broken = next('a problem', (s) => s.problems.length > 0);
  write('slice-b.yaml', slice('b', '10.0.0.2').replace('port: 8080', 'port: 0'));
  const s = await broken;
  assert.deepEqual(addresses(s), ['10.0.0.2', '10.0.0.3']);
  assert.equal(s.changed, false);
  assert.deepEqual(
    s.problems.map((p) => [p.code, p.message]),
    [
      [
        'RA0102',
        `${join(dir, 'slice-b.yaml')}: EndpointSlice shop/b: ports[0].port: must be between 1 and 65535, got 0`,
      ],
    ],
  );

  const syntax = next('a syntax error too', (x) => x.problems.length === 2);
  write('new.yaml', `${slice('c', '10.0.0.9')}---\nkind: [`);
  const t = await syntax;
  // The valid document of a new file serves, its broken one is reported.
  assert.deepEqual(addresses(t), ['10.0.0.2', '10.0.0.3', '10.0.0.9']);
  assert.match(t.problems[0]!.message, /new\.yaml: document 2: YAML syntax error at line \d+/);

  const fixed = next('no problem', (x) => x.problems.length === 0);
  write('slice-b.yaml', slice('b', '10.0.0.4'));
  rmSync(join(dir, 'new.yaml'));
  const u = await fixed;
  assert.deepEqual(addresses(u), ['10.0.0.3', '10.0.0.4']);
});

test('a file replaced by an atomic rename (as editors and Kubernetes do) is read again', async () => {
  const got = next('10.0.0.5', (s) => addresses(s).includes('10.0.0.5'));
  write('.slice-a.yaml.tmp', slice('a', '10.0.0.5'));
  renameSync(join(dir, '.slice-a.yaml.tmp'), join(dir, 'slice-a.yaml'));
  assert.deepEqual(addresses(await got), ['10.0.0.4', '10.0.0.5']);
});

test('a new subdirectory is read and watched', async () => {
  const first = next('10.0.0.6', (s) => addresses(s).includes('10.0.0.6'));
  mkdirSync(join(dir, 'more', 'deeper'), { recursive: true });
  write(join('more', 'deeper', 'c.yml'), slice('c', '10.0.0.6'));
  await first;
  const second = next('10.0.0.7', (s) => addresses(s).includes('10.0.0.7'));
  write(join('more', 'deeper', 'c.yml'), slice('c', '10.0.0.7'));
  assert.deepEqual(addresses(await second), ['10.0.0.4', '10.0.0.5', '10.0.0.7']);
});

test('a deleted file takes its objects with it', async () => {
  const got = next('slice b gone', (s) => !addresses(s).includes('10.0.0.4'));
  rmSync(join(dir, 'slice-b.yaml'));
  assert.deepEqual(addresses(await got), ['10.0.0.5', '10.0.0.7']);
  const gone = next('the service gone', (s) => s.snapshot.service(HOST) === undefined);
  rmSync(join(dir, 'service.yaml'));
  const s = await gone;
  assert.deepEqual(s.snapshot.services, []);
});

test('start() fails on a directory that does not exist', async () => {
  const src = new FilesSource({ dir: join(dir, 'nope') });
  await assert.rejects(
    src.start(() => {}),
    /manifest directory .*nope: does not exist/,
  );
  await src.close();
});
