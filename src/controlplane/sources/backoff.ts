// Exponential back-off with jitter for sources that reconnect to a remote store (etcd, Kubernetes, Consul).

export interface BackoffOptions {
  /** First wait after a failure. */
  readonly initialMs?: number;
  /** Ceiling of the wait, however many failures in a row. */
  readonly maxMs?: number;
}

/**
 * Waits grow by doubling from `initialMs` to `maxMs`; each is drawn between half and all of its step ("equal
 * jitter"), so replicas that lost one server together do not come back to it in lockstep. `reset()` after a
 * success starts over.
 */
export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  private failures = 0;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = Math.max(1, options.initialMs ?? 200);
    this.maxMs = Math.max(this.initialMs, options.maxMs ?? 10_000);
  }

  /** The wait before the next attempt, counting one more failure. */
  next(): number {
    const step = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    return Math.round(step / 2 + Math.random() * (step / 2));
  }

  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }
}

/** A wait that `cancel()` ends early (resolving false), so a closing source does not sit out a long back-off. */
export class CancellableSleep {
  private timer: NodeJS.Timeout | undefined;
  private wake: ((done: boolean) => void) | undefined;

  sleep(ms: number): Promise<boolean> {
    this.cancel();
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.wake = undefined;
        resolve(true);
      }, ms);
    });
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const w = this.wake;
    this.wake = undefined;
    w?.(false);
  }
}
