// A directory of manifests read into objects, file by file, keeping each file's last good objects across bad edits.

import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { formatManifestError, type ManifestError, parseManifests } from '../manifests/parse.js';
import { describeObject, type MeshObject, objectKey } from '../model/objects.js';
import type { SourceProblem } from './source.js';

/** Larger files are refused: a manifest directory holds configuration, not data. */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;
const MAX_DEPTH = 32;

/** Manifest files: YAML or JSON, not hidden (editors' swap files, Kubernetes' `..data` folders), not backups. */
export function isManifestFile(name: string): boolean {
  return !name.startsWith('.') && !name.endsWith('~') && /\.(ya?ml|json)$/i.test(name);
}

interface FileState {
  /** Identity of the file's content on disk (device, inode, size, times): unchanged means not re-read. */
  readonly stamp: string;
  readonly text: string;
  /** The objects this file serves: its valid objects, plus its last good ones while it has errors. */
  readonly served: readonly MeshObject[];
  readonly errors: readonly ManifestError[];
  /** Set when the file could not be read at all. */
  readonly readError?: string;
}

export interface ScanResult {
  /** Whether anything (objects or problems) differs from the previous scan. */
  readonly changed: boolean;
  /** Every directory walked (absolute), for the caller to watch. */
  readonly dirs: readonly string[];
}

/**
 * The manifests under one directory (recursively). `scan()` brings the state up to date with the disk: new and
 * changed files are parsed, deleted ones dropped. A file with errors keeps serving the objects of its last good
 * version that its new version does not validly define: an error never deletes anything.
 */
export class ManifestDir {
  private files = new Map<string, FileState>();

  /** `dir` as the user gave it: file names in messages start with it. */
  constructor(
    readonly dir: string,
    private readonly sourceName: string,
  ) {}

  async scan(): Promise<ScanResult> {
    const found = new Map<string, string>();
    const dirs: string[] = [];
    await this.walk(this.dir, 0, new Set(), found, dirs);
    const next = new Map<string, FileState>();
    let changed = found.size !== this.files.size;
    for (const [rel, abs] of [...found.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const old = this.files.get(rel);
      const state = await this.load(rel, abs, old);
      if (old === undefined || state.served !== old.served || state.errors !== old.errors) changed = true;
      else if (state.readError !== old.readError) changed = true;
      next.set(rel, state);
    }
    this.files = next;
    return { changed, dirs };
  }

  /** The objects of every file, in file order; an object defined again in a later file is reported, not served. */
  current(): { objects: MeshObject[]; problems: SourceProblem[] } {
    const objects: MeshObject[] = [];
    const problems: SourceProblem[] = [];
    const owner = new Map<string, string>();
    for (const [rel, f] of this.files) {
      const file = join(this.dir, rel);
      if (f.readError !== undefined) problems.push({ code: 'RA0105', message: `${file}: ${f.readError}` });
      for (const e of f.errors) problems.push({ code: e.code, manifest: e, message: formatManifestError(e) });
      for (const o of f.served) {
        const k = objectKey(o);
        const first = owner.get(k);
        if (first !== undefined) {
          problems.push({
            code: 'RA0104',
            message: `${file}: ${describeObject(o)} is also defined in ${first}: ignored here`,
          });
          continue;
        }
        owner.set(k, file);
        objects.push(o);
      }
    }
    return { objects, problems };
  }

  private async walk(
    dir: string,
    depth: number,
    seen: Set<string>,
    found: Map<string, string>,
    dirs: string[],
  ) {
    if (depth > MAX_DEPTH) return;
    let real: string;
    try {
      real = await realpath(dir);
    } catch {
      return;
    }
    if (seen.has(real)) return; // a symlink loop
    seen.add(real);
    dirs.push(dir);
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const abs = join(dir, e.name);
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        // Kubernetes mounts ConfigMaps as symlinks into a hidden `..data` folder: follow them.
        const st = await stat(abs).catch(() => undefined);
        isDir = st?.isDirectory() ?? false;
        isFile = st?.isFile() ?? false;
      }
      if (isDir) await this.walk(abs, depth + 1, seen, found, dirs);
      else if (isFile && isManifestFile(e.name)) found.set(relative(this.dir, abs), abs);
    }
  }

  private async load(rel: string, abs: string, old: FileState | undefined): Promise<FileState> {
    const file = join(this.dir, rel);
    let stamp: string;
    let text: string;
    try {
      const st = await stat(abs, { bigint: true });
      stamp = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
      if (old !== undefined && old.stamp === stamp) return old;
      if (st.size > BigInt(MAX_FILE_BYTES)) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
      text = await readFile(abs, 'utf8');
    } catch (err) {
      const readError = `cannot read: ${err instanceof Error ? err.message : String(err)}`;
      // Gone between the listing and the read (a rename in progress): the next scan sees the outcome.
      return { stamp: '', text: '', served: old?.served ?? [], errors: [], readError };
    }
    if (old !== undefined && old.text === text && old.readError === undefined) return { ...old, stamp };
    const parsed = parseManifests(text, { source: this.sourceName, file });
    let served: MeshObject[] = parsed.objects;
    if (parsed.errors.length > 0 && old !== undefined) {
      const now = new Set(parsed.objects.map(objectKey));
      served = [...parsed.objects, ...old.served.filter((o) => !now.has(objectKey(o)))];
    }
    return { stamp, text, served, errors: parsed.errors };
  }
}
