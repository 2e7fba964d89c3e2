// Test support: a two-sidecar mesh on loopback with the control plane's CA — `remora control-plane` (files source,
// data dir, CA), app A (namespace frontend, sidecar bound on 127.0.0.2) and app B (namespace backend, sidecar bound
// on 127.0.0.3), both sidecars with workload certificates from join tokens.

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { type RemoraProcess, runRemora, startCaControlPlane, until, untilReady } from './child.js';
import { createJoinToken } from './join_token.js';
import { closedPort, startUpstream, type Upstream } from './upstream.js';
import { adsBootstrap } from './xds.js';

export const FQDN_B = 'b.backend.svc.cluster.local';
export const SPIFFE_A = 'spiffe://cluster.local/ns/frontend/sa/a';
export const SPIFFE_B = 'spiffe://cluster.local/ns/backend/sa/b';
const run = promisify(execFile);

/** Istio's label of a workload whose sidecar has a mesh identity. */
const MESHED = { 'security.istio.io/tlsMode': 'istio' };

export interface MeshSidecar {
  readonly proc: RemoraProcess;
  readonly adminUrl: string;
}

export interface Reply {
  readonly status: number;
  readonly body: string;
}

export interface MtlsMesh {
  readonly dataDir: string;
  readonly caAddress: string;
  readonly appA: Upstream;
  readonly appB: Upstream;
  /** The port of services a and b, which each sidecar's outbound listener binds on its address. */
  readonly svcPort: number;
  readonly a: MeshSidecar;
  readonly b: MeshSidecar;
  /** Replaces the mesh's manifests with the base ones and `extra`; B's workload runs as `serviceAccountB`. */
  writeMesh(extra?: readonly object[], serviceAccountB?: string): void;
  /** What app A does: `method path` to its sidecar's outbound listener for service B, on a new connection. */
  callB(path?: string, method?: string): Promise<Reply>;
  close(): Promise<void>;
}

/** B as a gRPC service instead: its port is named `grpc` (HTTP/2 end to end) and its application listens here. */
export interface MeshOptions {
  readonly controlPlaneArgs?: readonly string[];
  readonly grpcB?: { readonly port: number };
}

function baseManifests(
  appA: Upstream,
  b: { port: number; grpc: boolean },
  svcPort: number,
  serviceAccountB: string,
): object[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'a', namespace: 'frontend' },
      spec: { selector: { app: 'a' }, ports: [{ name: 'http', port: svcPort }] },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'b', namespace: 'backend' },
      spec: { selector: { app: 'b' }, ports: [{ name: b.grpc ? 'grpc' : 'http', port: svcPort }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name: 'a-1', namespace: 'frontend' },
      spec: {
        address: '127.0.0.2',
        serviceAccount: 'a',
        ports: { http: appA.port },
        labels: { app: 'a', ...MESHED },
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name: 'b-1', namespace: 'backend' },
      spec: {
        address: '127.0.0.3',
        serviceAccount: serviceAccountB,
        ports: { [b.grpc ? 'grpc' : 'http']: b.port },
        labels: { app: 'b', ...MESHED },
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Sidecar',
      metadata: { name: 'default', namespace: 'frontend' },
      spec: { egress: [{ hosts: ['./*', 'backend/*'] }] },
    },
  ];
}

/** `remora proxy` driven by ADS, its certificate from the CA by a join token; resolves once ready. */
async function startSidecar(
  dir: string,
  cp: { xdsPort: number; caAddress: string; dataDir: string },
  w: { id: string; ns: string; sa: string; app: string; address: string; inboundPort: number },
  procs: RemoraProcess[],
): Promise<MeshSidecar> {
  const admin = await closedPort();
  const bootstrap = {
    ...(adsBootstrap([cp.xdsPort]) as Record<string, unknown>),
    node: {
      id: w.id,
      cluster: `${w.app}.${w.ns}`,
      metadata: {
        NAMESPACE: w.ns,
        SERVICE_ACCOUNT: w.sa,
        LABELS: { app: w.app, ...MESHED },
        INTERCEPTION_MODE: 'NONE',
        OUTBOUND_BIND_ADDRESS: w.address,
        INBOUND_LISTENER_ADDRESS: `${w.address}:${w.inboundPort}`,
      },
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: admin } } },
  };
  const file = join(dir, `${w.id}.json`);
  writeFileSync(file, JSON.stringify(bootstrap));
  const tokenFile = join(dir, `${w.id}.token`);
  writeFileSync(tokenFile, (await createJoinToken(cp.dataDir, w.ns, w.sa)).token, { mode: 0o600 });
  const proc = runRemora([
    'proxy',
    '-c',
    file,
    '--ca-address',
    cp.caAddress,
    '--join-token-file',
    tokenFile,
    '--xds-cache-dir',
    join(dir, `cache-${w.id}`),
    '--log-level',
    'warning',
  ]);
  procs.push(proc);
  const adminUrl = `http://127.0.0.1:${admin}`;
  await untilReady(`sidecar ${w.id}`, proc, adminUrl, 30_000);
  return { proc, adminUrl };
}

/** Starts the control plane (`controlPlaneArgs` added) and both sidecars; `close()` stops and removes everything. */
export async function startMtlsMesh(opts: MeshOptions = {}): Promise<MtlsMesh> {
  const dir = mkdtempSync(join(tmpdir(), 'remora-mtls-'));
  const configDir = join(dir, 'config');
  const dataDir = join(dir, 'data');
  mkdirSync(configDir);
  const procs: RemoraProcess[] = [];
  const apps: Upstream[] = [];
  const close = async () => {
    await Promise.allSettled(procs.map((p) => p.kill()));
    await Promise.allSettled(apps.map((a) => a.close()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const appA = await startUpstream('a');
    const appB = await startUpstream('b');
    apps.push(appA, appB);
    const svcPort = await closedPort();
    const served = { port: opts.grpcB?.port ?? appB.port, grpc: opts.grpcB !== undefined };
    const writeMesh = (extra: readonly object[] = [], serviceAccountB = 'b') => {
      const docs = [...baseManifests(appA, served, svcPort, serviceAccountB), ...extra];
      const tmp = join(configDir, '.mesh.yaml.tmp');
      writeFileSync(tmp, docs.map((d) => stringify(d)).join('---\n'));
      // Renamed into place, so the watcher never reads half a file.
      renameSync(tmp, join(configDir, 'mesh.yaml'));
    };
    writeMesh();
    const cp = await startCaControlPlane(configDir, dataDir, opts.controlPlaneArgs);
    procs.push(cp.proc);
    const plane = { xdsPort: cp.xdsPort ?? 0, caAddress: cp.caAddress, dataDir };
    const [a, b] = await Promise.all([
      startSidecar(
        dir,
        plane,
        { id: 'sidecar-a', ns: 'frontend', sa: 'a', app: 'a', address: '127.0.0.2', inboundPort: appA.port },
        procs,
      ),
      startSidecar(
        dir,
        plane,
        { id: 'sidecar-b', ns: 'backend', sa: 'b', app: 'b', address: '127.0.0.3', inboundPort: served.port },
        procs,
      ),
    ]);
    return {
      dataDir,
      caAddress: plane.caAddress,
      appA,
      appB,
      svcPort,
      a,
      b,
      writeMesh,
      callB: (path = '/', method = 'GET') => callThrough('127.0.0.2', svcPort, FQDN_B, path, method),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

function callThrough(
  address: string,
  port: number,
  host: string,
  path: string,
  method: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path, method, agent: false, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Polls `check` (a throw counts as false) for up to 20 s. */
export async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  await until(
    what,
    async () => {
      try {
        return await check();
      } catch {
        return false;
      }
    },
    20_000,
  );
}

/** Runs `openssl s_client -connect address:port -ign_eof ...args` with `input` on stdin; its whole output. */
export async function opensslClient(
  address: string,
  port: number,
  args: readonly string[],
  input: string,
): Promise<string> {
  const p = run('openssl', ['s_client', '-connect', `${address}:${port}`, '-ign_eof', ...args], {
    timeout: 10_000,
  });
  p.child.stdin?.end(input);
  try {
    const r = await p;
    return `${r.stdout}${r.stderr}`;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (err.code === 'ENOENT')
      throw new Error('openssl is required by the mTLS tests: apt-get install openssl');
    return `${err.stdout ?? ''}${err.stderr ?? ''}`;
  }
}
