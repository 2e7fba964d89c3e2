// Integration: ADS over mTLS on the CA port of a real `bin/remora control-plane` (Istio's 15012). A sidecar with a
// join token gets its workload certificate and then its configuration over that port (from a bootstrap file, and
// from `--xds-address`); a gRPC client without a client certificate, or with one of another CA, is refused
// UNAUTHENTICATED; a certificate of namespace shop claiming another namespace or service account is refused
// PERMISSION_DENIED; Secret requests get nothing; the plaintext port works unless `--no-plaintext-xds`. In process:
// a renewed workload certificate is presented on the next reconnect while the open stream stays.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { stringify } from 'yaml';
import { adsBootstrap } from '../src/cli/ads_bootstrap.js';
import { translateBootstrap } from '../src/config/bootstrap.js';
import { formatErrors } from '../src/config/result.js';
import { Authenticator } from '../src/controlplane/ca/authenticate.js';
import { serverNames } from '../src/controlplane/ca/authority.js';
import { openAuthority } from '../src/controlplane/ca/load.js';
import { listenTestCa } from '../src/controlplane/ca/test_support.js';
import { JoinTokenStore } from '../src/controlplane/ca/tokens.js';
import { ControlPlane } from '../src/controlplane/server.js';
import { FilesSource } from '../src/controlplane/sources/files.js';
import { DataDir } from '../src/controlplane/state/data_dir.js';
import { Logger } from '../src/dataplane/observe/log.js';
import { ProxyServer } from '../src/dataplane/server.js';
import { requestCertificate, type WorkloadCertificate } from '../src/identity/client.js';
import { XDS_TYPE_URLS, xdsProtos } from '../src/xds/protos.js';
import { RawAdsClient } from './support/ads_client.js';
import {
  REMORA_BIN,
  type RemoraProcess,
  runRemora,
  startCaControlPlane,
  until,
  untilReady,
} from './support/child.js';
import { createJoinToken } from './support/join_token.js';
import { closedPort } from './support/upstream.js';

type Msg = Record<string, unknown>;

let tmp: string;
let dataDir: string;
let configDir: string;
let cp: RemoraProcess;
let xdsPort: number;
let caPort: number;
let debugPort: number;
let roots: string;
let svcPort: number;
const procs: RemoraProcess[] = [];

/** The mesh: service web in namespace shop, one workload of service account web. */
function manifests(port: number): string {
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { selector: { app: 'web' }, ports: [{ name: 'http', port }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name: 'web-1', namespace: 'shop' },
      spec: { address: '127.0.0.71', serviceAccount: 'web', labels: { app: 'web' } },
    },
  ]
    .map((d) => stringify(d))
    .join('---\n');
}

async function startControlPlane(args: readonly string[]): Promise<{ proc: RemoraProcess; line: string }> {
  const { proc, line } = await startCaControlPlane(configDir, dataDir, args);
  procs.push(proc);
  return { proc, line };
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'remora-xds-tls-'));
  dataDir = join(tmp, 'data');
  configDir = join(tmp, 'config');
  mkdirSync(configDir);
  svcPort = await closedPort();
  writeFileSync(join(configDir, 'mesh.yaml'), manifests(svcPort));
  const started = await startControlPlane([]);
  cp = started.proc;
  const m = /xDS on [^\s]+:(\d+), debug on [^\s]+:(\d+)[^\n]*CA on [^\s]+:(\d+)/.exec(started.line);
  assert.ok(m !== null, started.line);
  [xdsPort, debugPort, caPort] = [Number(m[1]), Number(m[2]), Number(m[3])];
  assert.match(started.line, /xDS over mTLS too/);
  roots = readFileSync(join(dataDir, 'ca', 'roots.pem'), 'utf8');
});
after(async () => {
  await Promise.allSettled(procs.map((p) => p.kill()));
  rmSync(tmp, { recursive: true, force: true });
});

async function tokenFile(namespace: string, sa: string): Promise<string> {
  const f = join(tmp, `token-${Math.random().toString(16).slice(2)}`);
  writeFileSync(f, (await createJoinToken(dataDir, namespace, sa)).token, { mode: 0o600 });
  return f;
}

async function certificate(namespace: string, sa: string): Promise<WorkloadCertificate> {
  const { token } = await createJoinToken(dataDir, namespace, sa);
  return requestCertificate({ address: `127.0.0.1:${caPort}`, token });
}

/** Node metadata of the web workload, its listeners bound on `address` (no capture). */
function webNode(id: string, address: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    cluster: 'web.shop',
    metadata: {
      NAMESPACE: 'shop',
      SERVICE_ACCOUNT: 'web',
      LABELS: { app: 'web' },
      INTERCEPTION_MODE: 'NONE',
      OUTBOUND_BIND_ADDRESS: address,
      ...extra,
    },
  };
}

function waitReady(proc: RemoraProcess, adminUrl: string): Promise<void> {
  return untilReady('the sidecar', proc, adminUrl, 30_000);
}

/** The dynamic listeners of a sidecar's /config_dump. */
async function dynamicListeners(adminUrl: string): Promise<{ name: string; port: number }[]> {
  const dump = (await (await fetch(`${adminUrl}/config_dump`)).json()) as { configs: Msg[] };
  const lds = dump.configs.find((c) => String(c['@type']).endsWith('ListenersConfigDump')) as
    | { dynamic_listeners?: { name: string; active_state?: { listener: Msg } }[] }
    | undefined;
  return (lds?.dynamic_listeners ?? []).map((l) => {
    const address = (l.active_state?.listener.address as { socket_address?: { port_value?: number } })
      ?.socket_address;
    return { name: l.name, port: Number(address?.port_value ?? 0) };
  });
}

/** One ADS stream over TLS to `port`, with `client` as the client certificate (or none). */
class TlsAds {
  readonly responses: Msg[] = [];
  readonly status: Promise<grpc.StatusObject>;
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Msg, Msg>;

  constructor(port: number, trust: string, client?: WorkloadCertificate, delta = false) {
    const creds = grpc.credentials.createSsl(
      Buffer.from(trust),
      client === undefined ? null : Buffer.from(client.keyPem),
      client === undefined ? null : Buffer.from(client.certChainPem),
    );
    const Ctor = grpc.makeGenericClientConstructor(xdsProtos().adsService, 'AggregatedDiscoveryService');
    this.client = new Ctor(`127.0.0.1:${port}`, creds);
    const open = (this.client as unknown as Record<string, () => grpc.ClientDuplexStream<Msg, Msg>>)[
      delta ? 'DeltaAggregatedResources' : 'StreamAggregatedResources'
    ]!;
    this.call = open.call(this.client);
    this.call.on('data', (r: Msg) => this.responses.push(r));
    this.call.on('error', () => undefined);
    this.status = new Promise((resolve) => this.call.on('status', resolve));
  }

  send(req: Msg): void {
    this.call.write(req);
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

async function metrics(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${debugPort}/metrics`)).text();
}

test('a sidecar with a join token takes its configuration over mTLS on the CA port (bootstrap file)', async () => {
  const dir = mkdtempSync(join(tmp, 'file-'));
  const admin = await closedPort();
  const bootstrap = {
    ...adsBootstrap({
      node: webNode('web-1.shop', '127.0.0.71'),
      adminPort: admin,
      controlPlanes: [{ address: '127.0.0.1', port: caPort }],
      tls: {},
    }),
  };
  const file = join(dir, 'bootstrap.json');
  writeFileSync(file, JSON.stringify(bootstrap));
  const proxy = runRemora([
    'proxy',
    '-c',
    file,
    '--ca-address',
    `127.0.0.1:${caPort}`,
    '--join-token-file',
    await tokenFile('shop', 'web'),
    '--xds-cache-dir',
    join(dir, 'cache'),
  ]);
  procs.push(proxy);
  const adminUrl = `http://127.0.0.1:${admin}`;
  await waitReady(proxy, adminUrl);
  const listeners = await dynamicListeners(adminUrl);
  assert.ok(
    listeners.some((l) => l.port === svcPort),
    `an outbound listener for web:${svcPort}: ${JSON.stringify(listeners)}`,
  );
  assert.match(proxy.output(), /connected to the control plane[^\n]*"transport":"tls"/);
  await until('the control plane to log the stream', () =>
    /xDS: 127\.0\.0\.1:\d+ streams as spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web \(client certificate [0-9A-F]+\), node "web-1\.shop"/.test(
      cp.output(),
    ),
  );
  assert.match(await metrics(), /^remora_xds_mtls_admitted_total [1-9]/m);
  await proxy.kill();
});

test('`remora proxy --xds-address` makes the bootstrap: mTLS with the workload certificate, node metadata from ISTIO_META_*', async () => {
  const dir = mkdtempSync(join(tmp, 'cli-'));
  const admin = await closedPort();
  const child = spawn(
    process.execPath,
    [
      REMORA_BIN,
      'proxy',
      '--xds-address',
      `127.0.0.1:${caPort}`,
      '--ca-address',
      `127.0.0.1:${caPort}`,
      '--join-token-file',
      await tokenFile('shop', 'web'),
      '--admin-port',
      String(admin),
      '--labels',
      'app=web',
      '--node-id',
      'web-2.shop',
      '--xds-cache-dir',
      join(dir, 'cache'),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ISTIO_META_INTERCEPTION_MODE: 'NONE',
        ISTIO_META_OUTBOUND_BIND_ADDRESS: '127.0.0.72',
      },
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const proc: RemoraProcess = {
    process: child,
    output: () => out,
    exited,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
  procs.push(proc);
  const adminUrl = `http://127.0.0.1:${admin}`;
  await waitReady(proc, adminUrl);
  assert.ok((await dynamicListeners(adminUrl)).some((l) => l.port === svcPort));
  const dump = (await (await fetch(`${adminUrl}/config_dump`)).text()) as string;
  assert.match(dump, /"NAMESPACE": ?"shop"/);
  assert.match(dump, /"SERVICE_ACCOUNT": ?"web"/);
  assert.match(dump, /envoy\.transport_sockets\.tls/);
  await until('the control plane to log the stream', () =>
    /streams as [^\n]*node "web-2\.shop"/.test(cp.output()),
  );
  await proc.kill();
});

test('without a client certificate of this mesh, an ADS stream on the CA port is refused UNAUTHENTICATED', async () => {
  const before = Number(/^remora_xds_mtls_unauthenticated_total (\d+)/m.exec(await metrics())?.[1]);
  const anonymous = new TlsAds(caPort, roots);
  anonymous.send({ node: webNode('anon', '127.0.0.73'), type_url: XDS_TYPE_URLS.listener });
  const s = await anonymous.status;
  assert.equal(s.code, grpc.status.UNAUTHENTICATED, s.details);
  assert.match(s.details, /REMORA_ERR_XDS_UNAUTHENTICATED: this port serves xDS only over mTLS/);
  assert.equal(anonymous.responses.length, 0);
  anonymous.close();

  // A Remora workload certificate, but from another mesh's CA: the handshake does not verify it, so the handler
  // sees no certificate at all.
  const otherDir = await DataDir.open(join(tmp, 'other-data'));
  const other = await openAuthority({
    dataDir: otherDir,
    trustDomain: 'cluster.local',
    maxTtlMs: 3600_000,
    log: () => undefined,
  });
  const otherTokens = new JoinTokenStore(otherDir.tokensDir);
  const otherCa = await listenTestCa(other, otherTokens);
  try {
    const { token } = await otherTokens.create({
      identity: { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web' },
      ttlMs: 600_000,
      uses: 1,
      caPin: other.rootPin,
    });
    const foreign = await requestCertificate({ address: `127.0.0.1:${otherCa.port}`, token });
    const stranger = new TlsAds(caPort, roots, foreign);
    stranger.send({ node: webNode('stranger', '127.0.0.73'), type_url: XDS_TYPE_URLS.listener });
    const refused = await stranger.status;
    assert.equal(refused.code, grpc.status.UNAUTHENTICATED, refused.details);
    assert.equal(stranger.responses.length, 0);
    stranger.close();
  } finally {
    await otherCa.close();
  }
  await until(
    'the refusals in the log',
    () => (cp.output().match(/REMORA_ERR_XDS_UNAUTHENTICATED\]/g) ?? []).length >= 2,
  );
  const after = Number(/^remora_xds_mtls_unauthenticated_total (\d+)/m.exec(await metrics())?.[1]);
  assert.ok(after >= before + 2, `${before} -> ${after}`);
});

test('a certificate of namespace shop gets only shop/web configuration: another namespace or account is PERMISSION_DENIED', async () => {
  const web = await certificate('shop', 'web');

  const otherNs = new TlsAds(caPort, roots, web);
  otherNs.send({
    node: { id: 'web-1.shop', metadata: { NAMESPACE: 'bank', INTERCEPTION_MODE: 'NONE' } },
    type_url: XDS_TYPE_URLS.listener,
  });
  const ns = await otherNs.status;
  assert.equal(ns.code, grpc.status.PERMISSION_DENIED, ns.details);
  assert.match(
    ns.details,
    /REMORA_ERR_XDS_IDENTITY_MISMATCH: the node claims namespace "bank", but its certificate is spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web \(namespace "shop"\)/,
  );
  assert.equal(otherNs.responses.length, 0);
  otherNs.close();

  // Delta streams pass the same gate.
  const delta = new TlsAds(caPort, roots, web, true);
  delta.send({
    node: { id: 'web-1.shop', metadata: { NAMESPACE: 'bank', INTERCEPTION_MODE: 'NONE' } },
    type_url: XDS_TYPE_URLS.listener,
  });
  assert.equal((await delta.status).code, grpc.status.PERMISSION_DENIED);
  assert.equal(delta.responses.length, 0);
  delta.close();

  // The namespace may come from an Istio-style node id too.
  const byId = new TlsAds(caPort, roots, web);
  byId.send({
    node: { id: 'sidecar~10.0.0.1~web-1.bank~bank.svc.cluster.local' },
    type_url: XDS_TYPE_URLS.listener,
  });
  assert.equal((await byId.status).code, grpc.status.PERMISSION_DENIED);
  byId.close();

  const otherSa = new TlsAds(caPort, roots, web);
  otherSa.send({
    node: webNode('web-1.shop', '127.0.0.73', { SERVICE_ACCOUNT: 'admin' }),
    type_url: XDS_TYPE_URLS.listener,
  });
  const sa = await otherSa.status;
  assert.equal(sa.code, grpc.status.PERMISSION_DENIED);
  assert.match(
    sa.details,
    /the node claims service account "admin", but its certificate is spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web/,
  );
  otherSa.close();
  await until('the refusal in the log', () =>
    /xDS: refused node "web-1\.shop" from 127\.0\.0\.1:\d+ as spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web[^\n]*namespace "bank"[^\n]*\[REMORA_ERR_XDS_IDENTITY_MISMATCH\]/.test(
      cp.output(),
    ),
  );
  assert.match(await metrics(), /^remora_xds_mtls_permission_denied_total [4-9]/m);

  // Its own identity is served; Secrets are not served over ADS at all: not its own, not another identity's.
  const own = new TlsAds(caPort, roots, web);
  own.send({ node: webNode('web-3.shop', '127.0.0.73'), type_url: XDS_TYPE_URLS.listener });
  own.send({
    type_url: XDS_TYPE_URLS.secret,
    resource_names: ['default', 'ROOTCA', 'spiffe://cluster.local/ns/bank/sa/teller', 'file-cert'],
  });
  await until('both answers', () => own.responses.length >= 2);
  const lds = own.responses.find((r) => r.type_url === XDS_TYPE_URLS.listener)!;
  assert.ok((lds.resources as unknown[]).length > 0, 'its listeners');
  const sds = own.responses.find((r) => r.type_url === XDS_TYPE_URLS.secret)!;
  assert.deepEqual(sds.resources ?? [], [], 'no secret of any name');
  own.close();
});

test('the plaintext port still serves ADS; --no-plaintext-xds turns it off (and needs the CA)', async () => {
  const plain = RawAdsClient.sotw(xdsPort);
  plain.send({ node: webNode('dev.shop', '127.0.0.74'), type_url: XDS_TYPE_URLS.listener });
  const r = await plain.next();
  assert.equal(r.type_url, XDS_TYPE_URLS.listener);
  plain.close();

  const { proc, line } = await startControlPlane(['--no-plaintext-xds']);
  assert.match(line, /plaintext xDS off, debug on/);
  assert.doesNotMatch(line, /xDS on/);
  const port = Number(/CA on [^\s]+:(\d+)/.exec(line)![1]);
  const web = await certificate('shop', 'web');
  const tls = new TlsAds(port, roots, web);
  tls.send({ node: webNode('web-4.shop', '127.0.0.74'), type_url: XDS_TYPE_URLS.listener });
  await until('an answer', () => tls.responses.length > 0);
  tls.close();
  proc.process.kill('SIGTERM');
  assert.equal(await proc.exited, 0, proc.output());

  const noCa = runRemora([
    'control-plane',
    '--config-dir',
    configDir,
    '--xds-port',
    '0',
    '--debug-port',
    '0',
    '--no-plaintext-xds',
  ]);
  procs.push(noCa);
  assert.equal(await noCa.exited, 2);
  assert.match(
    noCa.output(),
    /--no-plaintext-xds leaves xDS only on the CA port \(mTLS\), but the CA does not run/,
  );
});

test('a renewed workload certificate is presented on the next reconnect; the open stream stays', async () => {
  const dir = mkdtempSync(join(tmp, 'rotate-'));
  const data = await DataDir.open(join(dir, 'data'));
  const authority = await openAuthority({
    dataDir: data,
    trustDomain: 'cluster.local',
    maxTtlMs: 3600_000,
    log: () => undefined,
  });
  const tokens = new JoinTokenStore(data.tokensDir);
  mkdirSync(join(dir, 'config'));
  writeFileSync(join(dir, 'config', 'mesh.yaml'), manifests(svcPort));
  const lines: string[] = [];
  const start = (port: number) =>
    ControlPlane.start({
      sources: [new FilesSource({ dir: join(dir, 'config') })],
      plaintextXds: false,
      debugPort: 0,
      debugHost: '127.0.0.1',
      log: (_level, message) => lines.push(message),
      ca: {
        authority,
        authenticator: new Authenticator({
          trustDomain: 'cluster.local',
          tokens,
          intermediates: [],
          roots: authority.roots,
        }),
        names: serverNames([]),
        host: '127.0.0.1',
        port,
      },
    });
  let plane = await start(0);
  const port = plane.caPort;
  const { token } = await tokens.create({
    identity: { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web' },
    ttlMs: 600_000,
    uses: 1,
    caPin: authority.rootPin,
  });
  const raw = adsBootstrap({
    node: webNode('web-5.shop', '127.0.0.75'),
    adminPort: 0,
    controlPlanes: [{ address: '127.0.0.1', port }],
    tls: {},
  });
  const config = translateBootstrap(raw, { localSecrets: ['default', 'ROOTCA'] });
  if (!config.ok) assert.fail(formatErrors(config.errors));
  const proxy = await ProxyServer.start(config.value, {
    drainTimeMs: 1000,
    logger: new Logger('critical'),
    xdsBackoff: { baseMs: 50, maxMs: 200 },
    workloadIdentity: { caAddress: `127.0.0.1:${port}`, credential: () => token },
  });
  const streamsBy = (serial: string) =>
    lines.filter(
      (l) =>
        /streams as spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web/.test(l) &&
        l.includes(`certificate ${serial})`),
    );
  try {
    await proxy.live;
    const first = proxy.identity!.current()!.serialNumber;
    await until('the first stream', () => streamsBy(first).length === 1);
    await proxy.identity!.renewNow();
    const second = proxy.identity!.current()!.serialNumber;
    assert.notEqual(second, first);
    // The stream opened with the first certificate goes on: a change of the mesh arrives over it.
    const apiPort = await closedPort();
    writeFileSync(
      join(dir, 'config', 'api.yaml'),
      stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'api', namespace: 'shop' },
        spec: { selector: { app: 'api' }, ports: [{ name: 'http', port: apiPort }] },
      }),
    );
    await until('the new listener', () =>
      proxy.listenerManager.listeners().some((l) => l.address.port === apiPort),
    );
    assert.equal(streamsBy(second).length, 0);
    assert.equal(lines.filter((l) => l.includes('streams as')).length, 1, 'still the first stream');
    // The control plane goes away and comes back on the same port: the reconnect presents the renewed certificate.
    await plane.close();
    plane = await start(port);
    await until('a stream with the renewed certificate', () => streamsBy(second).length === 1, 20_000);
    assert.equal(streamsBy(first).length, 1, 'the first certificate was presented once');
  } finally {
    await proxy.close();
    await plane.close();
  }
});
