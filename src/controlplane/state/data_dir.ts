// The control plane's data directory (`--data-dir`): its layout, made private, and atomic writes into it.

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

/**
 * What a control-plane replica keeps on disk, one subdirectory per concern so that each can grow on its own:
 *
 *     DIR/sources/<source>.json   the last state of each remote source (see sources/source_store.ts)
 *     DIR/ca/root/cert.pem        the CA's generated root certificate, and its key root/key.pem (see ca/root_store.ts)
 *     DIR/ca/extra-roots.pem      written by the operator: roots trusted beside the active one (root rotation)
 *     DIR/ca/roots.pem, ca.json   what the running CA distributes and pins: its trust bundle and trust domain
 *     DIR/ca/tokens/<id>/         one join token each: its record and one file per use (see ca/tokens.ts)
 *
 * A directory this code creates is 0700 and a file 0600: what is kept describes the whole mesh. An existing `DIR`
 * keeps the mode its owner gave it; the subdirectories inside are created private.
 */
export class DataDir {
  private constructor(readonly root: string) {}

  /** Creates `DIR` and its subdirectories when missing and checks that they can be written. */
  static async open(path: string): Promise<DataDir> {
    const root = resolve(path);
    const dir = new DataDir(root);
    await ensureDir(root);
    await ensureDir(dir.sourcesDir);
    await ensureDir(dir.caDir);
    await ensureDir(dir.tokensDir);
    return dir;
  }

  get sourcesDir(): string {
    return join(this.root, 'sources');
  }

  /** The certificate authority's files: its root (private key included), its bundle, its join tokens. */
  get caDir(): string {
    return join(this.root, 'ca');
  }

  /** `DIR/ca/root/`: the generated root's `cert.pem` and `key.pem`, created together by one rename. */
  get caRootDir(): string {
    return join(this.caDir, 'root');
  }

  get tokensDir(): string {
    return join(this.caDir, 'tokens');
  }

  /** `DIR/sources/<name>.json`; a name that is not a plain file name is escaped. */
  sourceStateFile(sourceName: string): string {
    return join(this.sourcesDir, `${safeFileName(sourceName)}.json`);
  }
}

/** Creates `dir` (0700) when missing; throws one line saying what is wrong with it. */
async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (!(await stat(dir)).isDirectory())
      throw Object.assign(new Error('not a directory'), { code: 'EEXIST' });
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EEXIST') throw new Error(`${dir}: not a directory`);
    if (e.code === 'ENOTDIR') throw new Error(`${dir}: a parent is not a directory`);
    if (e.code === 'EACCES' || e.code === 'EPERM') throw new Error(`${dir}: permission denied`);
    throw new Error(`${dir}: ${e.message}`);
  }
}

/** Source names are plain (`etcd`); anything else is percent-escaped so that it stays one file in the directory. */
function safeFileName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return safe === '' || safe.startsWith('.') ? `%2e${safe.slice(1)}` : safe;
}

/**
 * Replaces `file` with `data` in one step: the data goes to a new file beside it, is flushed to disk, and is renamed
 * over `file`. A reader (or a restart after a crash or power loss) sees the old content or the new, never a part.
 */
export async function writeFileAtomic(file: string, data: string, mode = 0o600): Promise<void> {
  const tmp = join(dirname(file), `.${randomBytes(6).toString('hex')}.${process.pid}.tmp`);
  let renamed = false;
  try {
    const h = await open(tmp, 'wx', mode);
    try {
      await h.writeFile(data, 'utf8');
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, file);
    renamed = true;
    // The rename itself is durable once the directory is: without this, a power loss may bring back the old file.
    const d = await open(dirname(file), 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } finally {
    if (!renamed) await rm(tmp, { force: true });
  }
}
