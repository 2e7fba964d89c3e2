// Hot-path timers: inactivity timers that cost a field write per touch, and per-duration deadline queues.
//
// A Node timer per request, or socket.setTimeout (refreshed by every read and write), costs more than the
// rest of a small request's bookkeeping. Both kinds here keep at most one native timer, armed lazily: when
// it fires early (the deadline moved), it is armed again for the remainder.

import { monotonicMs } from './clock.js';

/** Native timers may fire up to this much before a deadline computed on the monotonic clock. */
const SLACK_MS = 1;

/**
 * Fires `onTimeout` once `set(ms)` milliseconds pass without `touch()`. `set(0)` stops it. After firing it
 * stays stopped until the next `set()`.
 */
export class IdleTimer {
  private timeoutMs = 0;
  private last = 0;
  private timer: NodeJS.Timeout | undefined;
  private fireAt = 0;

  constructor(private readonly onTimeout: () => void) {}

  /** Sets the timeout (0 = none) and restarts the count. */
  set(ms: number): void {
    this.timeoutMs = ms;
    if (ms <= 0) return; // a pending native timer finds nothing to do
    const now = monotonicMs();
    this.last = now;
    const at = now + ms;
    if (this.timer === undefined || this.fireAt > at + SLACK_MS) this.schedule(ms, at);
  }

  /** Activity: the count starts again. */
  touch(): void {
    if (this.timeoutMs > 0) this.last = monotonicMs();
  }

  get armed(): boolean {
    return this.timeoutMs > 0;
  }

  close(): void {
    this.timeoutMs = 0;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delay: number, at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.fireAt = at;
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(delay)));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    if (this.timeoutMs <= 0) return;
    const now = monotonicMs();
    const due = this.last + this.timeoutMs;
    if (now + SLACK_MS < due) {
      this.schedule(due - now, due);
      return;
    }
    this.timeoutMs = 0;
    this.onTimeout();
  };
}

/** One pending deadline in a DeadlineQueue; reusable once it fired or was cancelled. */
export class Deadline {
  /** @internal */ at = 0;
  /** @internal */ prev: Deadline | undefined;
  /** @internal */ next: Deadline | undefined;
  /** @internal */ queue: DeadlineQueue | undefined;

  constructor(readonly onTimeout: () => void) {}

  get pending(): boolean {
    return this.queue !== undefined;
  }

  /** Fires onTimeout after `ms` (> 0), replacing any earlier start. */
  start(ms: number): void {
    this.cancel();
    queueFor(ms).add(this);
  }

  cancel(): void {
    this.queue?.remove(this);
  }
}

/**
 * Deadlines that all have the same duration: arrival order is deadline order, so adding and cancelling are
 * list operations, and one native timer serves the whole queue.
 */
class DeadlineQueue {
  private head: Deadline | undefined;
  private tail: Deadline | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly ms: number) {}

  add(d: Deadline): void {
    d.at = monotonicMs() + this.ms;
    d.queue = this;
    d.prev = this.tail;
    d.next = undefined;
    if (this.tail) this.tail.next = d;
    else this.head = d;
    this.tail = d;
    if (this.timer === undefined) this.schedule(this.ms);
  }

  remove(d: Deadline): void {
    if (d.prev) d.prev.next = d.next;
    else this.head = d.next;
    if (d.next) d.next.prev = d.prev;
    else this.tail = d.prev;
    d.prev = d.next = d.queue = undefined;
  }

  private schedule(delay: number): void {
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(delay)));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    const now = monotonicMs();
    for (let d = this.head; d !== undefined && d.at <= now + SLACK_MS; d = this.head) {
      this.remove(d);
      try {
        d.onTimeout();
      } catch (err) {
        // One owner's failure must not strand the deadlines behind it.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    if (this.head !== undefined) this.schedule(this.head.at - now);
  };
}

const queues = new Map<number, DeadlineQueue>();

function queueFor(ms: number): DeadlineQueue {
  let q = queues.get(ms);
  if (q === undefined) {
    q = new DeadlineQueue(ms);
    queues.set(ms, q);
  }
  return q;
}
