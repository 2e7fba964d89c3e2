// Integration: `remora control-plane --etcd URL --data-dir DIR` as a real process against a real etcd. The state
// read from etcd is kept in DIR; a control plane restarted while etcd is down serves it (RA0403 in its log), and
// follows etcd again once it is back. A --data-dir that cannot be a directory is refused.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { EtcdManifestWriter } from '../src/controlplane/sources/etcd_writer.js';
import { decodeAny, XDS_TYPE_URLS } from '../src/xds/protos.js';
import { RawAdsClient } from './support/ads_client.js';
import { type RemoraProcess, runRemora, until } from './support/child.js';
import { type EtcdServer, startEtcd } from './support/etcd.js';

const { cluster: CDS, endpoint: EDS } = XDS_TYPE_URLS;
const REVIEWS = 'outbound|9080||reviews.shop.svc.cluster.local';

type Msg = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: reading deep into decoded resources in assertions
type Any = any;

const NODE = {
  id: 'sidecar~127.0.0.1~web-1.shop~shop.svc.cluster.local',
  cluster: 'web.shop',
  metadata: { NAMESPACE: 'shop', LABELS: { app: 'web' }, INSTANCE_IPS: '127.0.0.1', WORKLOAD_NAME: 'web' },
};

const service = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec: { ports: [{ name: 'http', port: 9080 }] },
};

const slice = (...addresses: string[]) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'reviews-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'reviews' } },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080 }],
  endpoints: addresses.map((a) => ({ addresses: [a] })),
});

type Running = RemoraProcess;

const procs: Running[] = [];
const clients: RawAdsClient<Msg, Msg>[] = [];
let etcd: EtcdServer;
let tmp: string;

before(async () => {
  etcd = await startEtcd();
  tmp = mkdtempSync(join(tmpdir(), 'remora-cp-data-dir-'));
});

after(async () => {
  for (const c of clients) c.close();
  await Promise.allSettled(procs.map((p) => p.kill()));
  await etcd?.stop();
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

function run(args: readonly string[]): Running {
  const r = runRemora(args);
  procs.push(r);
  return r;
}

async function startControlPlane(dataDir: string): Promise<Running & { xdsPort: number }> {
  const cp = run([
    'control-plane',
    '--etcd',
    etcd.url,
    '--data-dir',
    dataDir,
    '--xds-port',
    '0',
    '--debug-port',
    '0',
    '--ca-port',
    '0',
  ]);
  let port = 0;
  await until(
    'the control plane to start',
    () => {
      if (cp.process.exitCode !== null) throw new Error(`remora control-plane exited:\n${cp.output()}`);
      const m = /xDS on [^\s]+:(\d+), debug on/.exec(cp.output());
      if (m !== null) port = Number(m[1]);
      return m !== null;
    },
    30_000,
  );
  return { ...cp, xdsPort: port };
}

async function stop(cp: Running): Promise<void> {
  cp.process.kill('SIGTERM');
  assert.equal(await cp.exited, 0, cp.output());
}

function decoded(res: Msg): Any[] {
  return (res.resources as Any[]).map((r) => {
    const d = decodeAny(r);
    assert.ok(d.ok);
    return d.value;
  });
}

function addressesOf(assignment: Any): string[] {
  return assignment.endpoints.flatMap((l: Any) =>
    l.lb_endpoints.map(
      (e: Any) =>
        `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`,
    ),
  );
}

/** A sidecar's view: the names of its clusters and the endpoints of reviews, with the stream kept open. */
async function subscribe(
  port: number,
): Promise<{ client: RawAdsClient<Msg, Msg>; clusters: string[]; reviews: string[] }> {
  const client = RawAdsClient.sotw(port);
  clients.push(client);
  client.send({ node: NODE, type_url: CDS, resource_names: [] });
  const cds = await client.next();
  assert.equal(cds.type_url, CDS);
  const clusters = decoded(cds)
    .map((c) => c.name as string)
    .sort();
  client.send({
    type_url: CDS,
    version_info: cds.version_info,
    response_nonce: cds.nonce,
    resource_names: [],
  });
  client.send({ type_url: EDS, resource_names: [REVIEWS] });
  const eds = await client.next();
  assert.equal(eds.type_url, EDS);
  const [reviews] = decoded(eds);
  client.send({
    type_url: EDS,
    version_info: eds.version_info,
    response_nonce: eds.nonce,
    resource_names: [REVIEWS],
  });
  return { client, clusters, reviews: addressesOf(reviews) };
}

/** Reads EDS pushes (ACKing each) until reviews has these endpoints. */
async function endpointsBecome(client: RawAdsClient<Msg, Msg>, want: string[]): Promise<void> {
  for (;;) {
    const res = await client.next(30_000);
    client.send({
      type_url: res.type_url,
      version_info: res.version_info,
      response_nonce: res.nonce,
      resource_names: res.type_url === EDS ? [REVIEWS] : [],
    });
    if (res.type_url !== EDS) continue;
    const a = decoded(res).find((x) => x.cluster_name === REVIEWS);
    if (a !== undefined && addressesOf(a).join() === want.join()) return;
  }
}

/** Retries a write while a restarted etcd becomes reachable again. */
async function retrying(fn: () => Promise<unknown>): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await fn();
      return;
    } catch (err) {
      if (i >= 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

test('a control plane restarted while etcd is down serves the kept mesh, then follows etcd once it is back', async () => {
  const writer = new EtcdManifestWriter({ endpoints: [etcd.url] });
  await writer.put(service);
  await writer.put(slice('10.0.0.1'));
  writer.close();
  const dataDir = join(tmp, 'state');
  const stateFile = join(dataDir, 'sources', 'etcd.json');

  const first = await startControlPlane(dataDir);
  assert.match(first.output(), new RegExp(`data dir ${dataDir} \\(keeps etcd\\)`));
  const live = await subscribe(first.xdsPort);
  assert.ok(live.clusters.includes(REVIEWS), live.clusters.join());
  assert.deepEqual(live.reviews, ['10.0.0.1:8080']);
  await until(
    'the state to be kept',
    () => existsSync(stateFile) && readFileSync(stateFile, 'utf8').includes('10.0.0.1'),
  );
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dataDir, 'sources')).mode & 0o777, 0o700);
  assert.equal(statSync(stateFile).mode & 0o777, 0o600);
  await stop(first);
  await etcd.kill();

  const second = await startControlPlane(dataDir);
  assert.match(
    second.output(),
    /source "etcd" cannot be read \(.*\); serving the 2 objects it gave before, kept in .*etcd\.json \(saved [0-9T:.-]+Z\), until it answers \[RA0403\]/,
  );
  const kept = await subscribe(second.xdsPort);
  assert.deepEqual(kept.clusters, live.clusters);
  assert.deepEqual(kept.reviews, live.reviews);
  const keptText = readFileSync(stateFile, 'utf8');

  await etcd.restart();
  const writer2 = new EtcdManifestWriter({ endpoints: [etcd.url] });
  try {
    await retrying(() => writer2.put(slice('10.0.0.2')));
  } finally {
    writer2.close();
  }
  await endpointsBecome(kept.client, ['10.0.0.2:8080']);
  await until('the problem to clear', () =>
    /resolved: source "etcd" cannot be read .*\[RA0403\]/.test(second.output()),
  );
  await until('the new state to be kept', () => readFileSync(stateFile, 'utf8').includes('10.0.0.2'));
  assert.notEqual(readFileSync(stateFile, 'utf8'), keptText);
  await stop(second);
});

test('a --data-dir that cannot be a directory is refused with exit 2', async () => {
  const file = join(tmp, 'a-file');
  writeFileSync(file, '');
  const cp = run([
    'control-plane',
    '--etcd',
    etcd.url,
    '--data-dir',
    join(file, 'sub'),
    '--xds-port',
    '0',
    '--debug-port',
    '0',
  ]);
  assert.equal(await cp.exited, 2);
  assert.match(
    cp.output(),
    /remora control-plane: --data-dir .*a-file\/sub: .*a-file\/sub: a parent is not a directory/,
  );
});
