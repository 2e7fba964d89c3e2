// One request and its response on a stream of the native HTTP/2 session: body in with flow control, response out.

import { copyIfShared } from '../../../read_buffer.js';
import type { Deadline } from '../../../timers.js';
import { type HeaderList, headerGet } from '../../header_list.js';
import type { BodySink, DownstreamConnection, DownstreamProtocol, DownstreamStream } from '../../stream.js';
import type { NativeRequestHead } from './request.js';

/** Queued response bytes beyond which write() asks the writer to wait for onDrain. */
export const STREAM_HIGH_WATER = 64 * 1024;

/** What a stream needs from its session. */
export interface StreamOwner {
  readonly connection: DownstreamConnection;
  /** Encodes and queues a HEADERS block (response head, 100, trailers) now, in HPACK order. */
  sendHeaders(stream: NativeStream, status: number, headers: HeaderList, endStream: boolean): void;
  /** Sends what the windows allow of the stream's queued body (and its end). */
  pump(stream: NativeStream): void;
  /** Request body bytes the sink took: the windows may be opened again. */
  consumed(stream: NativeStream, n: number): void;
  /** Resets the stream (RST_STREAM) and closes it. */
  reset(stream: NativeStream, code: number): void;
}

export class NativeStream implements DownstreamStream {
  readonly protocol: DownstreamProtocol = 'HTTP/2';
  readonly method: string;
  readonly url: string;
  readonly headers: string[];
  readonly authority: string;
  readonly hasBody: boolean;
  readonly opened = Date.now();
  complete: boolean;
  headersSent = false;
  finished = false;
  aborted = false;
  timedOut = false;
  statusCode = 0;
  keepAlive = true;
  /** The proxy reset this stream. */
  resetSent = false;
  /** Stream state (RFC 9113 §5.1): END_STREAM received / sent, or closed altogether. */
  remoteClosed: boolean;
  localClosed = false;
  closed = false;

  // ---- request body (fields the session reads and writes)
  /** What the peer may still send before we open the window again. */
  recvWindow: number;
  /** Bytes the sink has taken that are not yet given back as WINDOW_UPDATE. */
  unacked = 0;
  /** DATA bytes received, checked against content-length. */
  received = 0;
  readonly contentLength: number;

  // ---- response body
  /** What the peer lets us send on this stream. */
  sendWindow: number;
  /** Body chunks not yet sent (flow control), and their size. */
  queue: Buffer[] = [];
  queued = 0;
  /** end() was called: after the queue, END_STREAM (on the last DATA frame or on trailers). */
  ending = false;
  trailers: HeaderList | undefined;
  /** stream_idle_timeout, restarted by activity; undefined when there is none. */
  idle: Deadline | undefined;

  private sink: BodySink | undefined;
  private pendingBody: Buffer[] = [];
  private pendingBytes = 0;
  private paused = false;
  private pendingEnd = false;
  private pendingError: Error | undefined;
  private requestTrailers: HeaderList | undefined;
  private doneCallbacks: ((aborted: boolean) => void)[] = [];
  private drainCallbacks: (() => void)[] = [];
  private headStatus = 0;
  private headHeaders: HeaderList | undefined;
  private noBody = false;

  constructor(
    readonly id: number,
    head: NativeRequestHead,
    endStream: boolean,
    private readonly owner: StreamOwner,
    recvWindow: number,
    sendWindow: number,
  ) {
    this.method = head.method;
    this.url = head.path;
    this.headers = head.headers;
    this.authority = head.authority;
    this.contentLength = head.contentLength;
    this.hasBody = !endStream;
    this.complete = endStream;
    this.remoteClosed = endStream;
    this.recvWindow = recvWindow;
    this.sendWindow = sendWindow;
  }

  get connection(): DownstreamConnection {
    return this.owner.connection;
  }

  header(name: string): string | undefined {
    return headerGet(this.headers, name);
  }

  // ---- request body

  setBodySink(sink: BodySink): void {
    this.sink = sink;
    // As on HTTP/1.1, the proxy answers Expect: 100-continue itself once the body is wanted.
    if (
      !this.complete &&
      !this.headersSent &&
      !this.closed &&
      this.header('expect')?.toLowerCase() === '100-continue'
    ) {
      this.owner.sendHeaders(this, 100, [], false);
    }
    if (!this.paused) this.deliverPending();
  }

  pauseBody(): void {
    this.paused = true;
  }

  resumeBody(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.sink) this.deliverPending();
  }

  private deliverPending(): void {
    const sink = this.sink!;
    while (this.pendingBody.length > 0 && !this.paused) {
      const c = this.pendingBody.shift()!;
      this.pendingBytes -= c.length;
      sink.onData(c);
      if (!this.closed) this.owner.consumed(this, c.length);
    }
    if (this.pendingBody.length > 0) return;
    if (this.pendingError) {
      const e = this.pendingError;
      this.pendingError = undefined;
      sink.onError(e);
    } else if (this.pendingEnd) {
      this.pendingEnd = false;
      sink.onEnd(this.requestTrailers);
    }
  }

  /** DATA payload from the peer (the session has checked windows and content-length). */
  deliver(chunk: Buffer): void {
    if (this.sink && !this.paused && this.pendingBody.length === 0) {
      this.sink.onData(chunk);
      if (!this.closed) this.owner.consumed(this, chunk.length);
    } else {
      this.pendingBody.push(chunk);
      this.pendingBytes += chunk.length;
    }
  }

  /** END_STREAM from the peer, with the request trailers if any. */
  deliverEnd(trailers?: HeaderList): void {
    this.complete = true;
    this.requestTrailers = trailers;
    if (this.sink && !this.paused && this.pendingBody.length === 0) this.sink.onEnd(trailers);
    else this.pendingEnd = true;
  }

  // ---- response

  onDone(cb: (aborted: boolean) => void): void {
    if (this.finished || this.aborted) cb(this.aborted);
    else this.doneCallbacks.push(cb);
  }

  writeHead(status: number, headers: HeaderList, _reason?: string, _noTrailers?: boolean): void {
    if (this.headersSent) throw new Error('response head already sent');
    this.headersSent = true;
    this.statusCode = status;
    this.noBody = this.method === 'HEAD' || status === 204 || status === 304;
    this.headStatus = status;
    this.headHeaders = headers;
  }

  private flushHead(endStream: boolean): void {
    const h = this.headHeaders;
    if (h === undefined) return;
    this.headHeaders = undefined;
    if (this.closed) return;
    this.owner.sendHeaders(this, this.headStatus, h, endStream);
  }

  write(chunk: Buffer): boolean {
    if (this.finished || this.aborted) return false;
    this.flushHead(false);
    if (this.noBody || chunk.length === 0 || this.closed) return true;
    this.queue.push(copyIfShared(chunk));
    this.queued += chunk.length;
    this.owner.pump(this);
    return this.queued < STREAM_HIGH_WATER;
  }

  flushHeaders(): void {
    if (this.finished || this.aborted) return;
    this.flushHead(false);
  }

  onDrain(cb: () => void): void {
    this.drainCallbacks.push(cb);
  }

  /** The session sent some of the queue: writers waiting for room hear of it. */
  drained(): void {
    if (this.queued >= STREAM_HIGH_WATER || this.drainCallbacks.length === 0) return;
    const cbs = this.drainCallbacks;
    this.drainCallbacks = [];
    for (const cb of cbs) cb();
  }

  end(chunk?: Buffer | string, trailers?: HeaderList): void {
    if (this.finished || this.aborted) return;
    const body = chunk === undefined || chunk.length === 0 ? undefined : chunk;
    const hasTrailers = trailers !== undefined && trailers.length > 0 && !this.noBody;
    if (this.headHeaders !== undefined && (body === undefined || this.noBody) && !hasTrailers) {
      // Nothing but the head: one HEADERS frame with END_STREAM (a gRPC trailers-only answer looks like this).
      this.finished = true;
      this.flushHead(true);
    } else {
      this.flushHead(false);
      if (body !== undefined && !this.noBody && !this.closed) {
        const buf = typeof body === 'string' ? Buffer.from(body) : copyIfShared(body);
        this.queue.push(buf);
        this.queued += buf.length;
      }
      this.finished = true;
      this.trailers = hasTrailers ? trailers : undefined;
      this.ending = true;
      if (!this.closed) this.owner.pump(this);
    }
    this.fireDone(this.timedOut);
  }

  destroy(): void {
    if (this.finished || this.aborted) return;
    this.abort();
    if (!this.closed) this.owner.reset(this, 8 /* CANCEL */);
  }

  // ---- lifecycle (called by the session)

  /** The stream is closed (both ends done, or a reset): whoever still waits hears of it. */
  onClosed(): void {
    this.closed = true;
    this.queue = [];
    this.queued = 0;
    if (!this.finished) this.abort();
    else if (!this.complete) this.failBody(new Error('request stream closed'));
    this.drainCallbacks = [];
  }

  private failBody(err: Error): void {
    this.pendingBody = [];
    this.pendingBytes = 0;
    if (this.sink) this.sink.onError(err);
    else this.pendingError = err;
  }

  abort(): void {
    if (this.finished || this.aborted) return;
    this.aborted = true;
    if (!this.complete) this.failBody(new Error('downstream stream reset'));
    this.fireDone(true);
  }

  private fireDone(aborted: boolean): void {
    const cbs = this.doneCallbacks;
    this.doneCallbacks = [];
    for (const cb of cbs) cb(aborted);
  }
}
