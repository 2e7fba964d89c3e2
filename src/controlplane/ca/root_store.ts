// The generated root in the data directory: made once, on first start, and read on every start after.

import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type DataDir, writeFileAtomic } from '../state/data_dir.js';
import type { Issuer } from './issue.js';
import { createRootCertificate } from './issue.js';
import { generateRootKey, importSigningKey, privateKeyPem } from './keys.js';

export type CaLog = (level: 'info' | 'warning' | 'error', message: string) => void;

const CERT = 'cert.pem';
const KEY = 'key.pem';

export interface StoredRoot {
  readonly issuer: Issuer;
  /** Made by this call (first start), rather than read. */
  readonly created: boolean;
}

/**
 * Reads `DIR/ca/root/`, or makes it when it does not exist. The key and certificate are written (0600, flushed)
 * into a fresh directory beside it that is then renamed to `root`: the two appear together or not at all, and two
 * processes starting at once cannot both make a root (the second rename fails, and the loser reads the winner's).
 * A `root/` that exists but cannot be read is an error, never replaced: every sidecar trusts that root.
 */
export async function loadOrCreateRoot(
  dataDir: DataDir,
  trustDomain: string,
  log: CaLog,
  now: Date = new Date(),
): Promise<StoredRoot> {
  const dir = dataDir.caRootDir;
  if (!(await exists(dir))) {
    const tmp = join(dataDir.caDir, `.root-${randomBytes(6).toString('hex')}.tmp`);
    await mkdir(tmp, { mode: 0o700 });
    try {
      const { key, publicKey } = await generateRootKey();
      const cert = await createRootCertificate(key, publicKey, trustDomain, now);
      await writeFileAtomic(join(tmp, KEY), privateKeyPem(key), 0o600);
      await writeFileAtomic(join(tmp, CERT), cert.toString(), 0o600);
      await rename(tmp, dir);
      await syncDir(dataDir.caDir);
      return { issuer: { cert, key }, created: true };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
      // Another process made the root first: use it.
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  return { issuer: await readRoot(dir, log), created: false };
}

async function readRoot(dir: string, log: CaLog): Promise<Issuer> {
  const certFile = join(dir, CERT);
  const keyFile = join(dir, KEY);
  const read = async (file: string) => {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new Error(
        `${file}: ${(err as Error).message}. Restore it from a backup; only if the root is lost, remove ${dir} to make ` +
          'a new one (every sidecar must then be given the new root: see docs/security.md)',
      );
    }
  };
  const mode = (await stat(keyFile).catch(() => undefined))?.mode;
  if (mode !== undefined && (mode & 0o077) !== 0)
    log('warning', `${keyFile} can be read by others (mode ${(mode & 0o777).toString(8)}): chmod 600 it`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(await read(certFile));
  } catch (err) {
    throw new Error(`${certFile}: ${(err as Error).message}`);
  }
  let key: Issuer['key'];
  try {
    key = await importSigningKey(await read(keyFile));
  } catch (err) {
    throw new Error(`${keyFile}: ${(err as Error).message}`);
  }
  if (!cert.checkPrivateKey(key.keyObject)) throw new Error(`${keyFile} is not the key of ${certFile}`);
  return { cert, key };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Makes a rename inside `dir` durable. */
async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
