// The downstream HTTP/1.1 codec: one accepted socket, requests parsed strictly, responses framed, keep-alive and pipelining.

import type { Socket } from 'node:net';
import {
  ChunkedDecoder,
  type Framing,
  H1ParseError,
  parseHead,
  parseRequestLine,
  requestFraming,
} from './parse.js';

const CRLFCRLF = Buffer.from('\r\n\r\n');
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
/** Bodies up to this size go out in the same write as the response head. */
const SINGLE_WRITE_MAX = 16 * 1024;

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

/** Receives a request body; the stream buffers what arrives before a sink is attached. */
export interface BodySink {
  onData(chunk: Buffer): void;
  onEnd(): void;
  onError(err: Error): void;
}

export type HeaderValue = string | string[] | undefined;

enum Phase {
  Idle = 0,
  Head = 1,
  Body = 2,
  AwaitResponse = 3,
  Closed = 4,
}

const STATUS_TEXT: Record<number, string> = {
  100: 'Continue',
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  206: 'Partial Content',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  304: 'Not Modified',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  417: 'Expectation Failed',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? 'Unknown';
}

/** One request and its response on a downstream connection. */
export class H1Stream {
  /** Request body bytes received so far. */
  bodyBytes = 0;
  /** The whole request (head and body) has been read. */
  complete = false;
  headersSent = false;
  /** The response has been completely handed to the socket. */
  finished = false;
  /** The stream ended before its response finished (client gone, reset). */
  aborted = false;
  /** The codec answered 408 itself (stream idle timeout): for the router this is a reset. */
  timedOut = false;
  statusCode = 0;
  /** Response bytes written, head excluded. */
  bytesSent = 0;
  /** Set false to end the connection after this response (draining, errors). */
  keepAlive: boolean;
  private sink: BodySink | undefined;
  private pendingBody: Buffer[] = [];
  private pendingEnd = false;
  private pendingError: Error | undefined;
  private paused = false;
  private doneCallbacks: ((aborted: boolean) => void)[] = [];
  private head = '';
  private chunkedOut = false;
  private sendNoBody = false;
  private expectContinue: boolean;

  constructor(
    private readonly conn: Http1ServerConnection,
    readonly method: string,
    readonly url: string,
    /** 0 = HTTP/1.0, 1 = HTTP/1.1. */
    readonly minor: number,
    /** Flat [name, value, ...], names lower-cased. */
    readonly headers: string[],
    readonly framing: Framing,
  ) {
    const connection = this.header('connection')?.toLowerCase() ?? '';
    this.keepAlive =
      minor === 1 ? !/(^|,)\s*close\s*(,|$)/.test(connection) : /(^|,)\s*keep-alive\s*(,|$)/.test(connection);
    this.expectContinue =
      minor === 1 && framing.kind !== 'none' && this.header('expect')?.toLowerCase() === '100-continue';
  }

  get socket(): Socket {
    return this.conn.socket;
  }

  get connection(): Http1ServerConnection {
    return this.conn;
  }

  get httpVersion(): string {
    return this.minor === 1 ? '1.1' : '1.0';
  }

  get hasBody(): boolean {
    return this.framing.kind !== 'none';
  }

  /** A request header (several values joined with ","), or undefined. */
  header(name: string): string | undefined {
    const h = this.headers;
    let out: string | undefined;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i] === name) out = out === undefined ? h[i + 1] : `${out},${h[i + 1]}`;
    }
    return out;
  }

  /** Attaches the body consumer; data that arrived earlier is delivered now. Sends 100 Continue if asked. */
  setBodySink(sink: BodySink): void {
    this.sink = sink;
    if (this.expectContinue && !this.headersSent) {
      this.expectContinue = false;
      this.conn.socket.write(CONTINUE, 'latin1');
    }
    const pending = this.pendingBody;
    this.pendingBody = [];
    for (const c of pending) sink.onData(c);
    if (this.pendingError) sink.onError(this.pendingError);
    else if (this.pendingEnd) sink.onEnd();
  }

  /** Backpressure for the request body. */
  pauseBody(): void {
    if (this.paused) return;
    this.paused = true;
    this.conn.socket.pause();
  }
  resumeBody(): void {
    if (!this.paused) return;
    this.paused = false;
    this.conn.resumeReading();
  }

  /** Called once when the exchange ends: `aborted` when the response did not finish. */
  onDone(cb: (aborted: boolean) => void): void {
    if (this.finished || this.aborted) cb(this.aborted);
    else this.doneCallbacks.push(cb);
  }

  /**
   * Prepares the response head; it goes out with the first body write or end(). `headers` holds lower-cased
   * names; hop-by-hop headers must already be gone. Framing (content-length, chunked, close) is decided here.
   */
  writeHead(status: number, headers: Record<string, HeaderValue>, reason?: string): void {
    if (this.headersSent) throw new Error('response head already sent');
    this.headersSent = true;
    this.statusCode = status;
    const noBody = this.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    this.sendNoBody = noBody || this.method === 'HEAD';
    let head = `HTTP/1.1 ${status} ${reason || statusText(status)}\r\n`;
    let hasLength = false;
    for (const name in headers) {
      const v = headers[name];
      if (v === undefined) continue;
      if (name === 'content-length') hasLength = true;
      if (name === 'connection' || name === 'transfer-encoding') {
        if (name === 'connection' && /close/i.test(String(v))) this.keepAlive = false;
        continue;
      }
      if (typeof v === 'string') head += `${name}: ${v}\r\n`;
      else for (const one of v) head += `${name}: ${one}\r\n`;
    }
    if (!noBody && !hasLength) {
      if (this.minor === 1) {
        head += 'transfer-encoding: chunked\r\n';
        this.chunkedOut = true;
      } else {
        this.keepAlive = false; // HTTP/1.0 without a length: the close delimits the body
      }
    }
    // A response before the whole request body was read: the rest is not worth reading; close after.
    if (!this.complete && this.hasBody) this.keepAlive = false;
    if (this.conn.draining) this.keepAlive = false;
    if (!this.keepAlive) head += 'connection: close\r\n';
    else if (this.minor === 0) head += 'connection: keep-alive\r\n';
    this.head = `${head}\r\n`;
  }

  /** Writes body bytes; false means the socket is backed up (wait for onDrain). */
  write(chunk: Buffer): boolean {
    if (this.finished || this.aborted) return false;
    const socket = this.conn.socket;
    if (this.sendNoBody || chunk.length === 0) {
      this.flushHead();
      return true;
    }
    this.bytesSent += chunk.length;
    if (!this.head && !this.chunkedOut) return socket.write(chunk);
    if (this.head && chunk.length <= SINGLE_WRITE_MAX) {
      // Head and a small body in one string: one write syscall without writev's bookkeeping.
      const body = chunk.toString('latin1');
      const framed = this.chunkedOut ? `${chunk.length.toString(16)}\r\n${body}\r\n` : body;
      const head = this.head;
      this.head = '';
      return socket.write(head + framed, 'latin1');
    }
    socket.cork();
    this.flushHead();
    if (this.chunkedOut) {
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      socket.write('\r\n', 'latin1');
    } else {
      socket.write(chunk);
    }
    socket.uncork();
    return !socket.writableNeedDrain;
  }

  /** Sends the response head now, without waiting for body bytes. */
  flushHeaders(): void {
    if (!this.finished && !this.aborted) this.flushHead();
  }

  private flushHead(): void {
    if (this.head) {
      this.conn.socket.write(this.head, 'latin1');
      this.head = '';
    }
  }

  onDrain(cb: () => void): void {
    this.conn.socket.once('drain', cb);
  }

  /** Ends the response (with an optional last chunk). */
  end(chunk?: Buffer | string): void {
    if (this.finished || this.aborted) return;
    const socket = this.conn.socket;
    socket.cork();
    if (chunk !== undefined && chunk.length > 0 && !this.sendNoBody) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      this.write(buf);
    }
    this.flushHead();
    if (this.chunkedOut && !this.sendNoBody) socket.write('0\r\n\r\n', 'latin1');
    socket.uncork();
    this.finished = true;
    this.conn.responseFinished(this);
    this.fireDone(this.timedOut);
  }

  /** Abandons the exchange: the connection is closed at once (Envoy's stream reset on HTTP/1). */
  destroy(): void {
    if (this.finished || this.aborted) return;
    this.abort();
    this.conn.socket.destroy();
  }

  // ---- called by the connection

  deliver(chunk: Buffer): void {
    this.bodyBytes += chunk.length;
    if (this.sink) this.sink.onData(chunk);
    else {
      this.pendingBody.push(chunk);
      this.conn.socket.pause();
      this.paused = true;
    }
  }

  deliverEnd(): void {
    this.complete = true;
    if (this.sink) this.sink.onEnd();
    else this.pendingEnd = true;
  }

  deliverError(err: Error): void {
    if (this.sink) this.sink.onError(err);
    else this.pendingError = err;
  }

  abort(): void {
    if (this.finished || this.aborted) return;
    this.aborted = true;
    if (!this.complete) this.deliverError(new Error('downstream connection closed'));
    this.fireDone(true);
  }

  private fireDone(aborted: boolean): void {
    const cbs = this.doneCallbacks;
    this.doneCallbacks = [];
    for (const cb of cbs) cb(aborted);
  }
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
  draining = false;
  /** "ip:port" of both ends, formatted once per connection for logs and header substitutions. */
  remoteAddress = '';
  localAddress = '';

  constructor(
    readonly socket: Socket,
    private readonly opts: ServerCodecOptions,
    private readonly cb: ServerCodecCallbacks,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', () => undefined);
    socket.on('timeout', this.onTimeout);
    this.setPhase(Phase.Idle);
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
      this.socket.setTimeout(t);
    }
  }

  private readonly onData = (d: Buffer): void => {
    if (this.phase === Phase.Closed) return;
    if (this.phase === Phase.AwaitResponse || (this.phase === Phase.Idle && this.current)) {
      // Pipelined bytes for the next request: keep them until the current response is done.
      this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
      if (this.buf.length > this.opts.maxHeaderBytes) this.socket.pause();
      return;
    }
    this.consume(d);
  };

  private consume(d: Buffer): void {
    let data: Buffer | undefined = d;
    while (data && data.length > 0 && this.phase !== Phase.Closed) {
      if (this.phase === Phase.Idle || this.phase === Phase.Head) data = this.consumeHead(data);
      else if (this.phase === Phase.Body) data = this.consumeBody(data);
      else {
        this.buf = this.buf ? Buffer.concat([this.buf, data]) : data;
        return;
      }
    }
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
      this.buf = buf;
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
      const text = buf.toString('latin1', start, end);
      const head = parseHead(text, this.opts.maxHeaders);
      const line = parseRequestLine(head.startLine);
      const framing = requestFraming(head.headers, line.minor);
      if (line.minor === 1 && !hasHeader(head.headers, 'host')) throw new H1ParseError('missing Host header');
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
      if (rest) this.buf = rest;
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
        used = this.chunked.feed(d, (c) => stream.deliver(c));
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
    stream.deliver(take === d.length ? d : d.subarray(0, take));
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
      this.socket.end();
      this.socket.destroySoon();
      return;
    }
    this.current = undefined;
    this.setPhase(Phase.Idle);
    const pending = this.buf;
    this.buf = undefined;
    this.socket.resume();
    if (pending && pending.length > 0) this.consume(pending);
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
    this.socket.end(
      `HTTP/1.1 ${status} ${statusText(status)}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      'latin1',
    );
    this.socket.destroySoon();
  }

  private readonly onTimeout = (): void => {
    switch (this.phase) {
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
          stream.writeHead(408, { 'content-type': 'text/plain', 'content-length': String(body.length) });
          stream.end(body);
          return;
        }
        this.phase = Phase.Closed;
        stream?.abort();
        this.socket.destroy();
      }
    }
  };

  private readonly onEnd = (): void => {
    // The client half-closed: finish what is in flight, then close.
    if (!this.current) {
      this.phase = Phase.Closed;
      this.socket.end();
      return;
    }
    if (this.phase === Phase.Body) this.current.deliverError(new Error('request body truncated'));
    this.draining = true;
  };

  private readonly onClose = (): void => {
    this.phase = Phase.Closed;
    const stream = this.current;
    this.current = undefined;
    stream?.abort();
  };

  /** Draining: idle connections close now, busy ones after their current response. */
  drain(): void {
    this.draining = true;
    if (!this.current) {
      this.phase = Phase.Closed;
      this.socket.end();
    }
  }
}

function hasHeader(h: readonly string[], name: string): boolean {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return true;
  return false;
}
