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
import { until } from './support/child.js';
import { echoServer, spawnGrpcXdsClient } from './support/grpc_xds_client.js';

const BIN = fileURLToPath(new URL('../../bin/remora', import.meta.url));
const TARGET = 'echo.grpc.svc.cluster.local:7070';

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

  // The client is in "default" and dials a service of another namespace.
  const client = spawnGrpcXdsClient({ target: TARGET, xdsPort, maxCalls: 600, context: () => cpOut });
  cleanups.push(() => client.kill());

  await client.seen('REPLY A');
  writeFileSync(join(dir, 'echo.yaml'), mesh(b.port));
  await client.seen('REPLY B');
  assert.equal(await client.exited, 0, client.stderr());
  assert.doesNotMatch(
    client.stdout(),
    /ERROR/,
    `no call failed while the endpoints changed:\n${client.stdout()}`,
  );
});
