// The byte pipe an upgraded HTTP/1.1 connection becomes: two sockets joined both ways with backpressure and half-close.

import type { Socket } from 'node:net';
import { IdleTimer } from '../timers.js';

/** How a tunnel ended, for stats and the access log. */
export interface TunnelEnd {
  /** Payload bytes client → upstream and upstream → client (the bytes handed over at the start included). */
  readonly downstreamBytes: number;
  readonly upstreamBytes: number;
  /** 'idle_timeout', 'downstream_reset', 'upstream_reset' or undefined for a close from both ends. */
  readonly reason: 'idle_timeout' | 'downstream_reset' | 'upstream_reset' | undefined;
}

/**
 * Relays bytes between `downstream` and `upstream` until both are closed. A FIN from one side is passed on to the
 * other (the other direction keeps flowing); a side that is destroyed before its FIN (a reset, an error) takes
 * the other down with it. `idleTimeoutMs` > 0 closes both once no byte moved either way for that long.
 * Both sockets must have been created with allowHalfOpen, and be paused: the tunnel resumes them.
 */
export class Tunnel {
  private downstreamBytes = 0;
  private upstreamBytes = 0;
  private reason: TunnelEnd['reason'];
  private closedSides = 0;
  private readonly timer: IdleTimer;

  constructor(
    private readonly downstream: Socket,
    private readonly upstream: Socket,
    idleTimeoutMs: number,
    private readonly onClose: (end: TunnelEnd) => void,
  ) {
    this.timer = new IdleTimer(() => {
      this.reason = 'idle_timeout';
      downstream.destroy();
      upstream.destroy();
    });
    this.timer.set(idleTimeoutMs);
    this.pipe(downstream, upstream, (n) => {
      this.downstreamBytes += n;
    });
    this.pipe(upstream, downstream, (n) => {
      this.upstreamBytes += n;
    });
    downstream.on('error', () => this.reset(downstream));
    upstream.on('error', () => this.reset(upstream));
    downstream.once('close', () => this.sideClosed(downstream));
    upstream.once('close', () => this.sideClosed(upstream));
  }

  /** Bytes that arrived before the tunnel existed (read along with a head): `toUpstream` from the client. */
  sendEarly(toUpstream: Buffer | undefined, toDownstream: Buffer | undefined): void {
    if (toUpstream && toUpstream.length > 0) {
      this.downstreamBytes += toUpstream.length;
      if (!this.upstream.write(toUpstream)) this.downstream.pause();
    }
    if (toDownstream && toDownstream.length > 0) {
      this.upstreamBytes += toDownstream.length;
      if (!this.downstream.write(toDownstream)) this.upstream.pause();
    }
  }

  /** Starts reading both sides; a side whose FIN came before the tunnel is half-closed on the other now. */
  start(): void {
    for (const [from, to] of [
      [this.downstream, this.upstream],
      [this.upstream, this.downstream],
    ] as const) {
      if (from.readableEnded) to.end();
      else if (!to.writableNeedDrain) from.resume();
    }
  }

  /** Closes both sides at once (the proxy is shutting down). */
  close(): void {
    this.downstream.destroy();
    this.upstream.destroy();
  }

  private pipe(from: Socket, to: Socket, count: (n: number) => void): void {
    from.on('data', (chunk: Buffer) => {
      this.timer.touch();
      count(chunk.length);
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      this.timer.touch();
      from.resume();
    });
    from.on('end', () => to.end());
  }

  /** `side` failed (a reset, an error): the other has nothing left to talk to. */
  private reset(side: Socket): void {
    const other = side === this.downstream ? this.upstream : this.downstream;
    this.reason ??= side === this.downstream ? 'downstream_reset' : 'upstream_reset';
    other.destroy();
  }

  private sideClosed(side: Socket): void {
    const other = side === this.downstream ? this.upstream : this.downstream;
    if (++this.closedSides < 2) {
      // A side closes cleanly only after both FINs, so a side gone while either direction still flows was reset
      // (or timed out): what it had yet to send or receive is lost.
      if (!other.destroyed && (!side.readableEnded || !other.readableEnded)) this.reset(side);
      return;
    }
    this.timer.close();
    this.onClose({
      downstreamBytes: this.downstreamBytes,
      upstreamBytes: this.upstreamBytes,
      reason: this.reason,
    });
  }
}
