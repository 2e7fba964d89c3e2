// One request on a stream of the native HTTP/2 client: its send and receive state and the router's callbacks.

import type { HeaderList } from '../../http/header_list.js';
import { copyIfShared } from '../../read_buffer.js';
import type {
  BodyTarget,
  UpstreamController,
  UpstreamError,
  UpstreamHandler,
  UpstreamRequest,
} from '../upstream_request.js';

/** Request body bytes queued on a stream past which the body's writer is told to wait. */
export const BODY_HIGH_WATER = 64 * 1024;

/** What an exchange asks of the connection its stream is on. */
export interface ExchangeConnection {
  /** Sends what the windows allow of the queued body (and its end). */
  pumpBody(ex: NativeH2Exchange): void;
  /** RST_STREAM(CANCEL): the router gave up on the exchange. */
  cancel(ex: NativeH2Exchange): void;
  /** The exchange resumed: the flow-control credit it held back goes to the peer. */
  release(ex: NativeH2Exchange): void;
}

export class NativeH2Exchange implements UpstreamController, BodyTarget {
  /** Stream id; 0 while queued. */
  id = 0;
  conn: ExchangeConnection | undefined;
  /** No more callbacks to the handler (ended, failed or aborted). */
  done = false;
  aborted = false;
  paused = false;
  /** The final response head went to the handler. */
  responded = false;

  // ---- sending: the request body
  sendWindow = 0;
  readonly queue: Buffer[] = [];
  queued = 0;
  /** The body ended: END_STREAM (or trailers) after the queue. */
  ending = false;
  requestTrailers: HeaderList | undefined;
  localEnded = false;
  /** onData asked the writer to wait: body.resume() is owed once the queue drains. */
  owesResume = false;

  // ---- receiving: the response
  recvWindow = 0;
  /** Bytes delivered whose WINDOW_UPDATE has not gone out. */
  recvUnacked = 0;
  /** Bytes delivered while paused: their credit waits for resume(). */
  held = 0;
  /** A header block ended the stream (trailers follow, or a trailers-only response). */
  remoteEnded = false;

  constructor(
    readonly req: UpstreamRequest,
    readonly handler: UpstreamHandler,
    /** Takes an exchange that never started out of its queue. */
    private readonly onAbortQueued: (ex: NativeH2Exchange) => void,
  ) {}

  // ---- UpstreamController

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.held > 0 && !this.done) this.conn?.release(this);
  }

  abort(_reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.req.body?.detach(this);
    if (this.done) return;
    this.done = true;
    if (this.conn === undefined) return this.onAbortQueued(this);
    this.conn.cancel(this);
  }

  // ---- BodyTarget

  onData(chunk: Buffer): boolean {
    if (this.done || this.ending) return false;
    if (chunk.length === 0) return true;
    this.queue.push(copyIfShared(chunk));
    this.queued += chunk.length;
    this.conn?.pumpBody(this);
    if (this.queued < BODY_HIGH_WATER) return true;
    this.owesResume = true;
    return false;
  }

  onEnd(trailers?: HeaderList): void {
    if (this.done || this.ending) return;
    this.ending = true;
    this.requestTrailers = trailers !== undefined && trailers.length > 0 ? trailers : undefined;
    this.conn?.pumpBody(this);
  }

  onError(err: Error): void {
    // The downstream body failed (the client went): the router abandons the attempt.
    this.abort(err);
  }

  /** The queue drained below the mark: the body writer may go on. */
  drained(): void {
    if (this.owesResume && this.queued < BODY_HIGH_WATER && !this.done) {
      this.owesResume = false;
      this.req.body?.resume();
    }
  }

  /** The exchange failed (connection lost, stream reset, malformed response, or never started). */
  fail(err: UpstreamError): void {
    if (this.done) return;
    this.done = true;
    this.req.body?.detach(this);
    this.aborted = true;
    this.handler.onResponseError(this, err);
  }
}
