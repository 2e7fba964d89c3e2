// The mesh on loopback, every part real: etcd, two `remora control-plane` replicas reading it, two `remora proxy`
// sidecars driven by ADS without capture (INTERCEPTION_MODE NONE, each bound to its own loopback address), and
// HTTP services declared by manifests written to etcd. Route and endpoint changes under load, a replica killed,
// a listener one sidecar cannot bind (NACKed, shown by proxy-status), a sidecar restarted while no control plane
// runs.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { EtcdManifestWriter } from '../src/controlplane/sources/etcd_writer.js';
import { REMORA_BIN, type RemoraProcess, runRemora, until, untilReady } from './support/child.js';
import { curl } from './support/clients.js';
import { type EtcdServer, startEtcd } from './support/etcd.js';
import { closedPort, startUpstream, type Upstream } from './support/upstream.js';
import { adsBootstrap } from './support/xds.js';

const NS = 'mesh';
/** What app A sends as Host; policies name the service by its full hostname (`b.mesh` would be a host of its own). */
const HOST_B = `b.${NS}`;
const FQDN_B = `b.${NS}.svc.cluster.local`;

interface Replica extends RemoraProcess {
  readonly xdsPort: number;
  readonly debugPort: number;
}

async function startReplica(etcdUrl: string, configDir: string): Promise<Replica> {
  mkdirSync(configDir);
  const proc = runRemora([
    'control-plane',
    '--etcd',
    etcdUrl,
    '--config-dir',
    configDir,
    '--xds-port',
    '0',
    '--debug-port',
    '0',
  ]);
  let ports: RegExpExecArray | null = null;
  await until('the control plane to start', () => {
    if (proc.process.exitCode !== null) throw new Error(`remora control-plane exited:\n${proc.output()}`);
    ports = /xDS on [^\s]+:(\d+), debug on [^\s]+:(\d+)/.exec(proc.output());
    return ports !== null;
  });
  const m = ports as unknown as RegExpExecArray;
  return { ...proc, xdsPort: Number(m[1]), debugPort: Number(m[2]) };
}

interface Sidecar extends RemoraProcess {
  readonly adminUrl: string;
}

/** `remora proxy` with a bootstrap of node, admin and ads_config alone (its envoy_grpc cluster: both replicas). */
async function startSidecar(dir: string, bootstrap: object, opts: { ready: boolean }): Promise<Sidecar> {
  const b = bootstrap as {
    admin: { address: { socket_address: { port_value: number } } };
    node: { id: string };
  };
  const file = join(dir, `${b.node.id}.json`);
  writeFileSync(file, JSON.stringify(bootstrap));
  const proc = runRemora([
    'proxy',
    '-c',
    file,
    '--xds-cache-dir',
    join(dir, 'cache'),
    '--log-level',
    'warning',
  ]);
  const adminUrl = `http://127.0.0.1:${b.admin.address.socket_address.port_value}`;
  if (opts.ready) await untilReady('the sidecar', proc, adminUrl);
  return { ...proc, adminUrl };
}

interface Reply {
  readonly status: number;
  readonly upstream: string;
}

/** What app A does: a GET to `address:port` (its sidecar's bound listener) naming the service in Host. */
function call(address: string, port: number, host: string, agent: Agent | false = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path: '/', agent, headers: { host } }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, upstream: String(res.headers['x-upstream'] ?? '-') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** GETs back to back on keep-alive connections until stopped; every request is counted, answered or not. */
function load(address: string, port: number, host: string, concurrency = 4) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const counts: Record<string, number> = {};
  const errors: string[] = [];
  const recent: string[] = [];
  let total = 0;
  let stopped = false;
  const worker = async () => {
    while (!stopped) {
      total++;
      try {
        const r = await call(address, port, host, agent);
        const key = `${r.status} ${r.upstream}`;
        counts[key] = (counts[key] ?? 0) + 1;
        recent.push(r.upstream);
        if (recent.length > 20) recent.shift();
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  };
  const running = Promise.all(Array.from({ length: concurrency }, worker));
  return {
    get total() {
      return total;
    },
    /** The upstreams of the last 20 responses. */
    recent: () => [...recent],
    async stop() {
      stopped = true;
      await running;
      agent.destroy();
      const answered = Object.values(counts).reduce((s, n) => s + n, 0);
      return { counts, errors, total, answered };
    },
  };
}

function proxyStatus(replica: Replica): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [REMORA_BIN, 'proxy-status', '--control-plane', `127.0.0.1:${replica.debugPort}`],
      { timeout: 10_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`proxy-status: ${err.message} ${stderr}`)) : resolve(stdout),
    );
  });
}

const service = (name: string, port: number) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: NS },
  spec: { selector: { app: name }, ports: [{ name: 'http', port }] },
});

const workload = (name: string, app: string, version: string, port: number) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name, namespace: NS },
  spec: { address: '127.0.0.1', ports: { http: port }, labels: { app, version } },
});

const routeB = (v1: number, v2: number) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'b', namespace: NS },
  spec: {
    hosts: [FQDN_B],
    http: [
      {
        route: [
          { destination: { host: FQDN_B, subset: 'v1' }, weight: v1 },
          { destination: { host: FQDN_B, subset: 'v2' }, weight: v2 },
        ],
      },
    ],
  },
});

let dir: string;
let etcd: EtcdServer;
let writer: EtcdManifestWriter;
const upstreams: Upstream[] = [];
const procs: RemoraProcess[] = [];
let replicas: Replica[];
let sidecarA: Sidecar;
let sidecarB: Sidecar;
let bootstrapA: object;
/** The service port: every service listens on it, and each sidecar's outbound listener binds it on its address. */
let svcPort: number;
let inboundPortB: number;
let b1: Upstream;
let b2: Upstream;

function sidecarBootstrap(
  id: string,
  labels: Record<string, string>,
  bind: string,
  inbound: string,
  admin: number,
) {
  const b = adsBootstrap(replicas.map((r) => r.xdsPort)) as Record<string, unknown>;
  return {
    ...b,
    node: {
      id,
      cluster: `${labels.app}.${NS}`,
      metadata: {
        NAMESPACE: NS,
        LABELS: labels,
        INTERCEPTION_MODE: 'NONE',
        OUTBOUND_BIND_ADDRESS: bind,
        INBOUND_LISTENER_ADDRESS: inbound,
      },
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: admin } } },
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remora-mesh-'));
  etcd = await startEtcd();
  writer = new EtcdManifestWriter({ endpoints: [etcd.url] });
  const a = await startUpstream('a');
  b1 = await startUpstream('b1');
  b2 = await startUpstream('b2');
  upstreams.push(a, b1, b2);
  svcPort = await closedPort();
  inboundPortB = await closedPort();
  for (const m of [
    service('a', svcPort),
    service('b', svcPort),
    workload('a-1', 'a', 'v1', a.port),
    workload('b-v1', 'b', 'v1', b1.port),
    workload('b-v2', 'b', 'v2', b2.port),
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'b', namespace: NS },
      spec: {
        host: FQDN_B,
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          { name: 'v2', labels: { version: 'v2' } },
        ],
      },
    },
    routeB(100, 0),
  ])
    await writer.put(m);
  replicas = await Promise.all([0, 1].map((i) => startReplica(etcd.url, join(dir, `config-${i}`))));
  procs.push(...replicas);
  bootstrapA = sidecarBootstrap(
    'sidecar-a',
    { app: 'a', version: 'v1' },
    '127.0.0.2',
    '127.0.0.2:15006',
    await closedPort(),
  );
  const bootstrapB = sidecarBootstrap(
    'sidecar-b',
    { app: 'b', version: 'v1' },
    '127.0.0.3',
    `127.0.0.3:${inboundPortB}`,
    await closedPort(),
  );
  [sidecarA, sidecarB] = await Promise.all([
    startSidecar(join(dir), bootstrapA, { ready: true }),
    startSidecar(join(dir), bootstrapB, { ready: true }),
  ]);
  procs.push(sidecarA, sidecarB);
});

after(async () => {
  await Promise.allSettled(procs.map((p) => p.kill()));
  writer?.close();
  await etcd?.stop();
  await Promise.allSettled(upstreams.map((u) => u.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('app A reaches service B through its sidecar bound on 127.0.0.2; B is reached through its inbound listener', async () => {
  // The sidecars got their listeners from the control plane: wait for A's outbound listener to route to B.
  await until('sidecar A to route to b', async () => {
    try {
      return (await call('127.0.0.2', svcPort, HOST_B)).upstream === 'b1';
    } catch {
      return false;
    }
  });
  const r = await call('127.0.0.2', svcPort, `${HOST_B}:${svcPort}`);
  assert.deepEqual(r, { status: 200, upstream: 'b1' });
  // The other sidecar binds its own address: the same port, no collision; it reaches a.
  assert.equal((await call('127.0.0.3', svcPort, `a.${NS}`)).upstream, 'a');
  // A host the mesh does not know is refused (no passthrough without capture).
  assert.equal((await call('127.0.0.2', svcPort, 'unknown.example')).status, 502);
  // Sidecar B's inbound listener forwards to its own workload (b-v1, the WorkloadEntry with its labels).
  assert.equal((await call('127.0.0.3', inboundPortB, 'anything')).upstream, 'b1');
});

test('an AuthorizationPolicy "deny /admin for everyone" is enforced by B\'s sidecar: 403, and B never sees it', async () => {
  const policy = {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'no-admin', namespace: NS },
    spec: {
      selector: { matchLabels: { app: 'b' } },
      action: 'DENY',
      rules: [{ to: [{ operation: { paths: ['/admin', '/admin/*'] } }] }],
    },
  };
  const url = (path: string) => `http://127.0.0.3:${inboundPortB}${path}`;
  await writer.put(policy);
  try {
    await until('the policy to reach sidecar B', async () => (await curl([url('/admin/x')])).status === 403);
    const seen = b1.requests.length;
    const denied = await curl([url('/admin')]);
    assert.equal(denied.status, 403);
    assert.equal(denied.body, 'RBAC: access denied');
    const allowed = await curl([url('/api/list')]);
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers['x-upstream'], 'b1');
    assert.deepEqual(
      b1.requests.slice(seen).map((r) => r.url),
      ['/api/list'],
    );
  } finally {
    await writer.delete(policy);
  }
  await until('the policy to be lifted', async () => (await curl([url('/admin')])).status === 200);
});

test('a VirtualService weight change 100/0 -> 0/100 under continuous load loses no request', async () => {
  const l = load('127.0.0.2', svcPort, HOST_B);
  try {
    await until('traffic to flow', () => l.total > 50);
    await writer.put(routeB(0, 100));
    await until(
      'traffic to move to v2',
      () => l.recent().length === 20 && l.recent().every((u) => u === 'b2'),
    );
  } finally {
    const r = await l.stop();
    assert.deepEqual(r.errors, []);
    assert.equal(r.answered, r.total, JSON.stringify(r));
    assert.deepEqual(Object.keys(r.counts).sort(), ['200 b1', '200 b2'], JSON.stringify(r.counts));
  }
});

test('an endpoint added to and removed from etcd shifts traffic within a second', async () => {
  const b3 = await startUpstream('b3');
  upstreams.push(b3);
  const l = load('127.0.0.2', svcPort, HOST_B, 2);
  try {
    await until('traffic on v2', () => l.recent().length === 20);
    let changed = Date.now();
    await writer.put(workload('b-v2-extra', 'b', 'v2', b3.port));
    await until('the new endpoint to answer', () => l.recent().includes('b3'), 5000);
    assert.ok(Date.now() - changed < 1000, `added: ${Date.now() - changed} ms`);
    changed = Date.now();
    await writer.delete(workload('b-v2', 'b', 'v2', b2.port));
    await until(
      'the removed endpoint to get nothing',
      () =>
        l
          .recent()
          .slice(-10)
          .every((u) => u === 'b3'),
      5000,
    );
    assert.ok(Date.now() - changed < 1000, `removed: ${Date.now() - changed} ms`);
  } finally {
    const r = await l.stop();
    assert.deepEqual(r.errors, []);
    assert.equal(r.answered, r.total);
  }
});

/** The proxy-status row of `node` on whichever replica its stream is on, or undefined while on none. */
async function statusRow(node: string): Promise<string | undefined> {
  const statuses = await Promise.all(replicas.map(proxyStatus));
  const re = new RegExp(`^${node}\\s.*$`, 'm');
  for (const s of statuses) {
    const m = re.exec(s);
    if (m !== null) return m[0];
  }
  return undefined;
}

/** A plain TCP server holding `address`:0, as another program on the host would hold a port. */
function occupy(address: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer((c) => c.destroy());
    s.once('error', reject);
    s.listen(0, address, () => resolve(s));
  });
}

test('a listener sidecar A cannot bind is NACKed: its traffic is untouched, proxy-status shows it, a later push heals it', async () => {
  const c = await startUpstream('c');
  upstreams.push(c);
  const blocker = await occupy('127.0.0.2');
  let blocked = true;
  const port = (blocker.address() as { port: number }).port;
  // A TCP port: its listener (tcp_proxy) names no RDS table, so it is bound while the LDS response is applied.
  const serviceC = (ports: number[]) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'c', namespace: NS },
    spec: { ports: ports.map((p, i) => ({ name: `tcp-${i}`, port: p, targetPort: c.port })) },
  });
  const sliceC = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'c-1', namespace: NS, labels: { 'kubernetes.io/service-name': 'c' } },
    addressType: 'IPv4',
    ports: [{ name: 'tcp-0', port: c.port }],
    endpoints: [{ addresses: ['127.0.0.1'] }],
  };
  const l = load('127.0.0.2', svcPort, HOST_B, 2);
  try {
    await until('traffic to flow', () => l.total > 20);
    await writer.put(serviceC([port]));
    await writer.put(sliceC);
    // Sidecar B binds 127.0.0.3, where the port is free: it gets the new listener and serves c.
    await until('sidecar B to serve c', async () => {
      try {
        return (await call('127.0.0.3', port, `c.${NS}`)).upstream === 'c';
      } catch {
        return false;
      }
    });
    await until('sidecar B to be SYNCED', async () =>
      /^sidecar-b\s+b\.mesh\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s+-$/m.test(
        (await statusRow('sidecar-b')) ?? '',
      ),
    );
    // Sidecar A cannot bind 127.0.0.2:port: its LDS is NACKed with the bind error and stays STALE.
    let rowA: string | undefined;
    await until("proxy-status to show sidecar A's LDS NACK", async () => {
      rowA = await statusRow('sidecar-a');
      return rowA !== undefined && /\sLDS at \S+: .*127\.0\.0\.2:/.test(rowA);
    }).catch((err: Error) => {
      throw new Error(`${err.message}; last row: ${rowA}\n${sidecarA.output().slice(-2000)}`);
    });
    assert.match(rowA!, /^sidecar-a\s+a\.mesh\s+\S+\s+STALE\s/, rowA);
    assert.match(rowA!, new RegExp(`LDS at \\S+: .*127\\.0\\.0\\.2:${port}.*EADDRINUSE`), rowA);
    // The port is freed and the service gets a second port, so that sidecar A's listeners change and the
    // control plane sends LDS again (a change that leaves its listeners as they were sends no LDS): A ACKs.
    await new Promise<void>((r) => blocker.close(() => r()));
    blocked = false;
    await writer.put(serviceC([port, await closedPort()]));
    await until(
      'sidecar A to serve c',
      async () => {
        try {
          return (await call('127.0.0.2', port, `c.${NS}`)).upstream === 'c';
        } catch {
          return false;
        }
      },
      5000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; sidecar A: ${await statusRow('sidecar-a')}`);
    });
    await until('sidecar A to be SYNCED', async () =>
      /^sidecar-a\s+a\.mesh\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s/m.test(
        (await statusRow('sidecar-a')) ?? '',
      ),
    );
  } finally {
    if (blocked) blocker.close();
    const r = await l.stop();
    assert.deepEqual(r.errors, []);
    assert.equal(r.answered, r.total, JSON.stringify(r));
    assert.deepEqual(Object.keys(r.counts), ['200 b3'], JSON.stringify(r.counts));
  }
});

test('the replica sidecar A is connected to is killed: traffic continues, and the other replica shows it', async () => {
  const statuses = await Promise.all(replicas.map(proxyStatus));
  const connected = statuses.findIndex((s) => s.includes('sidecar-a'));
  assert.notEqual(connected, -1, `sidecar-a is connected to a replica:\n${statuses.join('\n')}`);
  const other = replicas[1 - connected]!;
  const l = load('127.0.0.2', svcPort, HOST_B, 2);
  try {
    await until('traffic to flow', () => l.total > 20);
    await replicas[connected]!.kill();
    await until('the other replica to show sidecar-a SYNCED', async () =>
      /^sidecar-a\s+a\.mesh\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s+-$/m.test(await proxyStatus(other)),
    );
    const before = l.total;
    await until('more traffic after the failover', () => l.total > before + 20);
  } finally {
    const r = await l.stop();
    assert.deepEqual(r.errors, []);
    assert.equal(r.answered, r.total);
    assert.deepEqual(Object.keys(r.counts), ['200 b3'], JSON.stringify(r.counts));
  }
});

test('a sidecar restarted while both control planes are down boots from its cache and serves', async () => {
  await Promise.all(replicas.map((r) => r.kill()));
  await sidecarA.kill();
  const restarted = await startSidecar(dir, bootstrapA, { ready: true });
  procs.push(restarted);
  const r = await call('127.0.0.2', svcPort, HOST_B);
  assert.deepEqual(r, { status: 200, upstream: 'b3' });
});
