// A source's kept state: exact round trip of every kind of mesh object, refused files, atomic and coalesced writes.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseManifests } from '../manifests/parse.js';
import { buildSnapshot } from '../model/build.js';
import type { MeshObject } from '../model/objects.js';
import { DataDir } from '../state/data_dir.js';
import { podObjectOf } from './kubernetes_pods.js';
import { decodeState, encodeState, SourceStateFile, StateSaver } from './source_store.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'remora-source-store-'));
  dirs.push(d);
  return d;
}

/** Every kind the model has, with the optional fields both given and left out. */
const MESH = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: a}}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop, labels: {app: reviews}}
spec:
  selector: {app: reviews}
  ports:
  - {name: http, port: 9080, targetPort: 8080}
  - {name: grpc-api, port: 9090, appProtocol: grpc, targetPort: grpc}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  clusterIP: None
  ports: [{port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-1, namespace: shop, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true}
  zone: a
  nodeName: n1
  targetRef: {kind: Pod, namespace: shop, name: reviews-1}
- addresses: [10.0.0.2]
  conditions: {ready: false}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-vm, namespace: shop}
spec:
  address: 10.0.1.1
  ports: {http: 8080}
  labels: {app: reviews, version: v2}
  serviceAccount: reviews
  locality: eu/west/a
  weight: 3
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop, annotations: {remora.io/dns-srv: "true"}}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - name: canary
    match:
    - uri: {prefix: /v2}
      headers: {x-canary: {exact: "1"}, x-any: {}}
      ignoreUriCase: true
    route:
    - {destination: {host: reviews, subset: v2}, weight: 90}
    - {destination: {host: reviews, subset: v1, port: {number: 9080}}, weight: 10}
    retries: {attempts: 2, perTryTimeout: 1s, retryOn: "5xx,503"}
    timeout: 3s
    rewrite: {uri: /}
  - route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {consistentHash: {httpCookie: {name: s, ttl: 10s}}}
    connectionPool: {tcp: {maxConnections: 10}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - name: v2
    labels: {version: v2}
    trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  egress: [{hosts: ["./*", "istio-system/*"]}]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`;

function meshObjects(): MeshObject[] {
  const r = parseManifests(MESH, { source: 'etcd', file: '/remora/shop' });
  assert.deepEqual(r.errors, []);
  const slice = r.objects.find((o) => o.kind === 'EndpointSlice')!;
  // What the Kubernetes source joins onto endpoints, and what the DNS source reports.
  const joined: MeshObject = {
    ...slice,
    meta: { ...slice.meta, name: 'reviews-2' },
    endpoints: [
      {
        address: '10.0.0.3',
        ready: true,
        hostname: undefined,
        zone: undefined,
        nodeName: undefined,
        targetRef: undefined,
        labels: { app: 'reviews', version: 'v1' },
        serviceAccount: 'reviews',
      },
    ],
  };
  const dns: MeshObject = {
    kind: 'DnsEndpoints',
    meta: { name: 'api', namespace: 'shop', labels: {} },
    origin: { source: 'dns' },
    host: 'api.example.com',
    endpoints: [{ address: '192.0.2.1', ports: { tls: 443 } }],
  };
  // What the Kubernetes source makes of a Pod.
  const pod = podObjectOf(
    {
      metadata: { name: 'reviews-1', namespace: 'shop', labels: { app: 'reviews' } },
      spec: {
        serviceAccountName: 'reviews',
        containers: [{ name: 'app', ports: [{ name: 'grpc', containerPort: 9091 }] }],
      },
      status: { phase: 'Running', podIPs: [{ ip: '10.0.0.1' }] },
    },
    'kubernetes',
  );
  assert.ok(pod !== undefined);
  return [...r.objects, joined, dns, pod];
}

/** Counts members whose value is `undefined`, at any depth: the round trip must keep them. */
function undefinedMembers(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  return Object.entries(value).reduce((n, [, v]) => n + (v === undefined ? 1 : undefinedMembers(v)), 0);
}

test('every kind of mesh object reads back deep-equal (undefined members included) and builds the same mesh', () => {
  const objects = meshObjects();
  assert.deepEqual(new Set(objects.map((o) => o.kind)).size, 10, 'every kind is covered');
  assert.ok(undefinedMembers(objects) > 10, 'the objects have undefined members');
  const at = new Date('2025-03-04T05:06:07.089Z');
  const d = decodeState(encodeState('etcd', objects, at), 'etcd');
  assert.ok(d.ok, d.ok ? '' : d.reason);
  assert.deepStrictEqual(d.state.objects, objects);
  assert.equal(undefinedMembers(d.state.objects), undefinedMembers(objects));
  assert.equal(d.state.savedAt.toISOString(), at.toISOString());
  assert.equal(d.state.source, 'etcd');
  assert.equal(buildSnapshot(d.state.objects).version, buildSnapshot(objects).version);
});

test('a file that is not JSON, of another format, of another source, or without mesh objects is refused', () => {
  const good = JSON.parse(encodeState('etcd', meshObjects(), new Date()));
  const cases: [string, string, RegExp][] = [
    ['{"format": 1, "sour', 'etcd', /not valid JSON/],
    ['[]', 'etcd', /not a JSON object/],
    [JSON.stringify({ ...good, format: 2 }), 'etcd', /format 2 is not the format this Remora reads \(1\)/],
    [JSON.stringify(good), 'consul', /holds the state of source "etcd", not "consul"/],
    [JSON.stringify({ ...good, savedAt: 'yesterday' }), 'etcd', /savedAt is not a time/],
    [JSON.stringify({ ...good, objects: {} }), 'etcd', /objects is not a list/],
    [
      JSON.stringify({ ...good, objects: [{ ...good.objects[0], kind: 'Deployment' }] }),
      'etcd',
      /objects\[0\]: unknown kind "Deployment"/,
    ],
    [
      JSON.stringify({ ...good, objects: [{ ...good.objects[0], meta: { name: 'x' } }] }),
      'etcd',
      /objects\[0\]: meta/,
    ],
    [JSON.stringify({ ...good, objects: [3] }), 'etcd', /objects\[0\]: not an object/],
  ];
  for (const [text, source, reason] of cases) {
    const d = decodeState(text, source);
    assert.equal(d.ok, false, text.slice(0, 80));
    if (!d.ok) assert.match(d.reason, reason);
  }
});

test('DataDir lays out sources/ (0700), escapes odd source names, and refuses a path that is a file', async () => {
  const base = tempDir();
  const dir = await DataDir.open(join(base, 'a', 'b'));
  assert.equal(statSync(dir.root).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir.root, 'sources')).mode & 0o777, 0o700);
  assert.equal(dir.sourceStateFile('etcd'), join(dir.root, 'sources', 'etcd.json'));
  assert.equal(dir.sourceStateFile('../x'), join(dir.root, 'sources', '%2e.%2fx.json'));
  // Opening again is fine.
  await DataDir.open(join(base, 'a', 'b'));
  writeFileSync(join(base, 'file'), '');
  await assert.rejects(DataDir.open(join(base, 'file')), /file: not a directory$/);
});

test('SourceStateFile: nothing, then what was saved (0600, no temporary file left), a corrupt file unusable', async () => {
  const dir = await DataDir.open(tempDir());
  const file = new SourceStateFile(dir.sourceStateFile('etcd'), 'etcd');
  assert.deepEqual(await file.load(), { kind: 'none' });
  const objects = meshObjects();
  await file.save(objects, new Date('2025-01-01T00:00:00Z'));
  await file.save(objects.slice(1), new Date('2025-01-02T00:00:00Z'));
  assert.deepEqual(readdirSync(dir.sourcesDir), ['etcd.json']);
  assert.equal(statSync(file.path).mode & 0o777, 0o600);
  const loaded = await file.load();
  assert.equal(loaded.kind, 'saved');
  if (loaded.kind === 'saved') {
    assert.deepStrictEqual(loaded.state.objects, objects.slice(1));
    assert.equal(loaded.state.savedAt.toISOString(), '2025-01-02T00:00:00.000Z');
  }
  writeFileSync(file.path, readFileSync(file.path, 'utf8').slice(0, 100));
  const corrupt = await file.load();
  assert.equal(corrupt.kind, 'unusable');
  if (corrupt.kind === 'unusable') assert.match(corrupt.reason, /not valid JSON/);
});

test('StateSaver: the first change is written at once, changes meanwhile make one write at close, equal content none', async () => {
  const dir = await DataDir.open(tempDir());
  const file = new SourceStateFile(dir.sourceStateFile('etcd'), 'etcd');
  const all = meshObjects();
  let current = all.slice(0, 1);
  const results: (Error | undefined)[] = [];
  const saver = new StateSaver(file, () => current, {
    minIntervalMs: 3_600_000,
    written: (e) => results.push(e),
  });
  saver.changed();
  for (let i = 2; i <= all.length; i++) {
    current = all.slice(0, i);
    saver.changed();
  }
  await saver.close();
  assert.equal(saver.writes, 2, 'one write at once, one for every change since');
  assert.deepEqual(results, [undefined, undefined]);
  const loaded = await file.load();
  assert.ok(loaded.kind === 'saved');
  assert.deepStrictEqual(loaded.state.objects, all);
  saver.changed();
  await saver.close();
  assert.equal(saver.writes, 2, 'nothing is written after close');

  const again = new StateSaver(file, () => current, { minIntervalMs: 0 });
  again.changed();
  await again.close();
  current = [...all];
  const same = new StateSaver(file, () => current, { minIntervalMs: 0 });
  same.changed();
  same.changed();
  await same.close();
  assert.equal(same.writes, 1, 'a state equal to the one written is not written again');
});

test('StateSaver: a failed write is reported and the state is written once it can be', async () => {
  const dir = await DataDir.open(tempDir());
  const file = new SourceStateFile(dir.sourceStateFile('etcd'), 'etcd');
  const results: (Error | undefined)[] = [];
  const saver = new StateSaver(file, () => meshObjects(), {
    minIntervalMs: 3_600_000,
    written: (e) => results.push(e),
  });
  rmSync(dir.sourcesDir, { recursive: true });
  saver.changed();
  while (results.length === 0) await new Promise((r) => setTimeout(r, 10));
  assert.match(String(results[0]?.message), /ENOENT/);
  mkdirSync(dir.sourcesDir, { mode: 0o700 });
  await saver.close();
  assert.deepEqual(results.slice(1), [undefined]);
  assert.equal((await file.load()).kind, 'saved');
});
