// Per-key debounce of pushes: a burst of changes becomes one push, delayed at most by a ceiling.

export interface DebounceOptions {
  /** Quiet time after the last change before firing. */
  readonly delayMs: number;
  /** Ceiling on the delay since the first change of a burst, so steady churn still gets pushed. */
  readonly maxDelayMs: number;
  readonly now?: () => number;
}

/** Calls `fire(key, firstChangeAt)` once per burst of `trigger(key)` calls. */
export class Debouncer<K> {
  private readonly pending = new Map<K, { firstAt: number; timer: NodeJS.Timeout }>();
  private readonly now: () => number;
  private closed = false;

  constructor(
    private readonly opts: DebounceOptions,
    private readonly fire: (key: K, firstChangeAt: number) => void,
  ) {
    this.now = opts.now ?? Date.now;
  }

  trigger(key: K): void {
    if (this.closed) return;
    const now = this.now();
    const entry = this.pending.get(key);
    const firstAt = entry?.firstAt ?? now;
    if (entry !== undefined) clearTimeout(entry.timer);
    const wait = Math.max(0, Math.min(this.opts.delayMs, firstAt + this.opts.maxDelayMs - now));
    const timer = setTimeout(() => {
      this.pending.delete(key);
      this.fire(key, firstAt);
    }, wait);
    this.pending.set(key, { firstAt, timer });
  }

  /** True while a push for `key` waits. */
  isPending(key: K): boolean {
    return this.pending.has(key);
  }

  /** Drops every pending push. */
  close(): void {
    this.closed = true;
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }
}
