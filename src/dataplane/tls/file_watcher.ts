// Tells when files may have changed: watches their directories, so atomic renames (Kubernetes secrets) are seen.

import { type FSWatcher, realpathSync, watch } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Calls `onChange` once things settle after any change in the directories holding `files` (and those their
 * symlinks point into). A file replaced by rename is a new inode, which a watch on the file itself would miss;
 * Kubernetes swaps a `..data` symlink in the same directory. The caller re-reads and compares.
 */
export class FileWatcher {
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    files: readonly string[],
    private readonly onChange: () => void,
    private readonly debounceMs = 100,
  ) {
    const dirs = new Set<string>();
    for (const f of files) {
      dirs.add(dirname(f));
      try {
        dirs.add(dirname(realpathSync(f)));
      } catch {
        // Gone already: its directory is watched, which is what sees it come back.
      }
    }
    for (const d of dirs) {
      try {
        const w = watch(d, { persistent: false }, this.changed);
        // A directory that disappears ends its watch; the others carry on.
        w.on('error', () => w.close());
        this.watchers.push(w);
      } catch {
        // Unwatchable directory: the files were read once and stay as they are.
      }
    }
  }

  private readonly changed = (): void => {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closed) this.onChange();
    }, this.debounceMs);
    this.timer.unref();
  };

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
  }
}
