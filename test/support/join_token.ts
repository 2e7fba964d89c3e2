// Test support: `remora token create` run as a user would, its token returned.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { REMORA_BIN } from './child.js';

const run = promisify(execFile);

/** A join token for `spiffe://<trust domain>/ns/<namespace>/sa/<sa>` from the CA kept in `dataDir`; stderr too. */
export async function createJoinToken(
  dataDir: string,
  namespace: string,
  sa: string,
  ...more: string[]
): Promise<{ token: string; stderr: string }> {
  const r = await run(process.execPath, [
    REMORA_BIN,
    'token',
    'create',
    '--namespace',
    namespace,
    '--service-account',
    sa,
    '--data-dir',
    dataDir,
    ...more,
  ]);
  return { token: r.stdout.trim(), stderr: r.stderr };
}
