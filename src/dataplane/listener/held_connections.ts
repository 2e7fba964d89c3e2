// The connections a warming listener has accepted: they wait, bounded in number and in time, until it serves them.

import type { Socket } from 'node:net';
import { monotonicMs } from '../clock.js';
import type { Counter, Gauge } from '../observe/stats.js';

/** How many connections a warming listener keeps waiting, and for how long. */
export interface HoldLimits {
  /** With this many waiting, the next connection is reset. */
  readonly maxConnections: number;
  /** A connection that has waited this long is reset. */
  readonly maxWaitMs: number;
}

/**
 * 20 s is past the 15 s a listener warms at most by default (RDS initial_fetch_timeout), after which it serves
 * anyway: a connection held from the start is served, not reset, unless the timeout was raised.
 */
export const DEFAULT_HOLD_LIMITS: HoldLimits = { maxConnections: 1024, maxWaitMs: 20_000 };

/** The listener stats a holder keeps: held connections count as pre-connections (no filter chain yet). */
export interface HoldStats {
  readonly downstream_pre_cx_active: Gauge;
  /** Reset because too many were waiting. */
  readonly downstream_cx_overflow: Counter;
  /** Reset because they waited too long. */
  readonly downstream_pre_cx_timeout: Counter;
}

interface Waiting {
  readonly deadline: number;
  readonly onClose: () => void;
}

const ignore = (): void => undefined;

/**
 * Connections waiting for their listener to be warm. Nothing reads them: the kernel and the socket's own buffer
 * keep what the client sends, for the filter chain to read once released. One timer, for the oldest, whatever
 * their number.
 */
export class HeldConnections {
  private readonly waiting = new Map<Socket, Waiting>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limits: HoldLimits,
    private readonly stats: HoldStats,
  ) {}

  get size(): number {
    return this.waiting.size;
  }

  /** Keeps an accepted connection waiting; resets it when too many already are. */
  add(socket: Socket): void {
    socket.on('error', ignore);
    if (this.waiting.size >= this.limits.maxConnections) {
      this.stats.downstream_cx_overflow.inc();
      socket.resetAndDestroy();
      return;
    }
    const onClose = (): void => {
      if (this.waiting.delete(socket)) this.stats.downstream_pre_cx_active.dec();
    };
    socket.once('close', onClose);
    this.waiting.set(socket, { deadline: monotonicMs() + this.limits.maxWaitMs, onClose });
    this.stats.downstream_pre_cx_active.inc();
    this.timer ??= setTimeout(this.expire, this.limits.maxWaitMs);
  }

  /** Hands every connection still open to `take`, in the order they came; the holder is done. */
  release(take: (socket: Socket) => void): void {
    const sockets = this.clear();
    for (const s of sockets) if (!s.destroyed) take(s);
  }

  /** Resets every waiting connection (the listener was removed or replaced before it was warm). */
  close(): void {
    for (const s of this.clear()) s.resetAndDestroy();
  }

  /** Resets the connections past their deadline (they come in deadline order), then waits for the next one. */
  private readonly expire = (): void => {
    this.timer = undefined;
    const now = monotonicMs();
    for (const [socket, w] of this.waiting) {
      if (w.deadline > now) {
        this.timer = setTimeout(this.expire, Math.max(1, Math.ceil(w.deadline - now)));
        return;
      }
      this.forget(socket, w);
      this.stats.downstream_pre_cx_timeout.inc();
      socket.resetAndDestroy();
    }
  };

  private clear(): Socket[] {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const sockets = [...this.waiting.keys()];
    for (const [s, w] of [...this.waiting]) this.forget(s, w);
    return sockets;
  }

  private forget(socket: Socket, w: Waiting): void {
    this.waiting.delete(socket);
    // The 'error' handler stays: a socket reset here may still report an error, and its next owner adds its own.
    socket.off('close', w.onClose);
    this.stats.downstream_pre_cx_active.dec();
  }
}
