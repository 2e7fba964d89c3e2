// The downstream HTTP/2 codec written for the proxy: one accepted socket as an HTTP/2 server session (RFC 9113),
// the connection state machine that reads frames and opens, feeds and closes streams.

import type { Socket } from 'node:net';
import { Deadline, IdleTimer } from '../../../timers.js';
import type { HeaderList } from '../../header_list.js';
import type { Http2CodecStats } from '../../stats.js';
import type { DownstreamConnection, DownstreamStream } from '../../stream.js';
import type { H2ServerOptions } from '../server_options.js';
import { FloodGuard } from './floods.js';
import {
  ACK,
  DEFAULT_MAX_FRAME,
  ErrorCode,
  Flag,
  FrameReader,
  goawayFrame,
  H2ConnectionError,
  headerBlockFrames,
  MAX_WINDOW,
  PREFACE,
  pingAck,
  rstStreamFrame,
  SETTINGS_ACK,
  Setting,
  settingsFrame,
  Type,
  unpad,
  windowUpdateFrame,
} from './frames.js';
import { BlockResult, HeaderBlockReader } from './header_block.js';
import { HpackError } from './hpack.js';
import { DEFAULT_WINDOW, H2Output, type OutputOwner } from './output.js';
import { MalformedRequest, requestHeadFrom, trailersFrom } from './request.js';
import { NativeStream, type StreamOwner } from './stream.js';

/** How long a closing connection waits for its last frames to leave before the socket is destroyed. */
const CLOSE_GRACE_MS = 1000;

/** The node:http2 codec's options, and the HCM's stream_idle_timeout (0 = none). */
export interface NativeH2Options extends H2ServerOptions {
  readonly streamIdleTimeoutMs?: number;
}

export interface NativeH2Callbacks {
  onStream(stream: DownstreamStream): void;
  /** A stream saw no activity for stream_idle_timeout (the session answers 408 or resets it). */
  onStreamIdleTimeout?(): void;
  onIdleTimeout(): void;
  onPrematureResets(): void;
  onProtocolError(): void;
}

/** One downstream HTTP/2 connection. */
export class NativeH2Session implements StreamOwner, OutputOwner {
  private readonly streams = new Map<number, NativeStream>();
  private readonly reader: FrameReader;
  private readonly blocks: HeaderBlockReader;
  private readonly output: H2Output;
  private readonly floods: FloodGuard;
  private readonly idle: IdleTimer;
  /** Preface bytes not yet seen. */
  private prefaceLeft = PREFACE.length;
  private gotSettings = false;
  /** The peer acknowledged our SETTINGS: from then on it knows our limits. */
  private settingsAcked = false;
  private lastStreamId = 0;

  // ---- flow control (what we send is the output's)
  private connRecvWindow: number;
  private connUnacked = 0;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerTableSize = 4096;

  // ---- lifecycle
  private draining = false;
  private peerGoaway = false;
  /** A GOAWAY that ends the connection went out: nothing more is read. */
  private closing = false;
  private drainTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: Socket,
    readonly connection: DownstreamConnection,
    private readonly opts: NativeH2Options,
    private readonly stats: Http2CodecStats,
    private readonly cb: NativeH2Callbacks,
  ) {
    const h = opts.http2;
    this.reader = new FrameReader(DEFAULT_MAX_FRAME, this.onFrame);
    this.blocks = new HeaderBlockReader(h.hpackTableSize, opts.maxHeaderBytes);
    this.floods = new FloodGuard(h);
    this.output = new H2Output(socket, this, this.floods, opts.streamIdleTimeoutMs ?? 0);
    this.connRecvWindow = Math.max(DEFAULT_WINDOW, h.initialConnectionWindowSize);
    const settings: [number, number][] = [
      [Setting.MAX_CONCURRENT_STREAMS, h.maxConcurrentStreams],
      [Setting.INITIAL_WINDOW_SIZE, h.initialStreamWindowSize],
      [Setting.MAX_HEADER_LIST_SIZE, opts.maxHeaderBytes],
      [Setting.ENABLE_PUSH, 0],
      [Setting.MAX_FRAME_SIZE, DEFAULT_MAX_FRAME],
    ];
    if (h.hpackTableSize !== 4096) settings.push([Setting.HEADER_TABLE_SIZE, h.hpackTableSize]);
    this.output.push(settingsFrame(settings), false);
    if (this.connRecvWindow > DEFAULT_WINDOW) {
      this.output.push(windowUpdateFrame(0, this.connRecvWindow - DEFAULT_WINDOW), false);
    }
    this.idle = new IdleTimer(() => {
      if (this.streams.size > 0) return;
      this.cb.onIdleTimeout();
      this.goaway(ErrorCode.NO_ERROR);
    });
    this.idle.set(opts.idleTimeoutMs);
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', () => undefined);
    // Bytes read to choose the codec were put back, and the socket may have been handed over paused.
    socket.resume();
    this.output.flush();
  }

  get activeStreams(): number {
    return this.streams.size;
  }

  // ---- input

  private readonly onData = (chunk: Buffer): void => {
    if (this.closing) return;
    this.output.reading = true;
    try {
      if (this.prefaceLeft > 0) chunk = this.readPreface(chunk);
      if (chunk.length > 0) this.reader.feed(chunk);
    } catch (err) {
      if (err instanceof H2ConnectionError) this.connectionError(err.code);
      else if (err instanceof HpackError) this.connectionError(ErrorCode.COMPRESSION_ERROR);
      else {
        // A bug of ours must not take the process down: this connection alone is lost.
        this.connectionError(ErrorCode.INTERNAL_ERROR, false);
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    this.output.reading = false;
    this.output.flush();
  };

  private readPreface(chunk: Buffer): Buffer {
    const at = PREFACE.length - this.prefaceLeft;
    const n = Math.min(this.prefaceLeft, chunk.length);
    if (chunk.compare(PREFACE, at, at + n, 0, n) !== 0) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'bad connection preface');
    }
    this.prefaceLeft -= n;
    return chunk.subarray(n);
  }

  private readonly onFrame = (type: number, flags: number, id: number, payload: Buffer): void => {
    if (this.closing) return;
    if (this.blocks.pending !== undefined && type !== Type.CONTINUATION) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'header block interrupted');
    }
    if (!this.gotSettings && (type !== Type.SETTINGS || flags & ACK)) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'the preface must be followed by SETTINGS');
    }
    switch (type) {
      case Type.DATA:
        return this.onDataFrame(flags, id, payload);
      case Type.HEADERS:
        return this.onHeaders(flags, id, payload);
      case Type.PRIORITY:
        return this.onPriority(id, payload);
      case Type.RST_STREAM:
        return this.onRstStream(id, payload);
      case Type.SETTINGS:
        return this.onSettings(flags, id, payload);
      case Type.PUSH_PROMISE:
        throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
      case Type.PING:
        return this.onPing(flags, id, payload);
      case Type.GOAWAY:
        return this.onGoaway(id, payload);
      case Type.WINDOW_UPDATE:
        return this.onWindowUpdate(id, payload);
      case Type.CONTINUATION:
        return this.onContinuation(flags, id, payload);
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  };

  private onHeaders(flags: number, id: number, payload: Buffer): void {
    if (id === 0 || (id & 1) === 0)
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on an even stream id');
    const [start, end] = unpad(Type.HEADERS, flags, payload);
    const fragment = payload.subarray(start, end);
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (flags & Flag.END_HEADERS) {
      this.floods.frame(false);
      return this.onHeaderBlock(id, fragment, endStream);
    }
    this.floods.frame(fragment.length === 0);
    this.blocks.begin(id, endStream, fragment);
  }

  private onContinuation(flags: number, id: number, payload: Buffer): void {
    const b = this.blocks.continuation(flags, id, payload);
    if (b === undefined) return this.floods.frame(payload.length === 0);
    this.floods.frame(false);
    this.onHeaderBlock(id, Buffer.concat(b.parts, b.size), b.endStream);
  }

  private onHeaderBlock(id: number, block: Buffer, endStream: boolean): void {
    const list: string[] = [];
    const result = this.blocks.decode(block, list);
    const tooLarge = result === BlockResult.TooLarge;
    const existing = this.streams.get(id);
    if (existing !== undefined) return this.onTrailers(existing, list, endStream, result);
    if (id <= this.lastStreamId) {
      // A stream that is closed already (we may have reset it while the peer was still sending).
      return this.streamError(id, ErrorCode.STREAM_CLOSED);
    }
    this.lastStreamId = id;
    if (this.draining || this.peerGoaway) return this.streamError(id, ErrorCode.REFUSED_STREAM);
    if (tooLarge || list.length / 2 > this.opts.maxHeaders + 4) return this.rejectTooLarge(id, endStream);
    if (this.streams.size >= this.opts.http2.maxConcurrentStreams) {
      // Before the peer has our SETTINGS it cannot know the limit; after, exceeding it is its error (nghttp2
      // makes it a connection error, as the tests expect).
      if (this.settingsAcked) {
        throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'max_concurrent_streams exceeded');
      }
      return this.streamError(id, ErrorCode.REFUSED_STREAM);
    }
    let head: ReturnType<typeof requestHeadFrom>;
    try {
      if (result === BlockResult.Malformed) throw new MalformedRequest('a header field with CR, LF or NUL');
      head = requestHeadFrom(list);
      if (endStream && head.contentLength > 0) throw new MalformedRequest('content-length without a body');
    } catch (err) {
      if (!(err instanceof MalformedRequest)) throw err;
      this.stats['http2.rx_messaging_error'].inc();
      return this.streamError(id, ErrorCode.PROTOCOL_ERROR);
    }
    const h = this.opts.http2;
    const stream = new NativeStream(
      id,
      head,
      endStream,
      this,
      h.initialStreamWindowSize,
      this.peerInitialWindow,
    );
    this.streams.set(id, stream);
    const idleMs = this.opts.streamIdleTimeoutMs ?? 0;
    if (idleMs > 0) {
      stream.idle = new Deadline(() => this.onStreamIdle(stream));
      stream.idle.start(idleMs);
    }
    this.floods.streamOpened();
    this.stats['http2.streams_active'].inc();
    if (this.streams.size === 1) this.idle.set(0);
    this.cb.onStream(stream);
  }

  private onTrailers(stream: NativeStream, list: string[], endStream: boolean, result: BlockResult): void {
    if (stream.remoteClosed) return this.reset(stream, ErrorCode.STREAM_CLOSED);
    let trailers: string[];
    try {
      if (!endStream) throw new MalformedRequest('trailers without END_STREAM');
      if (result === BlockResult.TooLarge) throw new MalformedRequest('trailers over max_request_headers_kb');
      if (result === BlockResult.Malformed) throw new MalformedRequest('a trailer with CR, LF or NUL');
      if (stream.contentLength >= 0 && stream.received !== stream.contentLength) {
        throw new MalformedRequest('body shorter than content-length');
      }
      trailers = trailersFrom(list);
    } catch (err) {
      if (!(err instanceof MalformedRequest)) throw err;
      this.stats['http2.rx_messaging_error'].inc();
      return this.reset(stream, ErrorCode.PROTOCOL_ERROR);
    }
    stream.remoteClosed = true;
    stream.deliverEnd(trailers);
    if (stream.localClosed) this.closeStream(stream, false);
  }

  /** A header list over max_request_headers_kb: 431, and the connection goes on. */
  private rejectTooLarge(id: number, endStream: boolean): void {
    const block = this.output.encoder.encodeResponse(431, ['content-length', '0']);
    this.output.push(headerBlockFrames(id, block, true, this.output.peerMaxFrame), false);
    if (!endStream) this.output.push(rstStreamFrame(id, ErrorCode.NO_ERROR), true);
  }

  private onDataFrame(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    const len = payload.length;
    if (len > this.connRecvWindow) {
      throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    }
    this.connRecvWindow -= len;
    const [start, end] = unpad(Type.DATA, flags, payload);
    const endStream = (flags & Flag.END_STREAM) !== 0;
    this.floods.frame(end === start && !endStream);
    const stream = this.streams.get(id);
    if (stream === undefined || stream.remoteClosed) {
      if (id > this.lastStreamId)
        throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on an idle stream');
      this.creditConnection(len);
      if (stream !== undefined) this.reset(stream, ErrorCode.STREAM_CLOSED);
      return;
    }
    if (len > stream.recvWindow) {
      this.creditConnection(len);
      return this.reset(stream, ErrorCode.FLOW_CONTROL_ERROR);
    }
    stream.recvWindow -= len;
    const body = end - start;
    // Padding is consumed as soon as it arrives.
    if (body < len) this.consumed(stream, len - body);
    stream.received += body;
    if (
      stream.contentLength >= 0 &&
      (stream.received > stream.contentLength || (endStream && stream.received !== stream.contentLength))
    ) {
      this.stats['http2.rx_messaging_error'].inc();
      return this.reset(stream, ErrorCode.PROTOCOL_ERROR);
    }
    if (stream.idle !== undefined) stream.idle.start(this.opts.streamIdleTimeoutMs!);
    if (body > 0) stream.deliver(payload.subarray(start, end));
    if (endStream && !stream.closed) {
      stream.remoteClosed = true;
      stream.deliverEnd();
      if (stream.localClosed) this.closeStream(stream, false);
    }
  }

  private onPriority(id: number, payload: Buffer): void {
    if (id === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
    this.floods.priorityFrame();
    if (payload.length !== 5) {
      const s = this.streams.get(id);
      if (s !== undefined) this.reset(s, ErrorCode.FRAME_SIZE_ERROR);
      else this.streamError(id, ErrorCode.FRAME_SIZE_ERROR);
    }
  }

  private onRstStream(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM size');
    if (id === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    const stream = this.streams.get(id);
    if (stream === undefined) {
      if (id > this.lastStreamId)
        throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
      return;
    }
    this.closeStream(stream, !stream.finished);
  }

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & ACK) {
      if (payload.length !== 0)
        throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      this.settingsAcked = true;
      return;
    }
    if (payload.length % 6 !== 0) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS size');
    this.gotSettings = true;
    let windowDelta = 0;
    for (let at = 0; at < payload.length; at += 6) {
      const key = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      switch (key) {
        case Setting.HEADER_TABLE_SIZE:
          if (value !== this.peerTableSize) {
            this.peerTableSize = value;
            this.output.encoder.setMaxTableSize(value);
          }
          break;
        case Setting.ENABLE_PUSH:
          if (value > 1) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH');
          break;
        case Setting.INITIAL_WINDOW_SIZE:
          if (value > MAX_WINDOW)
            throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE');
          windowDelta += value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          break;
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME || value > 0xffffff) {
            throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_MAX_FRAME_SIZE');
          }
          this.output.peerMaxFrame = value;
          break;
        default:
          break;
      }
    }
    if (windowDelta !== 0) {
      for (const s of this.streams.values()) {
        s.sendWindow += windowDelta;
        if (s.sendWindow > MAX_WINDOW)
          throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'stream window overflow');
      }
    }
    this.answer(SETTINGS_ACK);
    if (windowDelta > 0) this.output.pumpBlocked();
  }

  private onPing(flags: number, id: number, payload: Buffer): void {
    if (payload.length !== 8) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING size');
    if (id !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
    if (flags & ACK) return;
    this.answer(pingAck(payload));
  }

  /** Queues a control frame the peer asked for; a peer that asks faster than any client needs is cut off. */
  private answer(frame: Buffer): void {
    this.floods.answer();
    this.output.push(frame, true);
  }

  private onGoaway(id: number, payload: Buffer): void {
    if (id !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY size');
    this.peerGoaway = true;
    if (this.streams.size === 0) this.goaway(ErrorCode.NO_ERROR);
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE size');
    this.floods.windowUpdate();
    const inc = payload.readUInt32BE(0) & MAX_WINDOW;
    if (id === 0) {
      if (inc === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      return this.output.openConnectionWindow(inc);
    }
    const stream = this.streams.get(id);
    if (stream === undefined) {
      if (id > this.lastStreamId)
        throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
      return;
    }
    if (inc === 0) return this.reset(stream, ErrorCode.PROTOCOL_ERROR);
    stream.sendWindow += inc;
    if (stream.sendWindow > MAX_WINDOW) return this.reset(stream, ErrorCode.FLOW_CONTROL_ERROR);
    if (stream.queued > 0 || stream.ending) this.output.pump(stream);
  }

  // ---- request flow control

  consumed(stream: NativeStream, n: number): void {
    if (!stream.remoteClosed) {
      stream.unacked += n;
      if (stream.unacked >= this.opts.http2.initialStreamWindowSize >>> 1) {
        this.output.push(windowUpdateFrame(stream.id, stream.unacked), false);
        stream.recvWindow += stream.unacked;
        stream.unacked = 0;
      }
    }
    this.creditConnection(n);
  }

  private creditConnection(n: number): void {
    this.connUnacked += n;
    if (this.connUnacked >= this.opts.http2.initialConnectionWindowSize >>> 1) {
      this.output.push(windowUpdateFrame(0, this.connUnacked), false);
      this.connRecvWindow += this.connUnacked;
      this.connUnacked = 0;
    }
  }

  // ---- response output (the output's; a stream reaches it through its owner)

  sendHeaders(stream: NativeStream, status: number, headers: HeaderList, endStream: boolean): void {
    this.output.sendHeaders(stream, status, headers, endStream);
  }

  pump(stream: NativeStream): void {
    this.output.pump(stream);
  }

  /** END_STREAM went out: the stream closes once the peer's side is done too (we do not wait for it). */
  localEnd(stream: NativeStream): void {
    stream.localClosed = true;
    if (!stream.remoteClosed) {
      // The response is complete before the request: the rest of it is not wanted (RFC 9113 §8.1).
      this.output.push(rstStreamFrame(stream.id, ErrorCode.NO_ERROR), true);
    }
    this.closeStream(stream, false);
  }

  reset(stream: NativeStream, code: number): void {
    if (stream.closed) return;
    this.output.push(rstStreamFrame(stream.id, code), true);
    stream.resetSent = true;
    this.closeStream(stream, false);
  }

  /** RST_STREAM for a stream that has no NativeStream (refused, malformed, closed already). */
  private streamError(id: number, code: number): void {
    this.output.push(rstStreamFrame(id, code), true);
  }

  /** The peer leaves too many of our frames unread (max_outbound_frames, max_outbound_control_frames). */
  outboundFlood(): void {
    this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, false);
  }

  // ---- stream lifecycle

  private closeStream(stream: NativeStream, peerReset: boolean): void {
    if (stream.closed) return;
    this.streams.delete(stream.id);
    this.output.forget(stream);
    stream.idle?.cancel();
    this.stats['http2.streams_active'].dec();
    this.floods.streamClosed();
    if (stream.resetSent) this.stats['http2.tx_reset'].inc();
    stream.onClosed();
    if (peerReset) {
      this.stats['http2.rx_reset'].inc();
      if (this.floods.peerReset(stream.opened) && !this.closing) {
        this.cb.onPrematureResets();
        this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, false);
      }
    }
    if (this.streams.size === 0 && !this.closing) {
      if (this.draining || this.peerGoaway) this.finishClose();
      else this.idle.set(this.opts.idleTimeoutMs);
    }
  }

  /** stream_idle_timeout, as on HTTP/1.1: 408 when no response has begun, else a reset. */
  private onStreamIdle(stream: NativeStream): void {
    if (stream.closed || this.closing) return;
    this.cb.onStreamIdleTimeout?.();
    if (stream.headersSent || stream.finished) return stream.destroy();
    stream.timedOut = true;
    const body = 'stream timeout: no activity within stream_idle_timeout\n';
    stream.writeHead(408, ['content-type', 'text/plain', 'content-length', String(body.length)]);
    stream.end(body);
    this.output.flush();
  }

  // ---- connection lifecycle

  /**
   * Graceful drain: a GOAWAY tells the client to open no new streams; streams in flight finish, then the
   * connection closes — at the latest after drain_timeout.
   */
  drain(): void {
    if (this.draining || this.closing) return;
    this.draining = true;
    this.stats['http2.goaway_sent'].inc();
    this.output.push(goawayFrame(this.lastStreamId, ErrorCode.NO_ERROR), true);
    this.output.flush();
    if (this.streams.size === 0) return this.finishClose();
    this.drainTimer = setTimeout(
      () => this.connectionError(ErrorCode.NO_ERROR, false),
      this.opts.drainTimeoutMs,
    );
    this.drainTimer.unref();
  }

  /** GOAWAY(NO_ERROR) now, and close (idle timeout, the peer's GOAWAY). */
  private goaway(code: ErrorCode): void {
    if (this.closing) return;
    this.stats['http2.goaway_sent'].inc();
    this.output.push(goawayFrame(this.lastStreamId, code), true);
    this.finishClose();
  }

  /** A connection error: GOAWAY with `code`, streams in flight are dropped, the connection closes. */
  private connectionError(code: ErrorCode, protocolError = true): void {
    if (this.closing) return;
    if (protocolError && code !== ErrorCode.NO_ERROR) this.cb.onProtocolError();
    this.stats['http2.goaway_sent'].inc();
    this.blocks.pending = undefined;
    this.output.discard();
    this.output.push(goawayFrame(this.lastStreamId, code), true);
    this.finishClose(code === ErrorCode.ENHANCE_YOUR_CALM || code === ErrorCode.NO_ERROR);
  }

  /**
   * Sends what is queued, closes our side and, once that is out (or after a grace period), the socket;
   * `abort`: the socket is destroyed at once.
   */
  private finishClose(abort = false): void {
    if (this.closing) return;
    this.closing = true;
    this.idle.close();
    if (this.drainTimer !== undefined) clearTimeout(this.drainTimer);
    const open = [...this.streams.values()];
    for (const s of open) this.closeStream(s, false);
    this.output.forgetAll();
    this.output.flush();
    const socket = this.socket;
    if (socket.destroyed) return;
    if (abort) {
      // An abusive peer (or a drain that ran out of time) is not waited for: the GOAWAY gets one chance to
      // reach the socket, and what the peer still sends is answered with a reset.
      socket.pause();
      setImmediate(() => socket.destroy());
      return;
    }
    socket.end();
    const t = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    t.unref();
    socket.once('finish', () => {
      // Wait for the peer's FIN a moment: closing with its bytes unread would reset what it has not read yet.
      socket.resume();
      socket.once('end', () => socket.destroy());
    });
    socket.once('close', () => clearTimeout(t));
  }

  private readonly onClose = (): void => {
    this.closing = true;
    this.idle.close();
    if (this.drainTimer !== undefined) clearTimeout(this.drainTimer);
    for (const s of [...this.streams.values()]) this.closeStream(s, false);
    this.output.forgetAll();
    this.output.discard();
  };

  /** Closes the connection now. */
  destroy(): void {
    this.idle.close();
    this.socket.destroy();
  }
}
