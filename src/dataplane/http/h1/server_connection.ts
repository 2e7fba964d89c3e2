// The downstream HTTP/1.1 codec: one accepted socket, requests parsed strictly, responses framed, keep-alive and pipelining.

import type { Socket } from 'node:net';
import type { SocketAddress } from '../../../config/model.js';
import { claimReads, releaseReads } from '../../listener/accepted_socket.js';
import { copyIfShared } from '../../read_buffer.js';
import { IdleTimer } from '../../timers.js';
import { headerHas } from '../header_list.js';
import { ChunkedDecoder, H1ParseError, parseHead, parseRequestLine, requestFraming } from './parse.js';
import { H1Stream, statusText } from './stream.js';

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Limits and timeouts of one connection manager, in the codec's terms. */
export interface ServerCodecOptions {
  readonly maxHeaderBytes: number;
  readonly maxHeaders: number;
  /** Between requests on a kept-alive connection; 0 = none. */
  readonly idleTimeoutMs: number;
  /** From the first byte of a request until its head is complete; 0 = use streamIdleTimeoutMs. */
  readonly headersTimeoutMs: number;
  /** No activity while a request is in flight; 0 = none. */
  readonly streamIdleTimeoutMs: number;
  /**
   * Envoy's delayed_close_timeout: after the proxy closes its side, how long it goes on reading (and dropping)
   * what the client still sends before closing the socket; 0 = close once the response is flushed.
   */
  readonly delayedCloseTimeoutMs: number;
}

/** What the connection reports to its connection manager. */
export interface ServerCodecCallbacks {
  onRequest(stream: H1Stream): void;
  /** A request that could not be parsed, a timeout, or a limit: stats and the reason (the codec answers). */
  onProtocolError(
    kind: 'parse' | 'too_large' | 'header_timeout' | 'idle_timeout' | 'stream_idle',
    detail: string,
  ): void;
}

enum Phase {
  Idle = 0,
  Head = 1,
  Body = 2,
  AwaitResponse = 3,
  Closed = 4,
}

/** Parses requests off one socket, one at a time; later pipelined requests wait their turn. */
export class Http1ServerConnection {
  private phase = Phase.Idle;
  private buf: Buffer | undefined;
  private searchFrom = 0;
  private current: H1Stream | undefined;
  private remaining = 0;
  private chunked: ChunkedDecoder | undefined;
  private timeoutMs = -1;
  /** The current phase's timeout; every read and write counts as activity. */
  readonly timer = new IdleTimer(() => this.onTimeout());
  /** Inside consume(): a response finished meanwhile leaves the pipelined bytes to that loop (no recursion). */
  private parsing = false;
  /** The client half-closed: what it sent in full is still answered, then the connection closes. */
  private peerEnded = false;
  draining = false;
  /** The peer's IP, and "ip:port" of both ends, read once per connection (each read asks the kernel). */
  remoteIp = '';
  remoteAddress = '';
  localAddress = '';
  originalDestination: SocketAddress | undefined = undefined;
  secure = false;

  constructor(
    readonly socket: Socket,
    private readonly opts: ServerCodecOptions,
    private readonly cb: ServerCodecCallbacks,
  ) {
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', () => undefined);
    this.setPhase(Phase.Idle);
  }

  /**
   * Starts reading (bytes a listener filter or the codec detection put back first). Reads of an accepted
   * plaintext socket come straight from the shared read buffer: what the codec keeps or passes on is copied.
   */
  start(): void {
    // Resumed first: a pause the codec makes while it parses the bytes put back (a pipelining flood) then holds.
    this.socket.resume();
    if (!claimReads(this.socket, this.onData)) this.socket.on('data', this.onData);
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  private setPhase(p: Phase): void {
    this.phase = p;
    const o = this.opts;
    const t =
      p === Phase.Idle
        ? o.idleTimeoutMs
        : p === Phase.Head
          ? o.headersTimeoutMs || o.streamIdleTimeoutMs
          : o.streamIdleTimeoutMs;
    if (t !== this.timeoutMs) {
      this.timeoutMs = t;
      this.timer.set(t);
    } else if (p === Phase.Idle) this.timer.touch(); // the other phases begin with a read, which touched
  }

  private readonly onData = (d: Buffer): void => {
    if (this.phase === Phase.Closed) return;
    if (this.phase !== Phase.Idle) this.timer.touch(); // leaving Idle sets the timer anew
    if (this.phase === Phase.AwaitResponse || (this.phase === Phase.Idle && this.current)) {
      // Pipelined bytes for the next request: keep them until the current response is done.
      this.buf = this.buf ? Buffer.concat([this.buf, d]) : copyIfShared(d);
      if (this.buf.length > this.opts.maxHeaderBytes) this.socket.pause();
      return;
    }
    this.consume(d);
  };

  private consume(d: Buffer): void {
    this.parsing = true;
    let data: Buffer | undefined = d;
    for (;;) {
      if (data && data.length > 0 && this.phase !== Phase.Closed) {
        if (this.phase === Phase.Idle || this.phase === Phase.Head) data = this.consumeHead(data);
        else if (this.phase === Phase.Body) data = this.consumeBody(data);
        else {
          this.buf = this.buf ? Buffer.concat([this.buf, data]) : copyIfShared(data);
          break;
        }
      } else if (this.phase === Phase.Idle && this.buf) {
        // A response finished synchronously (a local reply): go on with the pipelined requests it left.
        data = this.buf;
        this.buf = undefined;
      } else break;
    }
    this.parsing = false;
    if (this.peerEnded) this.endIfPeerDone();
  }

  /** Returns bytes left over after the head (body or next request), or undefined when more is needed. */
  private consumeHead(d: Buffer): Buffer | undefined {
    if (this.phase === Phase.Idle) this.setPhase(Phase.Head);
    const buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    const end = buf.indexOf(CRLFCRLF, this.searchFrom);
    if (end < 0) {
      if (buf.length > this.opts.maxHeaderBytes) {
        this.reject(
          431,
          `request headers exceed max_request_headers_kb (${this.opts.maxHeaderBytes / 1024} KiB)`,
          'too_large',
        );
        return undefined;
      }
      this.buf = copyIfShared(buf);
      this.searchFrom = Math.max(0, buf.length - 3);
      return undefined;
    }
    this.buf = undefined;
    this.searchFrom = 0;
    if (end > this.opts.maxHeaderBytes) {
      this.reject(
        431,
        `request headers exceed max_request_headers_kb (${this.opts.maxHeaderBytes / 1024} KiB)`,
        'too_large',
      );
      return undefined;
    }
    let stream: H1Stream;
    try {
      let start = 0;
      // RFC 9112 §2.2: tolerate empty lines before a request line.
      while (buf[start] === 13 && buf[start + 1] === 10) start += 2;
      const head = parseHead(buf, start, end, this.opts.maxHeaders);
      const line = parseRequestLine(head.startLine);
      const framing = requestFraming(head.headers, line.minor);
      if (line.minor === 1 && !headerHas(head.headers, 'host')) throw new H1ParseError('missing Host header');
      stream = new H1Stream(this, line.method, line.target, line.minor, head.headers, framing);
    } catch (err) {
      const e = err as H1ParseError;
      this.reject(e.status ?? 400, e.message, e.status === 431 ? 'too_large' : 'parse');
      return undefined;
    }
    this.current = stream;
    const rest = buf.length > end + 4 ? buf.subarray(end + 4) : undefined;
    if (stream.framing.kind === 'none') {
      stream.complete = true;
      this.setPhase(Phase.AwaitResponse);
      if (rest) this.buf = copyIfShared(rest);
    } else {
      this.remaining = stream.framing.kind === 'length' ? stream.framing.length : 0;
      this.chunked = stream.framing.kind === 'chunked' ? new ChunkedDecoder() : undefined;
      this.setPhase(Phase.Body);
    }
    this.cb.onRequest(stream);
    if (stream.framing.kind === 'none') {
      stream.deliverEnd();
      return undefined;
    }
    return rest;
  }

  private consumeBody(d: Buffer): Buffer | undefined {
    const stream = this.current!;
    if (this.chunked) {
      let used: number;
      try {
        used = this.chunked.feed(d, (c) => stream.deliver(copyIfShared(c)));
      } catch (err) {
        stream.deliverError(err as Error);
        this.reject(400, (err as Error).message, 'parse');
        return undefined;
      }
      if (!this.chunked.done) return undefined;
      this.chunked = undefined;
      this.bodyDone(stream);
      return used < d.length ? d.subarray(used) : undefined;
    }
    const take = Math.min(this.remaining, d.length);
    this.remaining -= take;
    stream.deliver(copyIfShared(take === d.length ? d : d.subarray(0, take)));
    if (this.remaining > 0) return undefined;
    this.bodyDone(stream);
    return take < d.length ? d.subarray(take) : undefined;
  }

  private bodyDone(stream: H1Stream): void {
    this.setPhase(Phase.AwaitResponse);
    stream.deliverEnd();
  }

  resumeReading(): void {
    if (this.phase !== Phase.Closed) this.socket.resume();
  }

  /** Called when a response has been fully written. */
  responseFinished(stream: H1Stream): void {
    if (stream !== this.current) return;
    if (!stream.keepAlive || !stream.complete || this.draining) {
      this.phase = Phase.Closed;
      this.current = undefined;
      // The rest of the request body will never be read: whoever waits for it must not wait forever.
      if (!stream.complete)
        stream.deliverError(new Error('request body abandoned: the response ended first'));
      this.closeSocket();
      return;
    }
    this.current = undefined;
    this.setPhase(Phase.Idle);
    this.socket.resume();
    if (this.parsing) return;
    const pending = this.buf;
    this.buf = undefined;
    if (pending && pending.length > 0) this.consume(pending);
    else if (this.peerEnded) this.endIfPeerDone();
  }

  /** After a half-close: a request that can never complete is refused; with nothing in flight, close. */
  private endIfPeerDone(): void {
    if (this.phase === Phase.Closed) return;
    if (this.phase === Phase.Body) {
      this.reject(400, 'request body truncated: the client closed its side mid-body', 'parse');
    } else if (!this.current) {
      this.phase = Phase.Closed;
      this.closeSocket();
    }
  }

  /** Answers an unparseable or over-limit request and closes the connection. */
  private reject(status: number, why: string, kind: 'parse' | 'too_large' | 'header_timeout'): void {
    this.cb.onProtocolError(kind, why);
    this.phase = Phase.Closed;
    const stream = this.current;
    this.current = undefined;
    if (stream?.headersSent) {
      stream.abort();
      this.socket.destroy();
      return;
    }
    stream?.abort();
    const body = kind === 'parse' ? `malformed HTTP request: ${why}\n` : `${why}\n`;
    this.socket.write(
      `HTTP/1.1 ${status} ${statusText(status)}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      'latin1',
    );
    this.closeSocket();
  }

  private onTimeout(): void {
    switch (this.phase) {
      case Phase.Closed:
        this.socket.destroy();
        return;
      case Phase.Idle:
        this.cb.onProtocolError('idle_timeout', 'connection idle timeout');
        this.phase = Phase.Closed;
        this.socket.destroy();
        return;
      case Phase.Head:
        this.reject(
          408,
          'request headers were not received in time (request_headers_timeout)',
          'header_timeout',
        );
        return;
      default: {
        this.cb.onProtocolError('stream_idle', 'stream idle timeout');
        const stream = this.current;
        if (stream && !stream.headersSent) {
          stream.keepAlive = false;
          stream.timedOut = true;
          const body = 'stream timeout: no activity within stream_idle_timeout\n';
          stream.writeHead(408, ['content-type', 'text/plain', 'content-length', String(body.length)]);
          stream.end(body);
          return;
        }
        this.phase = Phase.Closed;
        stream?.abort();
        this.socket.destroy();
      }
    }
  }

  /**
   * Closes the proxy's side once everything written is flushed (FIN), then waits up to delayed_close_timeout
   * for the client's FIN, reading and dropping what it still sends: closing the socket with unread bytes
   * would answer them with a reset, and a reset can destroy the response the client has not read yet.
   */
  private closeSocket(): void {
    const socket = this.socket;
    // The phase's timer stays armed: a client that never reads what is left to flush is cut off by it.
    socket.end();
    const ms = this.opts.delayedCloseTimeoutMs;
    if (ms <= 0 || this.peerEnded) {
      socket.destroySoon();
      return;
    }
    socket.resume();
    socket.once('finish', () => {
      const t = setTimeout(() => socket.destroy(), ms);
      t.unref();
      socket.once('close', () => clearTimeout(t));
    });
  }

  private readonly onEnd = (): void => {
    if (this.phase === Phase.Closed) {
      // The client's FIN after the proxy closed its side (delayed close): the connection is done.
      this.socket.destroy();
      return;
    }
    // The client half-closed: finish what is in flight and the pipelined requests it sent, then close.
    this.peerEnded = true;
    this.endIfPeerDone();
  };

  private readonly onClose = (): void => {
    this.phase = Phase.Closed;
    this.timer.close();
    const stream = this.current;
    this.current = undefined;
    stream?.abort();
  };

  /** Draining: idle connections close now, busy ones after their current response. */
  drain(): void {
    this.draining = true;
    // Closed already covers a socket handed over by detach(): it is no longer this codec's to close.
    if (!this.current && this.phase !== Phase.Closed) {
      this.phase = Phase.Closed;
      this.closeSocket();
    }
  }

  /**
   * Gives the socket up to the protocol a 101 switched to: the codec stops reading, timing and answering, and
   * the socket is left paused for its new owner. Returns the bytes read past the request head (already the new
   * protocol's), or undefined when `stream` is not a complete request still awaiting its response. The new owner
   * ends `stream` (end() then writes nothing: no response head was prepared) when the upgraded connection closes,
   * so that it is counted and logged like any request.
   */
  detach(stream: H1Stream): { readonly early: Buffer | undefined } | undefined {
    if (stream !== this.current || this.phase !== Phase.AwaitResponse || stream.headersSent) return undefined;
    this.phase = Phase.Closed;
    this.current = undefined;
    this.timer.close();
    const socket = this.socket;
    socket.pause();
    socket.off('data', this.onData);
    releaseReads(socket);
    socket.off('end', this.onEnd);
    socket.off('close', this.onClose);
    const early = this.buf;
    this.buf = undefined;
    return { early };
  }
}
