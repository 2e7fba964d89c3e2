// One request on an upstream HTTP/2 stream: headers and body out with flow control, response and trailers back.

import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { flatHeaders, outgoingHeaders } from '../http/h2/headers.js';
import type { HeaderList } from '../http/header_list.js';
import { copyIfShared } from '../read_buffer.js';
import {
  type BodyTarget,
  type UpstreamController,
  UpstreamError,
  type UpstreamHandler,
  type UpstreamRequest,
} from './upstream_request.js';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, HTTP2_HEADER_STATUS } = constants;

/** What an exchange tells the connection it runs on. */
export interface H2ExchangeOwner {
  exchangeDone(ex: H2Exchange): void;
  /** The connection had carried a response before this one (for the keep-alive race rule). */
  readonly reused: boolean;
}

export class H2Exchange implements UpstreamController, BodyTarget {
  aborted = false;
  private stream: ClientHttp2Stream | undefined;
  private session: ClientHttp2Session | undefined;
  private owner: H2ExchangeOwner | undefined;
  private responded = false;
  private ended = false;
  private paused = false;
  private trailers: HeaderList | undefined;
  private requestTrailers: HeaderList | undefined;

  constructor(
    readonly req: UpstreamRequest,
    readonly handler: UpstreamHandler,
    /** Called when an exchange that never started is abandoned (to take it out of a queue). */
    private readonly onAbortQueued: (ex: H2Exchange) => void,
  ) {}

  /** Opens the stream on `session`. */
  start(session: ClientHttp2Session, owner: H2ExchangeOwner): void {
    this.owner = owner;
    this.session = session;
    const req = this.req;
    const h = req.headers;
    const head: OutgoingHttpHeaders = {
      ':method': req.method,
      ':scheme': req.scheme,
      ':path': req.path,
    };
    for (let i = 0; i < h.length; i += 2) {
      if (h[i] === 'host') {
        head[':authority'] = h[i + 1];
        break;
      }
    }
    outgoingHeaders(h, head);
    const hasBody = req.body !== undefined;
    let s: ClientHttp2Stream;
    try {
      s = session.request(head, { endStream: !hasBody, waitForTrailers: hasBody });
    } catch (err) {
      this.fail(new UpstreamError('reset', `cannot open an HTTP/2 stream: ${(err as Error).message}`));
      return;
    }
    this.stream = s;
    s.on('response', this.onResponse);
    s.on('data', this.onResponseBytes);
    s.on('trailers', (t: IncomingHttpHeaders) => {
      this.trailers = flatHeaders(t);
    });
    s.on('end', this.onResponseEnd);
    s.on('close', this.onClose);
    s.on('error', () => undefined);
    s.on('wantTrailers', () => {
      const t = this.requestTrailers;
      try {
        s.sendTrailers(t && t.length > 0 ? outgoingHeaders(t) : {});
      } catch {
        s.close(NGHTTP2_CANCEL);
      }
    });
    this.handler.onRequestStart(this);
    if (this.aborted) return;
    if (hasBody) {
      s.on('drain', () => req.body?.resume());
      req.body!.open(this);
    }
  }

  // ---- UpstreamController

  pause(): void {
    this.paused = true;
    this.stream?.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.stream?.resume();
  }

  abort(_reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.req.body?.detach(this);
    const s = this.stream;
    if (s === undefined) return this.onAbortQueued(this);
    if (!s.destroyed) s.close(NGHTTP2_CANCEL);
  }

  // ---- BodyTarget: the request body

  onData(chunk: Buffer): boolean {
    const s = this.stream;
    if (s === undefined || s.destroyed || this.aborted) return false;
    return s.write(copyIfShared(chunk));
  }

  onEnd(trailers?: HeaderList): void {
    const s = this.stream;
    if (s === undefined || s.destroyed || this.aborted) return;
    this.requestTrailers = trailers;
    s.end();
  }

  onError(_err: Error): void {
    // The downstream body failed (client gone): the router abandons the attempt; reset the stream.
    this.abort(_err);
  }

  // ---- the response

  private readonly onResponse = (headers: IncomingHttpHeaders, flags: number): void => {
    if (this.aborted) return;
    this.responded = true;
    const status = Number(headers[HTTP2_HEADER_STATUS]);
    this.handler.onResponseStart(this, status, flatHeaders(headers), '');
    if (this.aborted) return;
    if (flags & constants.NGHTTP2_FLAG_END_STREAM) return;
    // The head must not wait for body bytes that may be long in coming (a gRPC stream, a long poll). Data read
    // in the same pass arrives before this runs, so a head and a small body still go out together.
    process.nextTick(() => {
      if (!this.ended && !this.aborted) this.handler.onResponseWaiting(this);
    });
  };

  private readonly onResponseBytes = (chunk: Buffer): void => {
    if (!this.aborted) this.handler.onResponseData(this, chunk);
  };

  private readonly onResponseEnd = (): void => {
    if (this.aborted || this.ended) return;
    // node ends the readable side on an RST_STREAM (CANCEL, REFUSED_STREAM ...) too: that is a truncated
    // response, which onClose reports as a reset. (A reset with NO_ERROR cannot be told apart from the end.)
    const s = this.stream!;
    if (s.closed && s.rstCode !== undefined && s.rstCode !== NGHTTP2_NO_ERROR) return;
    this.ended = true;
    this.req.body?.detach(this);
    this.owner?.exchangeDone(this);
    this.handler.onResponseEnd(this, this.trailers);
  };

  private readonly onClose = (): void => {
    const s = this.stream!;
    if (!this.ended) {
      const code = s.rstCode;
      if (!this.aborted) {
        const why =
          code === NGHTTP2_REFUSED_STREAM
            ? 'the upstream refused the stream (REFUSED_STREAM)'
            : `stream reset by the upstream (HTTP/2 error code ${code ?? 'unknown'})`;
        // The keep-alive race on a reused connection: the connection went, or the upstream says it did nothing with
        // the stream (REFUSED_STREAM, also what a GOAWAY gives the streams it leaves out). A stream the upstream
        // reset with an error may have been acted on: sending it again is not safe.
        const race =
          this.owner?.reused === true &&
          (code === NGHTTP2_REFUSED_STREAM || this.session?.destroyed === true);
        this.fail(new UpstreamError('reset', why, race, !this.responded));
      }
    }
    this.owner?.exchangeDone(this);
  };

  /** The connection failed under the exchange (or before it could start). */
  fail(err: UpstreamError): void {
    if (this.ended) return;
    this.ended = true;
    this.req.body?.detach(this);
    if (!this.aborted) {
      this.aborted = true;
      this.handler.onResponseError(this, err);
    }
  }
}
