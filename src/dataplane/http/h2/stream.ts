// One request and its response on a downstream HTTP/2 stream: body in with flow control, response and trailers out.

import { constants, type ServerHttp2Stream } from 'node:http2';
import { copyIfShared } from '../../read_buffer.js';
import { type HeaderList, headerGet } from '../header_list.js';
import type { BodySink, DownstreamConnection, DownstreamProtocol, DownstreamStream } from '../stream.js';
import { type H2RequestHead, outgoingHeaders } from './headers.js';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = constants;

/** What the stream reports to its connection. */
export interface H2StreamOwner {
  /** The stream closed; `premature` when the peer reset it before the response finished. */
  streamClosed(stream: H2Stream, peerReset: boolean): void;
}

export class H2Stream implements DownstreamStream {
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
  /** The proxy reset this stream (RST_STREAM CANCEL). */
  resetSent = false;
  private sink: BodySink | undefined;
  private pendingBody: Buffer[] = [];
  private pendingEnd = false;
  private pendingError: Error | undefined;
  private requestTrailers: HeaderList | undefined;
  private doneCallbacks: ((aborted: boolean) => void)[] = [];
  private head: Record<string, string | string[]> | undefined;
  private noBody = false;
  private wantsTrailers = false;
  private noTrailers = false;
  private trailers: HeaderList | undefined;

  constructor(
    private readonly s: ServerHttp2Stream,
    head: H2RequestHead,
    readonly connection: DownstreamConnection,
    private readonly owner: H2StreamOwner,
  ) {
    this.method = head.method;
    this.url = head.path;
    this.headers = head.headers;
    this.authority = head.authority;
    this.hasBody = !s.endAfterHeaders;
    this.complete = s.endAfterHeaders;
    // gRPC (and anyone who asks with te: trailers) gets trailers: the response must stay open for them.
    this.wantsTrailers =
      /trailers/i.test(this.header('te') ?? '') ||
      (this.header('content-type')?.startsWith('application/grpc') ?? false);
    if (this.hasBody) {
      s.on('data', this.onData);
      s.on('trailers', (h: Record<string, string | string[] | undefined>) => {
        const list: HeaderList = [];
        for (const k in h) {
          const v = h[k];
          if (k.charCodeAt(0) === 58 || v === undefined) continue;
          if (Array.isArray(v)) for (const x of v) list.push(k, x);
          else list.push(k, v);
        }
        this.requestTrailers = list;
      });
      s.on('end', this.onEnd);
    }
    s.on('close', this.onClose);
    s.on('error', () => undefined);
    s.on('wantTrailers', () => {
      const t = this.trailers;
      try {
        s.sendTrailers(t && t.length > 0 ? outgoingHeaders(t) : {});
      } catch {
        // A trailer HTTP/2 cannot carry (an invalid character): end the stream without it.
        s.close(NGHTTP2_CANCEL);
      }
    });
  }

  header(name: string): string | undefined {
    return headerGet(this.headers, name);
  }

  get id(): number {
    return this.s.id ?? 0;
  }

  // ---- request body

  setBodySink(sink: BodySink): void {
    this.sink = sink;
    // As on HTTP/1.1, the proxy answers Expect: 100-continue itself once the body is wanted.
    if (!this.complete && !this.headersSent && !this.s.headersSent && !this.s.destroyed) {
      if (this.header('expect')?.toLowerCase() === '100-continue') {
        try {
          this.s.additionalHeaders({ ':status': 100 });
        } catch {
          // The stream is closing: nothing to continue.
        }
      }
    }
    const pending = this.pendingBody;
    this.pendingBody = [];
    for (const c of pending) sink.onData(c);
    if (this.pendingError) sink.onError(this.pendingError);
    else if (this.pendingEnd) sink.onEnd(this.requestTrailers);
  }

  pauseBody(): void {
    this.s.pause();
  }

  resumeBody(): void {
    this.s.resume();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.sink) this.sink.onData(chunk);
    else {
      this.pendingBody.push(chunk);
      this.s.pause();
    }
  };

  private readonly onEnd = (): void => {
    this.complete = true;
    if (this.sink) this.sink.onEnd(this.requestTrailers);
    else this.pendingEnd = true;
  };

  // ---- response

  onDone(cb: (aborted: boolean) => void): void {
    if (this.finished || this.aborted) cb(this.aborted);
    else this.doneCallbacks.push(cb);
  }

  writeHead(status: number, headers: HeaderList, _reason?: string, noTrailers = false): void {
    if (this.headersSent) throw new Error('response head already sent');
    this.headersSent = true;
    this.statusCode = status;
    this.noBody = this.method === 'HEAD' || status === 204 || status === 304;
    const h = outgoingHeaders(headers, { ':status': String(status) }) as Record<string, string | string[]>;
    if (!this.wantsTrailers && typeof h['content-type'] === 'string') {
      this.wantsTrailers = h['content-type'].startsWith('application/grpc');
    }
    this.head = h;
    this.noTrailers = noTrailers && !this.wantsTrailers;
  }

  /**
   * `ending`: end() is sending it, so whether trailers follow is known. A head sent before the end cannot know
   * (any HTTP/2 or chunked upstream response may carry trailers, not only gRPC): the stream stays open for them,
   * and ending without any then costs one empty DATA frame.
   */
  private flushHead(endStream: boolean, ending = false): void {
    const head = this.head;
    if (head === undefined) return;
    this.head = undefined;
    if (this.s.destroyed || this.s.closed) return;
    const keepOpen = !endStream && !this.noBody && (this.wantsTrailers || (!ending && !this.noTrailers));
    try {
      this.s.respond(head, { endStream: endStream || this.noBody, waitForTrailers: keepOpen });
    } catch {
      // A header HTTP/2 cannot carry (e.g. an invalid character an HTTP/1.1 upstream sent): reset the stream.
      this.resetSent = true;
      this.s.close(constants.NGHTTP2_INTERNAL_ERROR);
    }
  }

  write(chunk: Buffer): boolean {
    if (this.finished || this.aborted) return false;
    this.flushHead(false);
    if (this.noBody || chunk.length === 0 || this.s.destroyed) return true;
    return this.s.write(copyIfShared(chunk));
  }

  flushHeaders(): void {
    if (this.finished || this.aborted) return;
    this.flushHead(false);
  }

  onDrain(cb: () => void): void {
    this.s.once('drain', cb);
  }

  end(chunk?: Buffer | string, trailers?: HeaderList): void {
    if (this.finished || this.aborted) return;
    const body = chunk === undefined || chunk.length === 0 ? undefined : chunk;
    this.trailers = trailers;
    if (this.head !== undefined && body === undefined && !(trailers && trailers.length > 0)) {
      // Nothing but the head: one HEADERS frame with END_STREAM (a gRPC trailers-only answer looks like this).
      this.flushHead(true);
    } else {
      if (this.head !== undefined && trailers && trailers.length > 0) this.wantsTrailers = true;
      this.flushHead(false, true);
      // With no body allowed, respond() already ended the stream.
      if (!this.s.destroyed && !this.noBody) {
        if (body === undefined) this.s.end();
        else this.s.end(typeof body === 'string' ? body : copyIfShared(body));
      }
    }
    this.finished = true;
    this.fireDone(this.timedOut);
  }

  destroy(): void {
    if (this.finished || this.aborted) return;
    this.abort();
    if (!this.s.destroyed) {
      this.resetSent = true;
      this.s.close(NGHTTP2_CANCEL);
    }
  }

  // ---- lifecycle

  private readonly onClose = (): void => {
    const peerReset = !this.finished && this.s.rstCode !== undefined && this.s.rstCode !== NGHTTP2_NO_ERROR;
    if (!this.finished) this.abort();
    else if (!this.complete && this.sink) this.sink.onError(new Error('request stream closed'));
    this.owner.streamClosed(this, peerReset || (!this.finished && this.s.rstCode === NGHTTP2_NO_ERROR));
  };

  private abort(): void {
    if (this.finished || this.aborted) return;
    this.aborted = true;
    if (!this.complete) {
      const err = new Error('downstream stream reset');
      if (this.sink) this.sink.onError(err);
      else this.pendingError = err;
    }
    this.fireDone(true);
  }

  private fireDone(aborted: boolean): void {
    const cbs = this.doneCallbacks;
    this.doneCallbacks = [];
    for (const cb of cbs) cb(aborted);
  }
}
