// The generated root: made once in DIR/ca/root (0700 dir, 0600 files), read back with the same fingerprint on every
// later start, never replaced when a file of it is lost, and made only once by two starts racing; openssl reads it
// as a CA.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { DataDir } from '../state/data_dir.js';
import { type CaLog, loadOrCreateRoot } from './root_store.js';

const run = promisify(execFile);
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function dataDir(): Promise<DataDir> {
  const d = mkdtempSync(join(tmpdir(), 'remora-ca-root-'));
  dirs.push(d);
  return DataDir.open(join(d, 'data'));
}

const logs: string[] = [];
const log: CaLog = (level, message) => logs.push(`${level} ${message}`);

test('the first start makes a root with private files; later starts read the same root', async () => {
  const dir = await dataDir();
  const first = await loadOrCreateRoot(dir, 'cluster.local', log);
  assert.equal(first.created, true);
  assert.equal(statSync(dir.caDir).mode & 0o777, 0o700);
  assert.equal(statSync(dir.caRootDir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir.caRootDir, 'key.pem')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir.caRootDir, 'cert.pem')).mode & 0o777, 0o600);
  assert.equal(first.issuer.cert.ca, true);

  const again = await loadOrCreateRoot(await DataDir.open(dir.root), 'cluster.local', log);
  assert.equal(again.created, false);
  assert.equal(again.issuer.cert.fingerprint256, first.issuer.cert.fingerprint256);
  assert.ok(again.issuer.cert.checkPrivateKey(first.issuer.key.keyObject));

  const text = (await run('openssl', ['x509', '-in', join(dir.caRootDir, 'cert.pem'), '-noout', '-text']))
    .stdout;
  assert.match(text, /CA:TRUE/);
  assert.match(text, /Certificate Sign/);
  assert.match(text, /ASN1 OID: prime256v1/);
  assert.match(text, /URI:spiffe:\/\/cluster\.local/);
  await run('openssl', [
    'verify',
    '-CAfile',
    join(dir.caRootDir, 'cert.pem'),
    join(dir.caRootDir, 'cert.pem'),
  ]);
});

test('two starts racing on an empty data dir end up with one root', async () => {
  const dir = await dataDir();
  const [a, b] = await Promise.all([
    loadOrCreateRoot(dir, 'cluster.local', log),
    loadOrCreateRoot(dir, 'cluster.local', log),
  ]);
  assert.equal(a.issuer.cert.fingerprint256, b.issuer.cert.fingerprint256);
  assert.equal([a.created, b.created].filter(Boolean).length, 1);
});

test('a root missing its key is an error, never silently replaced', async () => {
  const dir = await dataDir();
  await loadOrCreateRoot(dir, 'cluster.local', log);
  unlinkSync(join(dir.caRootDir, 'key.pem'));
  await assert.rejects(loadOrCreateRoot(dir, 'cluster.local', log), /key\.pem: .*Restore it from a backup/);
});
