// The files source: a directory of Kubernetes-style manifests, watched, re-read on change after a short debounce.

import { type FSWatcher, watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import { ManifestDir } from './manifest_dir.js';
import type { Source, SourceListener, SourceProblem } from './source.js';

export interface FilesSourceOptions {
  readonly dir: string;
  /** Quiet time after the last change before the directory is re-read (editors write in several steps). */
  readonly debounceMs?: number;
  /** Re-read interval when the directory cannot be watched (inotify limits) or has gone away. */
  readonly pollMs?: number;
  readonly name?: string;
}

/**
 * Watches every directory under `dir` (not the files: editors and Kubernetes replace files by renaming, which a
 * watch on the file itself would miss). Any event schedules a re-read of the tree; only files whose inode, size
 * or times changed are parsed again. Each update carries the full set of objects and the current problems.
 */
export class FilesSource implements Source {
  readonly name: string;
  private readonly files: ManifestDir;
  private readonly debounceMs: number;
  private readonly pollMs: number;
  private readonly watchers = new Map<string, FSWatcher>();
  private listener: SourceListener | undefined;
  private timer: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private dirty = false;
  private closed = false;
  private rootProblem: SourceProblem | undefined;

  constructor(options: FilesSourceOptions) {
    this.name = options.name ?? 'files';
    this.files = new ManifestDir(options.dir, this.name);
    this.debounceMs = options.debounceMs ?? 100;
    this.pollMs = options.pollMs ?? 2000;
  }

  async start(listener: SourceListener): Promise<void> {
    const st = await stat(this.files.dir).catch((err: NodeJS.ErrnoException) => {
      throw new Error(
        `manifest directory ${this.files.dir}: ${err.code === 'ENOENT' ? 'does not exist' : err.message}`,
      );
    });
    if (!st.isDirectory()) throw new Error(`manifest directory ${this.files.dir}: not a directory`);
    this.listener = listener;
    await this.rescan(true);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.poll);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    await this.scanning;
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.rescan(false), this.debounceMs);
  }

  /** One re-read at a time; changes seen during a re-read trigger another one after it. */
  private async rescan(force: boolean): Promise<void> {
    if (this.scanning !== undefined) {
      this.dirty = true;
      return this.scanning;
    }
    this.scanning = this.scanOnce(force).finally(() => {
      this.scanning = undefined;
      if (this.dirty && !this.closed) {
        this.dirty = false;
        this.schedule();
      }
    });
    return this.scanning;
  }

  private async scanOnce(force: boolean): Promise<void> {
    const rootOk = await stat(this.files.dir).then(
      (s) => s.isDirectory(),
      () => false,
    );
    const hadProblem = this.rootProblem !== undefined;
    if (!rootOk) {
      // The directory went away (an unmount, a rename): keep serving what it held until it comes back.
      this.rootProblem = {
        code: 'RA0105',
        message: `${this.files.dir}: the manifest directory is gone; serving its last objects until it returns`,
      };
      this.startPolling();
      if (!hadProblem) this.emit();
      return;
    }
    this.rootProblem = undefined;
    const { changed, dirs } = await this.files.scan();
    if (this.closed) return;
    this.watchDirs(dirs);
    if (changed || force || hadProblem) this.emit();
  }

  private emit(): void {
    if (this.closed || this.listener === undefined) return;
    const { objects, problems } = this.files.current();
    if (this.rootProblem !== undefined) problems.unshift(this.rootProblem);
    this.listener({ kind: 'full', objects, problems });
  }

  private watchDirs(dirs: readonly string[]): void {
    const want = new Set(dirs);
    for (const [d, w] of this.watchers) {
      if (!want.has(d)) {
        w.close();
        this.watchers.delete(d);
      }
    }
    for (const d of dirs) {
      if (this.watchers.has(d)) continue;
      try {
        const w = watch(d, { persistent: false }, () => this.schedule());
        w.on('error', () => {
          // The directory was removed or replaced: forget the watch; the re-read finds the new layout.
          w.close();
          this.watchers.delete(d);
          this.schedule();
        });
        this.watchers.set(d, w);
      } catch {
        // Out of inotify watches, or the directory vanished meanwhile: fall back to re-reading on a timer.
        this.startPolling();
      }
    }
  }

  private startPolling(): void {
    if (this.poll !== undefined || this.closed) return;
    this.poll = setInterval(() => void this.rescan(false), this.pollMs);
    this.poll.unref();
  }
}
