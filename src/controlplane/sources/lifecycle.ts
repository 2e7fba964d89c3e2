// Two parts of a remote source's lifecycle (Kubernetes, Consul): a deadline on its first read, and updates
// coalesced to one per turn of the event loop.

/** Whether `ready` settles within `ms` (a rejection is thrown); no timer outlives the wait. */
export async function settlesWithin(ready: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([ready.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `run` once on the next turn of the event loop, however often `schedule()` is called before then: changes
 * that arrive together make one update. Nothing runs before `open()` (the first full read) or after `close()`.
 */
export class Coalesced {
  private opened = false;
  private closed = false;
  private pending: NodeJS.Immediate | undefined;

  constructor(private readonly run: () => void) {}

  /** Runs now, and lets `schedule()` run from now on. */
  open(): void {
    if (this.closed) return;
    this.opened = true;
    this.run();
  }

  schedule(): void {
    if (!this.opened || this.closed || this.pending !== undefined) return;
    this.pending = setImmediate(() => {
      this.pending = undefined;
      this.run();
    });
  }

  close(): void {
    this.closed = true;
    if (this.pending !== undefined) clearImmediate(this.pending);
    this.pending = undefined;
  }
}
