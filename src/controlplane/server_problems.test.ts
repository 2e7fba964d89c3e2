// The control plane's log of source problems: each logged when it appears, a changed one logged anew without a
// "resolved" line, and "resolved" once it is gone.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { until } from '../../test/support/child.js';
import { ControlPlane } from './server.js';
import { FilesSource } from './sources/files.js';

const svc = (port: number) =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {ports: [{name: http, port: ${port}}]}\n`;

test('a problem is logged when it appears, again when it changes, and as resolved when it is gone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-cp-problems-'));
  const logs: string[] = [];
  const file = join(dir, 'web.yaml');
  writeFileSync(file, svc(70000));
  const cp = await ControlPlane.start({
    sources: [new FilesSource({ dir, debounceMs: 10 })],
    xdsHost: '127.0.0.1',
    xdsPort: 0,
    debugPort: 0,
    log: (level, message) => logs.push(`${level} ${message}`),
  });
  try {
    assert.equal(logs.length, 1);
    assert.match(
      logs[0]!,
      /^warning .*web\.yaml: Service shop\/web: spec\.ports\[0\]\.port: .*70000 \[RA0102\]$/,
    );
    writeFileSync(file, svc(80000));
    await until('the changed problem', () => logs.some((l) => l.includes('80000')));
    writeFileSync(file, svc(80));
    await until('the problem to go', () => logs.some((l) => l.startsWith('info resolved:')));
    const problems = logs.filter((l) => !l.startsWith('info proxy group'));
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(problems[1]!, /^warning .*80000 \[RA0102\]$/);
    assert.match(problems[2]!, /^info resolved: .*80000 \[RA0102\]$/);
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
