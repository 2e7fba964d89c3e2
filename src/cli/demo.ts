// `remora demo` (and `npm start`): a small mesh on loopback run through the control plane — `remora control-plane`
// reading examples/mesh-demo with its CA, the demo services, and a `remora proxy` per workload driven by ADS without
// capture, each with a workload certificate from a join token: every hop between sidecars is mTLS.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adsBootstrap } from './ads_bootstrap.js';
import { runTokenCreate } from './token.js';

/**
 * The first of these paths that exists, relative to the bundle (dist/remora.mjs, or a chunk of it in dist/chunks/)
 * or to dist/src/cli/demo.js.
 */
function find(paths: readonly string[]): string | undefined {
  return paths.map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((p) => existsSync(p));
}

const BIN = find(['../bin/remora', '../../bin/remora', '../../../bin/remora']) as string;
const MESH_DIR = find(['../examples/mesh-demo', '../../examples/mesh-demo', '../../../examples/mesh-demo']);

const CA_PORT = 15012;
const DEBUG_PORT = 15014;
/** Istio's label of a workload whose sidecar has a mesh identity (the WorkloadEntries carry it too). */
const MESHED = { 'security.istio.io/tlsMode': 'istio' };
/** The port of both services in examples/mesh-demo: each sidecar's outbound listener binds it on its address. */
const SERVICE_PORT = 10000;

/** A workload of examples/mesh-demo: where its application listens, and its sidecar's node and addresses. */
interface Workload {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Its identity: spiffe://cluster.local/ns/demo/sa/<serviceAccount>. */
  readonly serviceAccount: string;
  /** The application, on 127.0.0.1 (the port its WorkloadEntry registers). */
  readonly appPort: number;
  /** The sidecar's outbound listeners bind here, on the service port. */
  readonly outbound: string;
  /** The sidecar's inbound listener: the WorkloadEntry's address, on the same port. */
  readonly inbound: string;
  readonly adminPort: number;
  readonly handler: Parameters<typeof createServer>[1];
}

const text =
  (body: string): Parameters<typeof createServer>[1] =>
  (req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`${body} (you asked for ${req.url})\n`);
  };

const echo =
  (version: string): Parameters<typeof createServer>[1] =>
  (req, res) => {
    res.setHeader('content-type', 'application/json');
    const reply = { service: 'echo', version, method: req.method, url: req.url, headers: req.headers };
    res.end(`${JSON.stringify(reply, null, 2)}\n`);
  };

const WORKLOADS: readonly Workload[] = [
  {
    name: 'hello',
    labels: { app: 'hello', ...MESHED },
    serviceAccount: 'hello',
    appPort: 18081,
    outbound: '127.0.0.1',
    inbound: '127.0.0.2',
    adminPort: 15000,
    handler: text('hello from the hello service'),
  },
  {
    name: 'echo-v1',
    labels: { app: 'echo', version: 'v1', ...MESHED },
    serviceAccount: 'echo',
    appPort: 18082,
    outbound: '127.0.0.3',
    inbound: '127.0.0.3',
    adminPort: 15100,
    handler: echo('v1'),
  },
  {
    name: 'echo-v2',
    labels: { app: 'echo', version: 'v2', ...MESHED },
    serviceAccount: 'echo',
    appPort: 18083,
    outbound: '127.0.0.4',
    inbound: '127.0.0.4',
    adminPort: 15200,
    handler: echo('v2'),
  },
];

/** A sidecar bootstrap: its node (INTERCEPTION_MODE NONE), its admin, and the control plane over ADS. Nothing else. */
function bootstrap(w: Workload): Record<string, unknown> {
  return adsBootstrap({
    node: {
      id: `${w.name}-sidecar`,
      cluster: `${w.labels.app}.demo`,
      metadata: {
        NAMESPACE: 'demo',
        SERVICE_ACCOUNT: w.serviceAccount,
        LABELS: w.labels,
        WORKLOAD_NAME: w.name,
        INTERCEPTION_MODE: 'NONE',
        OUTBOUND_BIND_ADDRESS: w.outbound,
        INBOUND_LISTENER_ADDRESS: `${w.inbound}:${w.appPort}`,
      },
    },
    adminPort: w.adminPort,
    // xDS over mTLS too, on the CA's port: the sidecar's own certificate is its credential there.
    controlPlanes: [{ address: '127.0.0.1', port: CA_PORT }],
    tls: {},
  });
}

async function listen(server: Server, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 100 ms for up to 20 s; fails early when `child` exits. */
async function waitFor(what: string, child: ChildProcess, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${what}: the process exited with code ${child.exitCode}`);
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what}: not after 20 s`);
}

/** GET through a sidecar's outbound listener with `host` as Host; resolves with the status. */
function probe(address: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port: SERVICE_PORT, path: '/', headers: { host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A single-use join token for `spiffe://cluster.local/ns/demo/sa/<sa>`, as `remora token create` makes it. */
async function joinToken(dataDir: string, serviceAccount: string): Promise<string> {
  let token = '';
  let said = '';
  const code = await runTokenCreate(
    { namespace: 'demo', serviceAccount, dataDir },
    { write: (t: string) => (token += t) },
    { write: (t: string) => (said += t) },
  );
  if (code !== 0) throw new Error(said.trim());
  return token.trim();
}

function prefixLines(tag: string, d: Buffer): string {
  return d
    .toString()
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => `[${tag}] ${l}\n`)
    .join('');
}

export async function runDemo(): Promise<number> {
  if (MESH_DIR === undefined) {
    process.stderr.write('remora demo: examples/mesh-demo not found beside bin/remora\n');
    return 1;
  }
  const servers = WORKLOADS.map((w) => createServer(w.handler));
  const dir = mkdtempSync(join(tmpdir(), 'remora-demo-'));
  const children: ChildProcess[] = [];
  const start = (tag: string, args: string[]): ChildProcess => {
    // The program itself, as users run it: it starts Node with Remora's flags.
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => process.stdout.write(prefixLines(tag, d)));
    child.stderr?.on('data', (d: Buffer) => process.stderr.write(prefixLines(tag, d)));
    children.push(child);
    return child;
  };
  const exited = () =>
    Promise.all(
      children.map((c) =>
        c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)),
      ),
    );
  const stop = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  };
  const cleanUp = async () => {
    stop();
    await exited();
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await Promise.all(servers.map((s, i) => listen(s, WORKLOADS[i]!.appPort)));
    let cpOutput = '';
    const dataDir = join(dir, 'control-plane');
    const cp = start('control-plane', [
      'control-plane',
      '--config-dir',
      MESH_DIR,
      '--data-dir',
      dataDir,
      '--no-plaintext-xds',
      '--ca-port',
      String(CA_PORT),
      '--debug-port',
      String(DEBUG_PORT),
    ]);
    cp.stdout?.on('data', (d: Buffer) => {
      cpOutput += d.toString();
    });
    await waitFor('remora control-plane', cp, async () => cpOutput.includes('xDS over mTLS'));
    for (const w of WORKLOADS) {
      const file = join(dir, `${w.name}-sidecar.json`);
      writeFileSync(file, JSON.stringify(bootstrap(w), null, 2));
      const tokenFile = join(dir, `${w.name}.token`);
      writeFileSync(tokenFile, await joinToken(dataDir, w.serviceAccount), { mode: 0o600 });
      const sidecar = start(`${w.name}-sidecar`, [
        'proxy',
        '-c',
        file,
        '--xds-cache-dir',
        join(dir, 'xds-cache'),
        '--drain-time-s',
        '1',
        '--ca-address',
        `127.0.0.1:${CA_PORT}`,
        '--join-token-file',
        tokenFile,
      ]);
      await waitFor(`${w.name}-sidecar`, sidecar, async () => {
        const r = await fetch(`http://127.0.0.1:${w.adminPort}/ready`);
        await r.text();
        return r.ok;
      });
    }
    // Ready means configured; the first request through the mesh shows the whole path answers.
    await waitFor('the mesh', cp, async () => (await probe('127.0.0.1', 'echo.demo')) === 200);
  } catch (err) {
    process.stderr.write(`remora demo: ${(err as Error).message}\n`);
    await cleanUp();
    return 1;
  }
  const url = `http://127.0.0.1:${SERVICE_PORT}`;
  process.stdout.write(
    [
      '',
      'Remora demo mesh is running: remora control-plane (files source: examples/mesh-demo; CA and xDS over mTLS on',
      '15012) and three sidecars driven by it, without capture (INTERCEPTION_MODE NONE: the application dials its',
      'sidecar). Each sidecar got its SPIFFE certificate with a join token and uses it for xDS and for every hop to',
      'another sidecar: mutual TLS everywhere (PeerAuthentication STRICT, examples/mesh-demo/security.yaml).',
      ...WORKLOADS.map(
        (w) =>
          `  ${w.name.padEnd(8)} app 127.0.0.1:${w.appPort}, sidecar in front at ${w.inbound}:${w.appPort}, ` +
          `outbound on ${w.outbound}:${SERVICE_PORT}, admin http://127.0.0.1:${w.adminPort}/`,
      ),
      '',
      "Try, through hello's sidecar (the service's name as Host):",
      `  curl -H 'Host: hello.demo' ${url}/                                 # hello-sidecar -> hello`,
      `  curl -H 'Host: echo.demo' ${url}/anything                          # -> echo-v1 (90%) or echo-v2 (10%), through their sidecars`,
      `  curl -H 'Host: echo.demo' -H 'x-echo-version: v2' ${url}/          # -> echo-v2`,
      "      (echo shows x-forwarded-client-cert: hello's SPIFFE ID, as echo's sidecar verified it)",
      '  curl http://127.0.0.3:18082/                                        # refused: plaintext to a STRICT workload',
      '  curl http://127.0.0.1:15000/certs                                   # the workload certificate and its expiry',
      '  curl http://127.0.0.1:15000/config_dump                             # what the control plane sent',
      '  curl http://127.0.0.1:15000/stats/prometheus',
      `  bin/remora proxy-status --control-plane 127.0.0.1:${DEBUG_PORT}`,
      `Edit examples/mesh-demo/*.yaml and the sidecars follow. Bootstraps are in ${dir}. Press Ctrl-C to stop.`,
      '',
    ].join('\n'),
  );
  await Promise.race(children.map((c) => new Promise((r) => c.once('exit', r))));
  await cleanUp();
  return 0;
}
