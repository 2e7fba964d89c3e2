// One upstream HTTP/1.1 connection: writes a request, parses the response strictly, and is reused when it can be.

import type { Socket } from 'node:net';
import {
  ChunkedDecoder,
  type Framing,
  H1ParseError,
  parseHead,
  parseStatusLine,
  responseFraming,
} from '../http/h1/parse.js';
import { type HeaderList, headerRemove } from '../http/header_list.js';
import { connectionListed, isHopByHop } from '../http/hop_by_hop.js';
import { readIntoSharedBuffer } from '../read_buffer.js';
import { IdleTimer } from '../timers.js';
import { type ConnectTarget, connectToHost } from './connect.js';
import type { Host } from './host.js';
import {
  type BodyTarget,
  type UpstreamController,
  UpstreamError,
  type UpstreamHandler,
  type UpstreamRequest,
} from './upstream_request.js';

export {
  type BodyTarget,
  type RequestBody,
  type UpstreamController,
  UpstreamError,
  type UpstreamErrorKind,
  type UpstreamHandler,
  type UpstreamRequest,
} from './upstream_request.js';

const CRLFCRLF = Buffer.from('\r\n\r\n');
const MAX_RESPONSE_HEAD = 96 * 1024;

/**
 * Opens a socket whose reads go to `conn().onRead` (the connection is created once the socket exists). With
 * `tls` it is a TLS socket, established at 'secureConnect' rather than 'connect'.
 */
export function connectUpstream(
  target: ConnectTarget,
  host: Host,
  conn: () => H1Connection,
  alpn?: readonly string[],
): Socket {
  const onread = readIntoSharedBuffer((chunk) => {
    conn().onRead(chunk);
    return true;
  });
  return connectToHost(target, host, { onread, alpn });
}

/** Callbacks of the pool a connection belongs to. */
export interface ConnectionOwner {
  release(conn: H1Connection): void;
  closed(conn: H1Connection): void;
  onBytes(rx: number, tx: number): void;
}

enum RxState {
  Idle = 0,
  Head = 1,
  Body = 2,
}

/** One exchange in flight on a connection; it is also the router's controller for that exchange. */
export class Exchange implements UpstreamController, BodyTarget {
  conn: H1Connection | undefined;
  aborted = false;
  responseStarted = false;
  /** Some byte of the response arrived (even an incomplete head). */
  gotBytes = false;
  requestWritten = false;
  private pausedRx = false;

  constructor(
    readonly req: UpstreamRequest,
    readonly handler: UpstreamHandler,
    readonly onAbortQueued: (ex: Exchange) => void,
  ) {}

  pause(): void {
    this.pausedRx = true;
    this.conn?.socket.pause();
  }
  resume(): void {
    if (!this.pausedRx) return;
    this.pausedRx = false;
    this.conn?.socket.resume();
  }
  abort(_reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.req.body?.detach(this);
    if (this.conn) this.conn.destroyFor(this);
    else this.onAbortQueued(this);
  }

  // BodyTarget: the request body flows through here onto the socket.
  onData(chunk: Buffer): boolean {
    return this.conn ? this.conn.writeBody(chunk) : false;
  }
  onEnd(): void {
    this.conn?.endBody(this);
  }
  onError(_err: Error): void {
    // The downstream body failed: this request cannot complete; the connection is unusable.
    this.conn?.destroyFor(this);
  }
}

export class H1Connection {
  private ex: Exchange | undefined;
  private rx = RxState.Idle;
  private buf: Buffer | undefined;
  private searchFrom = 0;
  private framing: Framing = { kind: 'none' };
  private remaining = 0;
  private chunked: ChunkedDecoder | undefined;
  private chunkedRequest = false;
  private keepAlive = false;
  /** Server's keep-alive hint (ms), when it sent one. */
  keepAliveHintMs: number | undefined;
  served = 0;
  closed = false;

  constructor(
    readonly socket: Socket,
    private readonly owner: ConnectionOwner,
  ) {
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', () => undefined);
    socket.on('drain', () => {
      if (this.ex && !this.ex.requestWritten) this.ex.req.body?.resume();
    });
  }

  /** Only an idle connection has a timeout: it closes before the server's keep-alive timer fires. */
  private readonly idleTimer = new IdleTimer(() => {
    if (!this.ex) this.socket.destroy();
  });

  setIdleTimeout(ms: number): void {
    this.idleTimer.set(ms);
  }

  get idle(): boolean {
    return this.ex === undefined;
  }

  /** Sends one request on this (idle) connection. */
  start(ex: Exchange): void {
    this.ex = ex;
    ex.conn = this;
    this.rx = RxState.Head;
    this.idleTimer.set(0);
    const req = ex.req;
    let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
    const h = req.headers;
    let hasLength = false;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i] === 'content-length') hasLength = true;
      head += `${h[i]}: ${h[i + 1]}\r\n`;
    }
    this.chunkedRequest = req.body !== undefined && !hasLength;
    if (this.chunkedRequest) head += 'transfer-encoding: chunked\r\n';
    this.socket.write(`${head}\r\n`, 'latin1');
    ex.handler.onRequestStart(ex);
    if (ex.aborted) return;
    if (req.body) req.body.open(ex);
    else ex.requestWritten = true;
  }

  writeBody(chunk: Buffer): boolean {
    if (chunk.length === 0) return true;
    if (!this.chunkedRequest) return this.socket.write(chunk);
    this.socket.cork();
    this.socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    this.socket.write(chunk);
    this.socket.write('\r\n', 'latin1');
    this.socket.uncork();
    return !this.socket.writableNeedDrain;
  }

  endBody(ex: Exchange): void {
    if (ex !== this.ex) return;
    if (this.chunkedRequest) this.socket.write('0\r\n\r\n', 'latin1');
    ex.requestWritten = true;
    if (this.rx === RxState.Idle) this.finishExchange();
  }

  /** Tears the connection down because its exchange was cancelled. */
  destroyFor(ex: Exchange): void {
    if (ex !== this.ex) return;
    this.ex = undefined;
    this.socket.destroy();
  }

  /** Bytes read; `d` is a view of the shared read buffer. */
  onRead(d: Buffer): void {
    const ex = this.ex;
    if (!ex) {
      // Bytes on an idle connection: the server is confused; never reuse it.
      this.socket.destroy();
      return;
    }
    ex.gotBytes = true;
    let data: Buffer | undefined = d;
    try {
      while (data && data.length > 0 && this.ex === ex) {
        if (this.rx === RxState.Head) data = this.onHead(ex, data);
        else if (this.rx === RxState.Body) data = this.onBody(ex, data);
        else {
          this.socket.destroy();
          return;
        }
      }
    } catch (err) {
      this.fail(ex, new UpstreamError('protocol_error', (err as Error).message, false, !ex.responseStarted));
      return;
    }
    if (this.ex === ex && this.rx === RxState.Body && !ex.aborted) ex.handler.onResponseWaiting(ex);
  }

  private onHead(ex: Exchange, d: Buffer): Buffer | undefined {
    const buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    const end = buf.indexOf(CRLFCRLF, this.searchFrom);
    if (end < 0) {
      if (buf.length > MAX_RESPONSE_HEAD) throw new H1ParseError('upstream response head too large');
      this.buf = buf === d ? Buffer.from(d) : buf; // d is the shared read buffer
      this.searchFrom = Math.max(0, buf.length - 3);
      return undefined;
    }
    this.buf = undefined;
    this.searchFrom = 0;
    const head = parseHead(buf, 0, end, 1000);
    const line = parseStatusLine(head.startLine);
    const rest = buf.length > end + 4 ? buf.subarray(end + 4) : undefined;
    if (line.status < 200) {
      if (line.status === 101) throw new H1ParseError('unexpected 101 Switching Protocols');
      return rest; // 1xx: interim, the final response follows.
    }
    this.framing = responseFraming(head.headers, line.status, ex.req.method);
    // Connection-specific headers stop here (RFC 9110 §7.6.1).
    const parsed = head.headers;
    const headers: HeaderList = [];
    let connection = '';
    for (let i = 0; i < parsed.length; i += 2) {
      const name = parsed[i]!;
      const value = parsed[i + 1]!;
      if (isHopByHop(name)) {
        if (name === 'connection') connection += `${value},`;
        else if (name === 'keep-alive') {
          const m = /timeout=(\d+)/i.exec(value);
          if (m) this.keepAliveHintMs = Number(m[1]) * 1000;
        }
        continue;
      }
      headers.push(name, value);
    }
    let close: boolean;
    let keepAlive: boolean;
    if (connection === '' || connection === 'keep-alive,' || connection === 'close,') {
      close = connection === 'close,';
      keepAlive = connection === 'keep-alive,';
    } else {
      const listed = connectionListed(connection);
      if (listed) for (const name of listed) headerRemove(headers, name);
      close = /(^|,)\s*close\s*,/i.test(connection);
      keepAlive = /(^|,)\s*keep-alive\s*,/i.test(connection);
    }
    this.keepAlive = this.framing.kind !== 'close' && (line.minor === 1 ? !close : keepAlive);
    ex.responseStarted = true;
    this.rx = RxState.Body;
    if (this.framing.kind === 'length') this.remaining = this.framing.length;
    this.chunked = this.framing.kind === 'chunked' ? new ChunkedDecoder() : undefined;
    ex.handler.onResponseStart(ex, line.status, headers, line.reason);
    if (ex.aborted || this.ex !== ex) return undefined;
    if (this.framing.kind === 'none' || (this.framing.kind === 'length' && this.remaining === 0)) {
      this.responseComplete(ex, rest !== undefined);
    }
    return rest;
  }

  private onBody(ex: Exchange, d: Buffer): Buffer | undefined {
    switch (this.framing.kind) {
      case 'length': {
        const take = Math.min(this.remaining, d.length);
        this.remaining -= take;
        ex.handler.onResponseData(ex, take === d.length ? d : d.subarray(0, take));
        if (this.remaining === 0 && this.ex === ex) this.responseComplete(ex, take < d.length);
        return take < d.length ? d.subarray(take) : undefined;
      }
      case 'chunked': {
        const used = this.chunked!.feed(d, (c) => ex.handler.onResponseData(ex, c));
        if (this.chunked!.done && this.ex === ex) this.responseComplete(ex, used < d.length);
        return used < d.length ? d.subarray(used) : undefined;
      }
      case 'close':
        ex.handler.onResponseData(ex, d);
        return undefined;
      default:
        return d;
    }
  }

  /** `extra`: bytes followed the response though no request is pending; the connection is not reused. */
  private responseComplete(ex: Exchange, extra: boolean): void {
    if (extra) this.keepAlive = false;
    this.rx = RxState.Idle;
    this.served++;
    ex.handler.onResponseEnd(ex);
    if (this.ex !== ex) return;
    if (ex.requestWritten) this.finishExchange();
    else this.keepAlive = false; // the upstream answered before reading the whole body
  }

  private finishExchange(): void {
    const ex = this.ex;
    this.ex = undefined;
    if (ex) {
      ex.resume(); // a socket paused for a slow downstream must not go back to the pool paused
      ex.conn = undefined;
    }
    if (this.keepAlive && !this.closed) this.owner.release(this);
    else this.socket.destroy();
  }

  private fail(ex: Exchange, err: UpstreamError): void {
    this.ex = undefined;
    ex.req.body?.detach(ex);
    this.socket.destroy();
    if (!ex.aborted) ex.handler.onResponseError(ex, err);
  }

  private readonly onEnd = (): void => {
    const ex = this.ex;
    if (ex && this.rx === RxState.Body && this.framing.kind === 'close') {
      this.rx = RxState.Idle;
      this.keepAlive = false;
      this.served++;
      ex.handler.onResponseEnd(ex);
      this.ex = undefined;
    }
    this.socket.destroy();
  };

  private readonly onClose = (): void => {
    this.closed = true;
    this.idleTimer.close();
    this.owner.onBytes(this.socket.bytesRead, this.socket.bytesWritten);
    const ex = this.ex;
    if (ex) {
      const before = !ex.gotBytes;
      this.fail(
        ex,
        new UpstreamError(
          'reset',
          before
            ? 'upstream closed the connection before responding'
            : 'upstream closed the connection mid-response',
          this.served > 0,
          before,
        ),
      );
    }
    this.owner.closed(this);
  };
}
