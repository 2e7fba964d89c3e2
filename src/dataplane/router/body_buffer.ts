// A request body that can be sent again: chunks are kept up to a bound so a retry can replay them.

import type { HeaderList } from '../http/header_list.js';
import type { BodySink, DownstreamStream } from '../http/stream.js';
import type { BodyTarget, RequestBody } from '../upstream/h1_connection.js';

/**
 * Reads the downstream body once and feeds one attempt at a time. While the body read so far fits under
 * `limit`, a new attempt replays it from the start; past the limit the kept chunks are dropped and the
 * body can no longer be retried (Envoy's buffer-limit rule for retries).
 */
export class ReplayableBody implements BodySink, RequestBody {
  private kept: Buffer[] | undefined = [];
  private keptBytes = 0;
  private ended = false;
  private trailers: HeaderList | undefined;
  private failed: Error | undefined;
  private target: BodyTarget | undefined;
  private opened = false;
  /** Chunks that arrived while no attempt was attached (before the first one opened, or between tries). */
  private unsent: Buffer[] = [];
  private completeWaiters: (() => void)[] | undefined;
  /** Bytes read from the downstream so far. */
  bytesRead = 0;

  constructor(
    private readonly stream: DownstreamStream,
    private readonly limit: number,
    private readonly info: { bytesReceived: number },
  ) {
    stream.setBodySink(this);
  }

  /** A (new) attempt can be given the whole body from its first byte. */
  get replayable(): boolean {
    return this.kept !== undefined || !this.opened;
  }

  get complete(): boolean {
    return this.ended;
  }

  /** Starts delivering to a new attempt: what was kept first, then what arrives. */
  open(target: BodyTarget): void {
    if (this.opened && this.kept === undefined) throw new Error('request body is no longer replayable');
    const chunks = this.kept ?? this.unsent;
    this.opened = true;
    this.unsent = [];
    this.target = target;
    let ok = true;
    for (const c of chunks) ok = target.onData(c) && ok;
    if (this.failed) target.onError(this.failed);
    else if (this.ended) target.onEnd(this.trailers);
    else if (ok) this.stream.resumeBody();
    else this.stream.pauseBody();
  }

  /** Calls `cb` once the whole body has been read from the downstream. */
  onComplete(cb: () => void): void {
    if (this.ended) cb();
    else {
      this.completeWaiters ??= [];
      this.completeWaiters.push(cb);
    }
  }

  resume(): void {
    if (this.target && !this.ended) this.stream.resumeBody();
  }

  detach(target: BodyTarget): void {
    if (this.target === target) this.target = undefined;
  }

  // ---- BodySink: the downstream side

  onData(chunk: Buffer): void {
    this.bytesRead += chunk.length;
    this.info.bytesReceived += chunk.length;
    if (this.kept !== undefined) {
      if (this.keptBytes + chunk.length <= this.limit) {
        this.kept.push(chunk);
        this.keptBytes += chunk.length;
      } else {
        this.kept = undefined;
        this.keptBytes = 0;
      }
    }
    const t = this.target;
    if (!t) {
      // No attempt is attached (connecting, queued, backing off): hold the downstream until one opens.
      this.unsent.push(chunk);
      this.stream.pauseBody();
      return;
    }
    if (!t.onData(chunk)) this.stream.pauseBody();
  }

  onEnd(trailers?: HeaderList): void {
    this.ended = true;
    this.trailers = trailers;
    this.target?.onEnd(trailers);
    const waiters = this.completeWaiters;
    this.completeWaiters = undefined;
    if (waiters) for (const w of waiters) w();
  }

  onError(err: Error): void {
    this.failed = err;
    this.target?.onError(err);
  }
}
