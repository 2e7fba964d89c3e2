// The control plane in process: proxies grouped by what the generator reads, groups dropped when their last
// proxy leaves, policy changes pushed as the types they change, delta streams served the same resources.

import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RawAdsClient } from '../../test/support/ads_client.js';
import { until } from '../../test/support/child.js';
import { decodeAny, XDS_TYPE_URLS } from '../xds/protos.js';
import { ControlPlane } from './server.js';
import { FilesSource } from './sources/files.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/mesh', import.meta.url));
const { cluster: CDS, listener: LDS, route: RDS } = XDS_TYPE_URLS;

type Msg = Record<string, unknown>;

let dir: string;
let cp: ControlPlane;
const logs: string[] = [];
const clients: RawAdsClient<Msg, Msg>[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remora-cp-'));
  cpSync(EXAMPLES, dir, { recursive: true });
  cp = await ControlPlane.start({
    sources: [new FilesSource({ dir, debounceMs: 20 })],
    xdsHost: '127.0.0.1',
    xdsPort: 0,
    debugPort: 0,
    debounceMs: 20,
    log: (level, message) => logs.push(`${level} ${message}`),
  });
});

after(async () => {
  for (const c of clients) c.close();
  await cp.close();
  rmSync(dir, { recursive: true, force: true });
});

const node = (id: string, labels: Record<string, string>) => ({
  id,
  metadata: { NAMESPACE: 'demo', LABELS: labels },
});

function sotw(): RawAdsClient<Msg, Msg> {
  const c = RawAdsClient.sotw(cp.xdsPort);
  clients.push(c);
  return c;
}

test('proxies the generator cannot tell apart share one group; a group goes when its last proxy does', async () => {
  const a = sotw();
  const b = sotw();
  const c = sotw();
  a.send({ node: node('hello-1', { app: 'hello' }), type_url: CDS });
  b.send({ node: node('hello-2', { app: 'hello' }), type_url: CDS });
  c.send({ node: node('echo-1', { app: 'echo', version: 'v1' }), type_url: CDS });
  const [ra, rb, rc] = await Promise.all([a.next(), b.next(), c.next()]);
  assert.equal(ra.version_info, rb.version_info, 'one snapshot for the two hello proxies');
  assert.notEqual(ra.version_info, rc.version_info);
  assert.equal(cp.groupKeys().length, 2);
  a.close();
  b.close();
  await until('the hello group to be dropped', () => cp.groupKeys().length === 1);
  assert.ok(logs.some((l) => /^info proxy group sidecar~demo~\w+: no proxy left$/.test(l)));
});

test('a VirtualService edit pushes the routes it changes, and a delta stream gets the same resources', async () => {
  const s = sotw();
  s.send({ node: node('hello-3', { app: 'hello' }), type_url: RDS, resource_names: ['80'] });
  const first = await s.next();
  s.send({
    type_url: RDS,
    resource_names: ['80'],
    version_info: first.version_info,
    response_nonce: first.nonce,
  });
  const d = RawAdsClient.delta(cp.xdsPort);
  clients.push(d);
  d.send({ node: node('hello-4', { app: 'hello' }), type_url: LDS });
  const deltaLds = await d.next();
  const names = (deltaLds.resources as { name: string }[]).map((r) => r.name).sort();
  assert.deepEqual(names, ['0.0.0.0_80', 'virtualInbound', 'virtualOutbound']);

  const file = join(dir, 'hello.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('timeout: 5s', 'timeout: 7s'));
  const pushed = await s.next();
  assert.equal(pushed.type_url, RDS);
  const decoded = decodeAny((pushed.resources as Parameters<typeof decodeAny>[0][])[0]!);
  assert.ok(decoded.ok);
  const hello = (decoded.value.virtual_hosts as Msg[]).find(
    (v) => v.name === 'hello.demo.svc.cluster.local:80',
  );
  assert.ok(hello !== undefined);
  assert.equal(((hello.routes as Msg[])[0]!.route as Msg).timeout, '7s');
  // The listeners did not change: the delta stream, subscribed to them only, hears nothing more.
  assert.equal(d.pending, 0);
});
