// Integration: the etcd source against a real etcd: initial read, watched changes, bad values, a restart, replicas.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { EtcdSource } from '../src/controlplane/sources/etcd.js';
import { EtcdManifestWriter } from '../src/controlplane/sources/etcd_writer.js';
import { builtinSourceKinds } from '../src/controlplane/sources/kinds.js';
import { type MeshState, SourceRegistry } from '../src/controlplane/sources/registry.js';
import { type EtcdServer, startEtcd } from './support/etcd.js';
import { watchStates } from './support/states.js';
import { closedPort } from './support/upstream.js';

const HOST = 'reviews.shop.svc.cluster.local';

const service = (port = 9080) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec: { ports: [{ name: 'http', port }] },
});

const slice = (name: string, ...addresses: string[]) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': 'reviews' } },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080 }],
  endpoints: addresses.map((a) => ({ addresses: [a] })),
});

let etcd: EtcdServer;
let writer: EtcdManifestWriter;
let n = 0;

/** A fresh prefix per test, so tests share one etcd without seeing each other's keys. */
const nextPrefix = () => `/remora-test-${++n}/`;

function addresses(s: MeshState): string[] {
  return s.snapshot.endpoints(HOST).map((e) => e.address);
}

function describe(s: MeshState): string {
  return JSON.stringify({
    services: s.snapshot.services.map((x) => `${x.hostname}:${x.ports.map((p) => p.port)}`),
    endpoints: addresses(s),
    problems: s.problems.map((p) => `${p.code} ${p.message}`),
  });
}

async function open(prefix: string, extra: Partial<ConstructorParameters<typeof EtcdSource>[0]> = {}) {
  const registry = new SourceRegistry().add(new EtcdSource({ endpoints: [etcd.url], prefix, ...extra }));
  const states = watchStates(registry, describe);
  await registry.start();
  return { registry, states };
}

/** Retries a write while a restarted etcd becomes reachable again for the writer's client. */
async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

before(async () => {
  etcd = await startEtcd();
  writer = new EtcdManifestWriter({ endpoints: [etcd.url] });
});

after(async () => {
  writer?.close();
  await etcd?.stop();
});

test('reads the prefix, then follows puts, changes and deletes within a second', async () => {
  const prefix = nextPrefix();
  const w = new EtcdManifestWriter({ endpoints: [etcd.url], prefix });
  await w.put(service());
  await w.put(slice('a', '10.0.0.1'));
  // A key outside the prefix is not read.
  await writer.putText('Service/shop/other', JSON.stringify({ ...service(), metadata: { name: 'other' } }));
  const { registry, states } = await open(prefix);
  try {
    assert.deepEqual(addresses(states.last()), ['10.0.0.1']);
    assert.deepEqual(
      states.last().snapshot.services.map((s) => s.hostname),
      [HOST],
    );
    assert.deepEqual(states.last().problems, []);

    await w.put(slice('b', '10.0.0.2'));
    await states.until('a second slice', (s) => addresses(s).length === 2, 1000);
    await w.put(slice('a', '10.0.0.3'));
    await states.until('the first slice changed', (s) => addresses(s).join() === '10.0.0.2,10.0.0.3', 1000);
    await w.delete(slice('b'));
    await states.until('the second slice deleted', (s) => addresses(s).join() === '10.0.0.3', 1000);
    // A change of the Service itself.
    await w.put(service(9090));
    await states.until('the new port', (s) => s.snapshot.service(HOST)?.ports[0]?.port === 9090, 1000);
  } finally {
    await registry.close();
    w.close();
  }
});

test('an invalid value is reported with its key and field path; the key keeps its last good objects', async () => {
  const prefix = nextPrefix();
  const w = new EtcdManifestWriter({ endpoints: [etcd.url], prefix });
  await w.put(service());
  await w.put(slice('a', '10.0.0.1'));
  const { registry, states } = await open(prefix);
  try {
    const bad = { ...service(), spec: { ports: [{ name: 'http', port: 70000 }] } };
    const key = await w.put(bad);
    const s = await states.until('a problem', (x) => x.problems.length > 0, 1000);
    assert.equal(s.problems.length, 1);
    assert.equal(s.problems[0]!.code, 'RA0102');
    assert.equal(s.problems[0]!.manifest?.file, key);
    assert.equal(s.problems[0]!.manifest?.path, 'spec.ports[0].port');
    assert.match(
      s.problems[0]!.message,
      /^\/remora-test-\d+\/Service\/shop\/reviews: Service shop\/reviews: /,
    );
    assert.equal(s.snapshot.service(HOST)?.ports[0]?.port, 9080, 'the last good Service keeps serving');
    assert.deepEqual(addresses(s), ['10.0.0.1']);

    // Not YAML at all, under a key of its own: reported; nothing else changes.
    await w.putText('broken', 'kind: [unclosed');
    await states.until('a syntax error', (x) => x.problems.some((p) => p.code === 'RA0101'), 1000);

    await w.put(service(9081));
    await w.deleteKey('broken');
    const fixed = await states.until('no problems', (x) => x.problems.length === 0, 1000);
    assert.equal(fixed.snapshot.service(HOST)?.ports[0]?.port, 9081);
  } finally {
    await registry.close();
    w.close();
  }
});

test('a key may hold several documents or a List', async () => {
  const prefix = nextPrefix();
  const w = new EtcdManifestWriter({ endpoints: [etcd.url], prefix });
  await w.putText('bundle', `${JSON.stringify(service())}\n---\n${JSON.stringify(slice('a', '10.0.0.7'))}\n`);
  const { registry, states } = await open(prefix);
  try {
    assert.deepEqual(addresses(states.last()), ['10.0.0.7']);
    await w.putText(
      'bundle',
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [service(), slice('a', '10.0.0.8')] }),
    );
    await states.until('the List read', (s) => addresses(s).join() === '10.0.0.8', 1000);
  } finally {
    await registry.close();
    w.close();
  }
});

test('etcd killed and restarted: the source reports it, reconnects, and catches up on what changed', async () => {
  const prefix = nextPrefix();
  let w = new EtcdManifestWriter({ endpoints: [etcd.url], prefix });
  await w.put(service());
  await w.put(slice('a', '10.0.0.1'));
  await w.put(slice('b', '10.0.0.2'));
  // A slow first retry, so that the changes below are made while the source is still away.
  const { registry, states } = await open(prefix, { backoff: { initialMs: 1500, maxMs: 3000 } });
  try {
    assert.deepEqual(addresses(states.last()), ['10.0.0.1', '10.0.0.2']);
    w.close();
    await etcd.kill();
    const down = await states.until('the loss reported', (s) => s.problems.some((p) => p.code === 'RA0402'));
    assert.deepEqual(addresses(down), ['10.0.0.1', '10.0.0.2'], 'the last objects keep serving');
    assert.match(down.problems[0]!.message, /serving the last objects read/);

    await etcd.restart();
    w = new EtcdManifestWriter({ endpoints: [etcd.url], prefix });
    await retrying(() => w.put(slice('c', '10.0.0.3')));
    await retrying(() => w.delete(slice('b')));
    const back = await states.until(
      'the changes made while away, and no problem',
      (s) => addresses(s).join() === '10.0.0.1,10.0.0.3' && s.problems.length === 0,
    );
    assert.deepEqual(addresses(back), ['10.0.0.1', '10.0.0.3']);

    // And the new watch follows later changes.
    await w.put(slice('d', '10.0.0.4'));
    await states.until('a change after the reconnection', (s) => addresses(s).includes('10.0.0.4'), 1000);
  } finally {
    await registry.close();
    w.close();
  }
});

test('two control-plane replicas (two registries) watching one etcd agree', async () => {
  const prefix = nextPrefix();
  const w = new EtcdManifestWriter({ endpoints: [etcd.url], prefix });
  await w.put(service());
  await w.put(slice('a', '10.0.0.1'));
  const one = await open(prefix);
  const two = await open(prefix);
  try {
    assert.equal(one.states.last().snapshot.version, two.states.last().snapshot.version);
    await w.put(slice('b', '10.0.0.2'));
    await w.delete(slice('a'));
    const want = (s: MeshState) => addresses(s).join() === '10.0.0.2';
    const [a, b] = await Promise.all([
      one.states.until('b only', want, 1000),
      two.states.until('b only', want, 1000),
    ]);
    assert.equal(a.snapshot.version, b.snapshot.version);
  } finally {
    await one.registry.close();
    await two.registry.close();
    w.close();
  }
});

test('start() fails, naming etcd, when etcd cannot be reached in time', async () => {
  const port = await closedPort();
  const source = new EtcdSource({
    endpoints: [`http://127.0.0.1:${port}`],
    startTimeoutMs: 300,
    backoff: { initialMs: 50, maxMs: 100 },
  });
  await assert.rejects(
    new SourceRegistry().add(source).start(),
    new RegExp(`etcd http://127\\.0\\.0\\.1:${port}: cannot read /remora/`),
  );
});

test('made by the built-in source kinds, the client loaded when the source starts', async () => {
  const prefix = nextPrefix();
  const w = new EtcdManifestWriter({ endpoints: [etcd.url], prefix });
  await w.put(service());
  const registry = new SourceRegistry().add(
    builtinSourceKinds().create('etcd', { endpoints: etcd.url, prefix }),
  );
  try {
    const state = await registry.start();
    assert.equal(state.snapshot.service(HOST)?.ports[0]?.port, 9080);
  } finally {
    await registry.close();
    w.close();
  }
});
