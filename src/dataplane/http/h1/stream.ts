// One request and its response on a downstream HTTP/1.1 connection: body delivery in, response framing out.

import type { Socket } from 'node:net';
import { copyIfShared } from '../../read_buffer.js';
import { type HeaderList, headerGet } from '../header_list.js';
import type { BodySink, DownstreamProtocol, DownstreamStream } from '../stream.js';
import type { Framing } from './parse.js';
import type { Http1ServerConnection } from './server_connection.js';

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
/** Bodies up to this size go out in the same write as the response head. */
const SINGLE_WRITE_MAX = 16 * 1024;

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
export class H1Stream implements DownstreamStream {
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
    const connection = this.header('connection')?.toLowerCase();
    if (connection === undefined) this.keepAlive = minor === 1;
    else
      this.keepAlive =
        minor === 1
          ? !/(^|,)\s*close\s*(,|$)/.test(connection)
          : /(^|,)\s*keep-alive\s*(,|$)/.test(connection);
    this.expectContinue =
      minor === 1 && framing.kind !== 'none' && this.header('expect')?.toLowerCase() === '100-continue';
  }

  get socket(): Socket {
    return this.conn.socket;
  }

  get connection(): Http1ServerConnection {
    return this.conn;
  }

  get protocol(): DownstreamProtocol {
    return this.minor === 1 ? 'HTTP/1.1' : 'HTTP/1.0';
  }

  get authority(): string {
    return this.header('host') ?? '';
  }

  get hasBody(): boolean {
    return this.framing.kind !== 'none';
  }

  /** A request header (several values joined with ","), or undefined. */
  header(name: string): string | undefined {
    return headerGet(this.headers, name);
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
  writeHead(status: number, headers: HeaderList, reason?: string): void {
    if (this.headersSent) throw new Error('response head already sent');
    this.headersSent = true;
    this.statusCode = status;
    const noBody = this.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    this.sendNoBody = noBody || this.method === 'HEAD';
    let head = `HTTP/1.1 ${status} ${reason || statusText(status)}\r\n`;
    let hasLength = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name === 'content-length') hasLength = true;
      else if (name === 'connection' || name === 'transfer-encoding') {
        if (name === 'connection' && /close/i.test(headers[i + 1]!)) this.keepAlive = false;
        continue;
      }
      head += `${name}: ${headers[i + 1]}\r\n`;
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

  /**
   * Writes body bytes; false means the socket is backed up (wait for onDrain). `chunk` may be a view of the
   * shared upstream read buffer (read_buffer.ts).
   */
  write(chunk: Buffer): boolean {
    if (this.finished || this.aborted) return false;
    this.conn.timer.touch();
    const socket = this.conn.socket;
    if (this.sendNoBody || chunk.length === 0) {
      this.flushHead();
      return true;
    }
    this.bytesSent += chunk.length;
    if (!this.head && !this.chunkedOut) return socket.write(copyIfShared(chunk));
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
      socket.write(copyIfShared(chunk));
      socket.write('\r\n', 'latin1');
    } else {
      socket.write(copyIfShared(chunk));
    }
    socket.uncork();
    return !socket.writableNeedDrain;
  }

  /** Sends the response head now, without waiting for body bytes. */
  flushHeaders(): void {
    if (this.finished || this.aborted) return;
    this.conn.timer.touch();
    this.flushHead();
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

  /** Ends the response (with an optional last chunk). Trailers are dropped, as Envoy does on HTTP/1.1. */
  end(chunk?: Buffer | string, _trailers?: HeaderList): void {
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
    // Done callbacks (stats, access log) first: finishing the response may start the next pipelined request.
    this.fireDone(this.timedOut);
    this.conn.responseFinished(this);
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
