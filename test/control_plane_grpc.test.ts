// Integration: a real third-party xDS client, @grpc/grpc-js-xds, dials xds:///<service>.<ns>.svc.cluster.local:<port>
// through `remora control-plane` (generated Listener with api_listener, RouteConfiguration, EDS Cluster and
// ClusterLoadAssignment), calls a real gRPC server, and follows a WorkloadEntry edit to another one.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { until } from './support/child.js';

const BIN = fileURLToPath(new URL('../../bin/remora', import.meta.url));
const TARGET = 'echo.grpc.svc.cluster.local:7070';

const passthrough = (b: Buffer) => b;
const ECHO = {
  Echo: {
    path: '/remora.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: passthrough,
    requestDeserialize: passthrough,
    responseSerialize: passthrough,
    responseDeserialize: passthrough,
  },
} as const;

/** A gRPC server whose one method answers with `name`. */
async function echoServer(name: string): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  server.addService(ECHO, {
    Echo: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(name)),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return { port, server };
}

function mesh(backendPort: number): string {
  return `apiVersion: v1
kind: Service
metadata: {name: echo, namespace: grpc}
spec:
  selector: {app: echo}
  ports: [{name: grpc, port: 7070}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-1, namespace: grpc}
spec: {address: 127.0.0.1, labels: {app: echo}, ports: {grpc: ${backendPort}}}
`;
}

/** Calls the target every 50 ms (at most 600 times), printing each answer; stops once it has heard "B". */
const CLIENT = `
import { createRequire } from 'node:module';
const require = createRequire(process.env.REMORA_TEST_BASE);
const grpc = require('@grpc/grpc-js');
require('@grpc/grpc-js-xds').register();
const id = (b) => b;
const def = { Echo: { path: '/remora.test.Echo/Echo', requestStream: false, responseStream: false,
  requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } };
const Client = grpc.makeGenericClientConstructor(def, 'Echo');
const client = new Client('xds:///${TARGET}', grpc.credentials.createInsecure());
for (let i = 0; i < 600; i++) {
  const reply = await new Promise((resolve) =>
    client.Echo(Buffer.from('ping'), { deadline: Date.now() + 5000 }, (err, res) =>
      resolve(err ? 'ERROR ' + err.code + ' ' + err.details : 'REPLY ' + res.toString())));
  console.log(reply);
  if (reply === 'REPLY B') break;
  await new Promise((r) => setTimeout(r, 50));
}
client.close();
process.exit(0);
`;

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function stop(child: ChildProcess): Promise<unknown> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  return exited;
}

test('a grpc-js-xds client resolves through remora control-plane and follows an endpoint change', async () => {
  const a = await echoServer('A');
  cleanups.push(() => a.server.forceShutdown());
  const b = await echoServer('B');
  cleanups.push(() => b.server.forceShutdown());
  const dir = mkdtempSync(join(tmpdir(), 'remora-cp-grpc-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'echo.yaml'), mesh(a.port));

  const cp = spawn(
    process.execPath,
    [BIN, 'control-plane', '--config-dir', dir, '--xds-port', '0', '--debug-port', '0'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  cleanups.push(() => stop(cp));
  let cpOut = '';
  cp.stdout?.on('data', (d) => {
    cpOut += d;
  });
  cp.stderr?.on('data', (d) => {
    cpOut += d;
  });
  let xdsPort = 0;
  await until(
    'the control plane to start',
    () => {
      if (cp.exitCode !== null) throw new Error(`remora control-plane exited:\n${cpOut}`);
      const m = /xDS on [^\s]+:(\d+)/.exec(cpOut);
      if (m !== null) xdsPort = Number(m[1]);
      return m !== null;
    },
    30_000,
  );

  const bootstrap = {
    xds_servers: [
      {
        server_uri: `127.0.0.1:${xdsPort}`,
        channel_creds: [{ type: 'insecure' }],
        server_features: ['xds_v3'],
      },
    ],
    // grpc-js-xds refuses a bootstrap node without a locality. No NAMESPACE: the client is in "default", and
    // dials a service of another namespace.
    node: { id: 'proxyless-1', cluster: 'echo-client', locality: { zone: 'a' } },
  };
  const child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT], {
    env: {
      ...process.env,
      GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap),
      REMORA_TEST_BASE: import.meta.url,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  cleanups.push(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const seen = (line: string) =>
    until(
      `the client to print "${line}"`,
      () => {
        if (child.exitCode !== null && !out.split('\n').includes(line))
          throw new Error(`client exited before "${line}":\n${out}\n${err}\n${cpOut}`);
        return out.split('\n').includes(line);
      },
      30_000,
    );

  await seen('REPLY A');
  writeFileSync(join(dir, 'echo.yaml'), mesh(b.port));
  await seen('REPLY B');
  assert.equal(await exited, 0, err);
  assert.doesNotMatch(out, /ERROR/, `no call failed while the endpoints changed:\n${out}`);
});
