// Integration: `remora analyze DIR` as a real process, on the example mesh and on a directory full of mistakes.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/remora', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../examples/mesh', import.meta.url));

function remora(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: unknown; killed?: boolean }) | null;
      if (e?.killed) return reject(new Error(`remora ${args.join(' ')} did not finish: ${stderr}`));
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
    });
  });
}

let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'remora-analyze-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('analyze: the example mesh is clean (exit 0, one summary line)', async () => {
  const r = await remora(['analyze', EXAMPLE]);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
  assert.equal(
    r.stdout,
    `${EXAMPLE}: clean: 2 services, 3 endpoints, 2 workloads, 2 VirtualServices, 1 DestinationRule, 1 Sidecar\n`,
  );
});

test('analyze: a broken directory lists every problem with file, object, field path and code (exit 1)', async () => {
  writeFileSync(
    join(dir, 'mesh.yaml'),
    `
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
    fault: {abort: {httpStatus: 500}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: reviews, subset: v2, port: {number: 80}}}]
  - match: [{uri: {prefix: /x}}]
    route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}]}
`,
  );
  writeFileSync(join(dir, 'broken.yml'), 'kind: [\n');
  const r = await remora(['analyze', dir]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  const file = join(dir, 'mesh.yaml');
  const expected = [
    `${file}: VirtualService default/reviews: spec.http[0].fault: fault injection ("fault") is not supported by Remora yet [RA0102 invalid-field]`,
    `${join(dir, 'broken.yml')}: document 1: YAML syntax error at line`,
    `${file}: VirtualService default/ratings: spec.hosts[0]: unknown host "ratings": no service is named "ratings.default.svc.cluster.local" [RA0201 unknown-host]`,
    `${file}: VirtualService default/ratings: spec.http[0].route[0].destination.port.number: reviews.default.svc.cluster.local does not expose port 80 (its ports: 9080) [RA0204 unknown-port]`,
    `${file}: VirtualService default/ratings: spec.http[0].route[0].destination.subset: unknown subset "v2"`,
    `${file}: VirtualService default/ratings: spec.http[1]: this route can never match: http[0] before it catches every request it would [RA0302 unreachable-route]`,
    `${file}: DestinationRule default/reviews: spec.subsets[0]: subset "v1" selects no endpoints: reviews.default.svc.cluster.local has no endpoints [RA0203 subset-without-endpoints]`,
    `${dir}: 7 problems`,
  ];
  const lines = r.stderr.trimEnd().split('\n');
  for (const e of expected)
    assert.ok(
      lines.some((l) => l.startsWith(e)),
      `expected a line starting with\n  ${e}\ngot:\n${r.stderr}`,
    );
  assert.equal(lines.length, expected.length, r.stderr);
});

test('analyze: a directory that does not exist is an error (exit 1)', async () => {
  const r = await remora(['analyze', join(dir, 'missing')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /missing: no such directory/);
});
