// A request body that can be sent again: chunks are kept up to a bound so a retry can replay them.

import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';

/**
 * Reads the downstream body once and feeds one attempt at a time. While the body read so far fits under
 * `limit`, a new attempt replays it from the start; past the limit the kept chunks are dropped and the
 * body can no longer be retried (Envoy's buffer-limit rule for retries).
 */
export class ReplayableBody {
  private kept: Buffer[] | undefined = [];
  private keptBytes = 0;
  private ended = false;
  private failed: Error | undefined;
  private current: Readable | undefined;
  /** Bytes read from the downstream so far. */
  bytesRead = 0;

  constructor(
    private readonly source: IncomingMessage,
    private readonly limit: number,
    private readonly info: { bytesReceived: number },
  ) {
    source.on('data', (chunk: Buffer) => this.onData(chunk));
    source.on('end', () => {
      this.ended = true;
      this.current?.push(null);
    });
    source.on('error', (err) => {
      this.failed = err;
      this.current?.destroy(err);
    });
    source.pause();
  }

  get replayable(): boolean {
    return this.kept !== undefined;
  }

  get complete(): boolean {
    return this.ended;
  }

  /** A fresh stream for the next attempt; the previous attempt's stream is abandoned. */
  open(): Readable {
    if (this.kept === undefined && this.current) throw new Error('request body is no longer replayable');
    const prev = this.current;
    if (prev) {
      prev.removeAllListeners('close');
      prev.destroy();
    }
    const stream = new Readable({
      read: () => {
        if (this.current === stream && !this.ended) this.source.resume();
      },
    });
    this.current = stream;
    for (const c of this.kept ?? []) stream.push(c);
    if (this.failed) stream.destroy(this.failed);
    else if (this.ended) stream.push(null);
    return stream;
  }

  private onData(chunk: Buffer): void {
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
    const stream = this.current;
    if (!stream?.push(chunk)) this.source.pause();
  }
}
