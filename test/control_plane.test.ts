// Integration: `remora control-plane --config-dir` as a real process, a raw ADS client as the proxy, and
// `remora proxy-status` as a real process: CDS/EDS/LDS/RDS for the node's identity, an EndpointSlice edit pushed
// as EDS alone within a second, SYNCED after ACKs, the NACK message after a NACK, malformed nodes refused.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeAny, XDS_TYPE_URLS } from '../src/xds/protos.js';
import { RawAdsClient } from './support/ads_client.js';
import { until } from './support/child.js';

const BIN = fileURLToPath(new URL('../../bin/remora', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../examples/mesh', import.meta.url));
const { cluster: CDS, endpoint: EDS, listener: LDS, route: RDS } = XDS_TYPE_URLS;

type Msg = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: reading deep into decoded resources in assertions
type Any = any;

/** The node of the "hello" workload's sidecar. */
const NODE = {
  id: 'sidecar~127.0.0.1~hello-1.demo~demo.svc.cluster.local',
  cluster: 'hello.demo',
  metadata: {
    NAMESPACE: 'demo',
    LABELS: { app: 'hello' },
    INSTANCE_IPS: '127.0.0.1',
    WORKLOAD_NAME: 'hello',
  },
};

let dir: string;
let child: ChildProcess;
let output = '';
let xdsPort = 0;
let debugPort = 0;
const clients: RawAdsClient<Msg, Msg>[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remora-control-plane-'));
  cpSync(EXAMPLE, dir, { recursive: true });
  child = spawn(
    process.execPath,
    [BIN, 'control-plane', '--config-dir', dir, '--xds-port', '0', '--debug-port', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  await until(
    'the control plane to start',
    () => {
      if (child.exitCode !== null)
        throw new Error(`remora control-plane exited with ${child.exitCode}:\n${output}`);
      const m = /xDS on [^\s]+:(\d+), debug on [^\s]+:(\d+)/.exec(output);
      if (m === null) return false;
      xdsPort = Number(m[1]);
      debugPort = Number(m[2]);
      return true;
    },
    30_000,
  );
});

after(async () => {
  for (const c of clients) c.close();
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

function proxyStatus(): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [BIN, 'proxy-status', '--control-plane', `127.0.0.1:${debugPort}`],
      { timeout: 20_000 },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { killed?: boolean }) | null;
        if (e?.killed) return reject(new Error(`remora proxy-status did not finish: ${stderr}`));
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

/** The row of the proxy-status table for our node. */
async function statusRow(): Promise<string> {
  const r = await proxyStatus();
  assert.equal(r.code, 0, r.stderr);
  const header = r.stdout.split('\n')[0]!;
  assert.match(header, /^NAME\s+CLUSTER\s+CDS\s+LDS\s+EDS\s+RDS\s+LAST NACK$/);
  return r.stdout.split('\n').find((l) => l.startsWith(NODE.id)) ?? '';
}

function decoded(res: Msg): Any[] {
  return (res.resources as Any[]).map((r) => {
    const d = decodeAny(r);
    assert.ok(d.ok);
    return d.value;
  });
}

/** What the client subscribes to, per type: state-of-the-world requests (ACKs too) repeat the full list. */
const subscribed = new Map<unknown, string[]>();

function subscribe(client: RawAdsClient<Msg, Msg>, typeUrl: string, names: string[], node?: Msg): void {
  subscribed.set(typeUrl, names);
  client.send({ ...(node && { node }), type_url: typeUrl, resource_names: names });
}

function ack(client: RawAdsClient<Msg, Msg>, res: Msg): void {
  client.send({
    type_url: res.type_url,
    version_info: res.version_info,
    response_nonce: res.nonce,
    resource_names: subscribed.get(res.type_url) ?? [],
  });
}

/** Rewrites the hello EndpointSlice with these addresses. */
function helloEndpoints(addresses: readonly string[]): void {
  const file = join(dir, 'hello.yaml');
  const text = readFileSync(file, 'utf8');
  const replaced = text.replace(
    /endpoints:\n(- addresses: .*\n {2}conditions:\n {4}ready: true\n)+/,
    `endpoints:\n${addresses.map((a) => `- addresses: ["${a}"]\n  conditions:\n    ready: true\n`).join('')}`,
  );
  assert.notEqual(replaced, text, 'the EndpointSlice was found');
  writeFileSync(file, replaced);
}

let client: RawAdsClient<Msg, Msg>;

test('a sidecar gets CDS, EDS, LDS and RDS generated for its identity, and shows SYNCED once it has ACKed', async () => {
  client = RawAdsClient.sotw(xdsPort);
  clients.push(client);
  subscribe(client, CDS, [], NODE);
  const cds = await client.next();
  assert.equal(cds.type_url, CDS);
  const clusters = decoded(cds);
  const names = clusters.map((c) => c.name).sort();
  assert.deepEqual(names, [
    'BlackHoleCluster',
    'InboundPassthroughCluster',
    'PassthroughCluster',
    'inbound|8081||',
    'outbound|80|v1|echo.demo.svc.cluster.local',
    'outbound|80|v2|echo.demo.svc.cluster.local',
    'outbound|80||echo.demo.svc.cluster.local',
    'outbound|80||hello.demo.svc.cluster.local',
  ]);
  ack(client, cds);

  const edsNames = clusters.filter((c) => c.type === 'EDS').map((c) => c.name);
  subscribe(client, EDS, edsNames);
  const eds = await client.next();
  assert.equal(eds.type_url, EDS);
  const hello = decoded(eds).find((c) => c.cluster_name === 'outbound|80||hello.demo.svc.cluster.local');
  assert.deepEqual(
    hello.endpoints.flatMap((l: Any) => l.lb_endpoints.map((e: Any) => e.endpoint.address.socket_address)),
    [{ address: '127.0.0.1', port_value: 8081 }],
  );
  ack(client, eds);

  subscribe(client, LDS, []);
  const lds = await client.next();
  assert.equal(lds.type_url, LDS);
  const listeners = decoded(lds);
  assert.deepEqual(
    listeners.map((l) => l.name),
    ['virtualOutbound', '0.0.0.0_80', 'virtualInbound'],
  );
  const inbound = listeners.find((l) => l.name === 'virtualInbound');
  assert.ok(
    inbound.filter_chains.some((c: Any) => c.filter_chain_match?.destination_port === 8081),
    'the inbound listener has the chain of the port hello serves',
  );
  ack(client, lds);

  subscribe(client, RDS, ['80']);
  const rds = await client.next();
  assert.equal(rds.type_url, RDS);
  const [routes] = decoded(rds);
  assert.deepEqual(
    routes.virtual_hosts.map((v: Any) => v.name),
    ['echo.demo.svc.cluster.local:80', 'hello.demo.svc.cluster.local:80', 'block_all'],
  );
  ack(client, rds);

  await until('proxy-status to show the proxy SYNCED', async () => {
    const row = await statusRow();
    return /^\S+\s+hello\.demo\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s+-$/.test(row);
  });
});

test('an EndpointSlice edit is pushed within a second, as EDS only, with the new endpoints', async () => {
  const changedAt = Date.now();
  helloEndpoints(['127.0.0.1', '127.0.0.2']);
  const res = await client.next(5000);
  const elapsed = Date.now() - changedAt;
  assert.equal(res.type_url, EDS, 'the first push after an endpoint change is EDS');
  assert.ok(elapsed < 1000, `pushed ${elapsed} ms after the file was written`);
  const sent = decoded(res);
  assert.deepEqual(
    sent.map((c) => c.cluster_name),
    ['outbound|80||hello.demo.svc.cluster.local'],
    'only the assignment that changed',
  );
  assert.deepEqual(
    sent[0].endpoints.flatMap((l: Any) =>
      l.lb_endpoints.map((e: Any) => e.endpoint.address.socket_address.address),
    ),
    ['127.0.0.1', '127.0.0.2'],
  );
  ack(client, res);
  // Every type is SYNCED again: had CDS, LDS or RDS been pushed, they would be waiting unACKed (STALE).
  await until('proxy-status to show the proxy SYNCED', async () =>
    /\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s+-$/.test(await statusRow()),
  );
  assert.equal(client.pending, 0, 'nothing but EDS was pushed');
});

test('a NACK shows in proxy-status with its message, and the type as STALE', async () => {
  helloEndpoints(['127.0.0.3']);
  const res = await client.next(5000);
  assert.equal(res.type_url, EDS);
  client.send({
    type_url: EDS,
    resource_names: subscribed.get(EDS),
    version_info: 'previous',
    response_nonce: res.nonce,
    error_detail: { code: 3, message: 'clusters[0]: endpoint 127.0.0.3 refused by the test' },
  });
  let row = '';
  await until('proxy-status to show the NACK', async () => {
    row = await statusRow();
    return row.includes('endpoint 127.0.0.3 refused by the test');
  });
  assert.match(
    row,
    /\s+SYNCED\s+SYNCED\s+STALE\s+SYNCED\s+EDS at \S+: clusters\[0\]: endpoint 127\.0\.0\.3 refused by the test$/,
  );
});

test('a node with malformed metadata is refused with the field path', async () => {
  const bad = RawAdsClient.sotw(xdsPort);
  clients.push(bad);
  bad.send({ node: { id: 'broken', metadata: { LABELS: 'app=hello' } }, type_url: CDS });
  const status = await bad.status;
  assert.equal(status.code, 3, 'INVALID_ARGUMENT');
  assert.match(status.details, /node\.metadata\.LABELS: expected an object of label names to strings/);
});

test('proxy-status explains an unreachable control plane', async () => {
  const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, 'proxy-status', '--control-plane', '127.0.0.1:1'], (err, _o, stderr) =>
      resolve({ code: (err as { code?: number } | null)?.code ?? 0, stderr }),
    );
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot read http:\/\/127\.0\.0\.1:1\/debug\/syncz/);
});
