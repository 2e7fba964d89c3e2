// Integration: `bin/remora` as a program: the Node flags it starts with, and what a sidecar's bundle loads.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnProxy } from './support/child.js';
import { bootstrap, httpListener, routes, staticCluster } from './support/proxy.js';

const META = fileURLToPath(new URL('../../dist/remora.meta.json', import.meta.url));

let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'remora-program-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('run as a program, bin/remora starts Node with the young generation capped (--max-semi-space-size=4)', async () => {
  const cfg = bootstrap(
    [httpListener('web', routes([{ match: { prefix: '/' }, route: { cluster: 'up' } }]))],
    [staticCluster('up', [1])],
  );
  // The program itself (its #! line), not `node bin/remora`: that is how users and npm's bin link run it.
  const proxy = await spawnProxy(dir, cfg, [], { asProgram: true });
  try {
    // exec keeps the PID: the sidecar itself is the Node process with the flag.
    const argv = readFileSync(`/proc/${proxy.process.pid}/cmdline`, 'utf8').split('\0');
    assert.ok(argv.includes('--max-semi-space-size=4'), `the sidecar runs as: ${argv.join(' ')}`);
    assert.ok(argv.includes('proxy'), `the sidecar runs as: ${argv.join(' ')}`);
  } finally {
    await proxy.kill();
  }
});

interface Meta {
  readonly outputs: Record<
    string,
    { readonly imports: { path: string; kind: string }[]; readonly inputs: Record<string, unknown> }
  >;
}

test('the sidecar loads no control plane, gRPC, protobuf or X.509 code unless its configuration uses them', () => {
  const meta = JSON.parse(readFileSync(META, 'utf8')) as Meta;
  const outputs = meta.outputs;
  const proxyChunk = Object.keys(outputs).find((f) => 'dist/src/cli/proxy.js' in outputs[f]!.inputs);
  assert.ok(proxyChunk, 'the bundle has the proxy command');
  // What loading `remora proxy` loads: its chunk and every chunk it imports statically (dynamic imports wait).
  const loaded = new Set<string>();
  const todo = [proxyChunk];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (loaded.has(f)) continue;
    loaded.add(f);
    for (const i of outputs[f]!.imports)
      if (i.kind === 'import-statement' && outputs[i.path]) todo.push(i.path);
  }
  const inputs = [...loaded].flatMap((f) => Object.keys(outputs[f]!.inputs));
  const forbidden = [
    /node_modules\/@grpc\//,
    /node_modules\/protobufjs\//,
    /node_modules\/@peculiar\//,
    /node_modules\/@kubernetes\//,
    /node_modules\/etcd3\//,
    /dist\/src\/controlplane\//,
    /dist\/src\/xds\//,
    /dist\/src\/dataplane\/identity\/workload_identity\.js/,
    /dist\/src\/dataplane\/xds\/dynamic_config\.js/,
  ];
  for (const pattern of forbidden) {
    const hits = inputs.filter((i) => pattern.test(i));
    assert.deepEqual(hits, [], `remora proxy loads ${pattern} at start`);
  }
  assert.ok(
    inputs.some((i) => i.endsWith('dist/src/dataplane/server.js')),
    'the closure walked is the sidecar',
  );
});
