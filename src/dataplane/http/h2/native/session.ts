// The downstream HTTP/2 codec written for the proxy: one accepted socket as an HTTP/2 server session (RFC 9113),
// its streams, flow control, limits and abuse defences, with every frame of a pass leaving in one socket write.

import type { Socket } from 'node:net';
import { monotonicMs } from '../../../clock.js';
import { Deadline, IdleTimer } from '../../../timers.js';
import type { HeaderList } from '../../header_list.js';
import type { Http2CodecStats } from '../../stats.js';
import type { DownstreamConnection, DownstreamStream } from '../../stream.js';
import { type H2ServerOptions, PREMATURE_RESET_TOTAL_STREAMS } from '../server_connection.js';
import {
  ACK,
  DEFAULT_MAX_FRAME,
  ErrorCode,
  Flag,
  FrameReader,
  frameHeader,
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
import { HeaderListTooLarge, HpackDecoder, HpackEncoder, HpackError } from './hpack.js';
import { MalformedRequest, requestHeadFrom, trailersFrom } from './request.js';
import { NativeStream, type StreamOwner } from './stream.js';

const PREMATURE_RESET_LIFETIME_MS = 1000;
/** The flow-control window both sides start with (RFC 9113 §6.9.2). */
const DEFAULT_WINDOW = 65_535;
/** Bytes waiting for the socket beyond which response DATA waits (the peer is not reading). */
const OUT_HIGH_WATER = 256 * 1024;
/** How long a closing connection waits for its last frames to leave before the socket is destroyed. */
const CLOSE_GRACE_MS = 1000;
/** Writes smaller than this are joined into one buffer; larger ones go out as one writev. */
const CONCAT_MAX = 64 * 1024;

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

/** A header block being received in HEADERS + CONTINUATION frames. */
interface PendingBlock {
  readonly streamId: number;
  readonly endStream: boolean;
  readonly parts: Buffer[];
  size: number;
}

/** One downstream HTTP/2 connection. */
export class NativeH2Session implements StreamOwner {
  private readonly streams = new Map<number, NativeStream>();
  private readonly reader: FrameReader;
  private readonly decoder: HpackDecoder;
  private readonly encoder = new HpackEncoder();
  private readonly idle: IdleTimer;
  /** Preface bytes not yet seen. */
  private prefaceLeft = PREFACE.length;
  private gotSettings = false;
  /** The peer acknowledged our SETTINGS: from then on it knows our limits. */
  private settingsAcked = false;
  private lastStreamId = 0;
  private block: PendingBlock | undefined;
  private readonly blockLimit: number;

  // ---- flow control
  private connRecvWindow: number;
  private connUnacked = 0;
  private connSendWindow = DEFAULT_WINDOW;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = DEFAULT_MAX_FRAME;
  private peerTableSize = 4096;
  /** Streams with response bytes the windows or the socket hold back. */
  private readonly blocked = new Set<NativeStream>();

  // ---- output
  private out: Buffer[] = [];
  private outBytes = 0;
  private outFrames = 0;
  private outControl = 0;
  private flushScheduled = false;
  /** Some stream waits for the socket (not for a window) to take more. */
  private outBlocked = false;
  private reading = false;

  // ---- abuse accounting
  private closedStreams = 0;
  private prematureResets = 0;
  private streamsOpened = 0;
  private dataFramesSent = 0;
  private emptyFrames = 0;
  private priorityFrames = 0;
  private windowUpdates = 0;
  /** Frames (and control frames) written while the socket was still busy with earlier ones. */
  private framesOwed = 0;
  private controlOwed = 0;
  /** Control frames the peer made us answer within the current second. */
  private answered = 0;
  private answeredSince = 0;

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
    this.decoder = new HpackDecoder(h.hpackTableSize);
    this.reader = new FrameReader(DEFAULT_MAX_FRAME, this.onFrame);
    // A header block larger than twice the limit cannot decode to a list within it (short of a hostile encoder).
    this.blockLimit = 2 * opts.maxHeaderBytes + 16 * 1024;
    this.connRecvWindow = Math.max(DEFAULT_WINDOW, h.initialConnectionWindowSize);
    const settings: [number, number][] = [
      [Setting.MAX_CONCURRENT_STREAMS, h.maxConcurrentStreams],
      [Setting.INITIAL_WINDOW_SIZE, h.initialStreamWindowSize],
      [Setting.MAX_HEADER_LIST_SIZE, opts.maxHeaderBytes],
      [Setting.ENABLE_PUSH, 0],
      [Setting.MAX_FRAME_SIZE, DEFAULT_MAX_FRAME],
    ];
    if (h.hpackTableSize !== 4096) settings.push([Setting.HEADER_TABLE_SIZE, h.hpackTableSize]);
    this.push(settingsFrame(settings), false);
    if (this.connRecvWindow > DEFAULT_WINDOW) {
      this.push(windowUpdateFrame(0, this.connRecvWindow - DEFAULT_WINDOW), false);
    }
    this.idle = new IdleTimer(() => {
      if (this.streams.size > 0) return;
      this.cb.onIdleTimeout();
      this.goaway(ErrorCode.NO_ERROR);
    });
    this.idle.set(opts.idleTimeoutMs);
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('drain', this.onDrain);
    socket.on('close', this.onClose);
    socket.on('error', () => undefined);
    // Bytes read to choose the codec were put back, and the socket may have been handed over paused.
    socket.resume();
    this.flush();
  }

  get activeStreams(): number {
    return this.streams.size;
  }

  // ---- input

  private readonly onData = (chunk: Buffer): void => {
    if (this.closing) return;
    this.reading = true;
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
    this.reading = false;
    this.flush();
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
    if (this.block !== undefined && type !== Type.CONTINUATION) {
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

  private countEmpty(empty: boolean): void {
    if (!empty) {
      this.emptyFrames = 0;
      return;
    }
    if (++this.emptyFrames > this.opts.http2.maxConsecutiveInboundFramesWithEmptyPayload) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'too many consecutive empty frames');
    }
  }

  private onHeaders(flags: number, id: number, payload: Buffer): void {
    if (id === 0 || (id & 1) === 0)
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on an even stream id');
    const [start, end] = unpad(Type.HEADERS, flags, payload);
    const fragment = payload.subarray(start, end);
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (flags & Flag.END_HEADERS) {
      this.countEmpty(false);
      return this.onHeaderBlock(id, fragment, endStream);
    }
    this.countEmpty(fragment.length === 0);
    this.block = { streamId: id, endStream, parts: [fragment], size: fragment.length };
  }

  private onContinuation(flags: number, id: number, payload: Buffer): void {
    const b = this.block;
    if (b === undefined || b.streamId !== id) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without its HEADERS');
    }
    b.parts.push(payload);
    b.size += payload.length;
    if (b.size > this.blockLimit) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block over the limit');
    }
    if (!(flags & Flag.END_HEADERS)) return this.countEmpty(payload.length === 0);
    this.countEmpty(false);
    this.block = undefined;
    this.onHeaderBlock(id, Buffer.concat(b.parts, b.size), b.endStream);
  }

  private onHeaderBlock(id: number, block: Buffer, endStream: boolean): void {
    // Every block is decoded, even one for a stream about to be refused: the HPACK table must stay in step.
    const list: string[] = [];
    let tooLarge = false;
    try {
      this.decoder.decode(block, list, this.opts.maxHeaderBytes);
    } catch (err) {
      if (!(err instanceof HeaderListTooLarge)) throw err;
      tooLarge = true;
    }
    const existing = this.streams.get(id);
    if (existing !== undefined) return this.onTrailers(existing, list, endStream, tooLarge);
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
    this.streamsOpened++;
    this.stats['http2.streams_active'].inc();
    if (this.streams.size === 1) this.idle.set(0);
    this.cb.onStream(stream);
  }

  private onTrailers(stream: NativeStream, list: string[], endStream: boolean, tooLarge: boolean): void {
    if (stream.remoteClosed) return this.reset(stream, ErrorCode.STREAM_CLOSED);
    let trailers: string[];
    try {
      if (!endStream) throw new MalformedRequest('trailers without END_STREAM');
      if (tooLarge) throw new MalformedRequest('trailers over max_request_headers_kb');
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
    const block = this.encoder.encodeResponse(431, ['content-length', '0']);
    this.push(headerBlockFrames(id, block, true, this.peerMaxFrame), false);
    if (!endStream) this.push(rstStreamFrame(id, ErrorCode.NO_ERROR), true);
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
    this.countEmpty(end === start && !endStream);
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
    if (stream.idle !== undefined) this.touch(stream);
    if (body > 0) stream.deliver(payload.subarray(start, end));
    if (endStream && !stream.closed) {
      stream.remoteClosed = true;
      stream.deliverEnd();
      if (stream.localClosed) this.closeStream(stream, false);
    }
  }

  private onPriority(id: number, payload: Buffer): void {
    if (id === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
    if (
      ++this.priorityFrames >
      this.opts.http2.maxInboundPriorityFramesPerStream * (1 + this.streamsOpened)
    ) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'PRIORITY flood');
    }
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
            this.encoder.setMaxTableSize(value);
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
          this.peerMaxFrame = value;
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
    if (windowDelta > 0) this.pumpBlocked();
  }

  private onPing(flags: number, id: number, payload: Buffer): void {
    if (payload.length !== 8) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING size');
    if (id !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
    if (flags & ACK) return;
    this.answer(pingAck(payload));
  }

  /** Queues a control frame the peer asked for; a peer that asks faster than any client needs is cut off. */
  private answer(frame: Buffer): void {
    const now = monotonicMs();
    if (now - this.answeredSince > 1000) {
      this.answeredSince = now;
      this.answered = 0;
    }
    if (++this.answered > this.opts.http2.maxOutboundControlFrames) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'control frame flood');
    }
    this.push(frame, true);
  }

  private onGoaway(id: number, payload: Buffer): void {
    if (id !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY size');
    this.peerGoaway = true;
    if (this.streams.size === 0) this.goaway(ErrorCode.NO_ERROR);
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE size');
    const limit =
      1 +
      2 *
        (this.streamsOpened +
          this.opts.http2.maxInboundWindowUpdateFramesPerDataFrameSent * this.dataFramesSent);
    if (++this.windowUpdates > limit + 100) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'WINDOW_UPDATE flood');
    }
    const inc = payload.readUInt32BE(0) & MAX_WINDOW;
    if (id === 0) {
      if (inc === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.connSendWindow += inc;
      if (this.connSendWindow > MAX_WINDOW) {
        throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window overflow');
      }
      return this.pumpBlocked();
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
    if (stream.queued > 0 || stream.ending) this.pump(stream);
  }

  // ---- request flow control

  consumed(stream: NativeStream, n: number): void {
    if (!stream.remoteClosed) {
      stream.unacked += n;
      if (stream.unacked >= this.opts.http2.initialStreamWindowSize >>> 1) {
        this.push(windowUpdateFrame(stream.id, stream.unacked), false);
        stream.recvWindow += stream.unacked;
        stream.unacked = 0;
      }
    }
    this.creditConnection(n);
  }

  private creditConnection(n: number): void {
    this.connUnacked += n;
    if (this.connUnacked >= this.opts.http2.initialConnectionWindowSize >>> 1) {
      this.push(windowUpdateFrame(0, this.connUnacked), false);
      this.connRecvWindow += this.connUnacked;
      this.connUnacked = 0;
    }
  }

  // ---- response output

  sendHeaders(stream: NativeStream, status: number, headers: HeaderList, endStream: boolean): void {
    if (stream.closed || stream.localClosed) return;
    const list = sendable(headers);
    const block = status === 0 ? this.encoder.encode(list) : this.encoder.encodeResponse(status, list);
    const flags = (endStream ? Flag.END_STREAM : 0) | Flag.END_HEADERS;
    if (block.length <= this.peerMaxFrame) {
      this.push(frameHeader(block.length, Type.HEADERS, flags, stream.id), false, block);
    } else {
      this.push(headerBlockFrames(stream.id, block, endStream, this.peerMaxFrame), false);
    }
    if (endStream) this.localEnd(stream);
  }

  pump(stream: NativeStream): void {
    if (stream.closed || stream.localClosed) return;
    if (stream.idle !== undefined) this.touch(stream);
    const max = this.peerMaxFrame;
    while (stream.queued > 0) {
      const room = Math.min(stream.sendWindow, this.connSendWindow, max);
      if (room <= 0 || this.outBytes + this.socket.writableLength > OUT_HIGH_WATER) {
        if (room > 0) this.outBlocked = true;
        this.blocked.add(stream);
        this.scheduleFlush();
        stream.drained();
        return;
      }
      const chunk = stream.queue[0]!;
      let piece = chunk;
      if (chunk.length > room) {
        piece = chunk.subarray(0, room);
        stream.queue[0] = chunk.subarray(room);
      } else stream.queue.shift();
      const n = piece.length;
      stream.queued -= n;
      stream.sendWindow -= n;
      this.connSendWindow -= n;
      const last = stream.queued === 0 && stream.ending && stream.trailers === undefined;
      this.dataFramesSent++;
      this.push(frameHeader(n, Type.DATA, last ? Flag.END_STREAM : 0, stream.id), false, piece);
      if (last) {
        this.blocked.delete(stream);
        this.localEnd(stream);
        return;
      }
    }
    this.blocked.delete(stream);
    if (stream.ending) {
      if (stream.trailers !== undefined) this.sendHeaders(stream, 0, stream.trailers, true);
      else {
        this.push(frameHeader(0, Type.DATA, Flag.END_STREAM, stream.id), false);
        this.localEnd(stream);
      }
      return;
    }
    stream.drained();
  }

  private pumpBlocked(): void {
    for (const s of this.blocked) {
      this.pump(s);
      if (this.connSendWindow <= 0) break;
    }
  }

  private readonly onDrain = (): void => {
    this.outBlocked = false;
    if (this.blocked.size > 0) {
      this.pumpBlocked();
      this.flush();
    }
  };

  /** END_STREAM went out: the stream closes once the peer's side is done too (we do not wait for it). */
  private localEnd(stream: NativeStream): void {
    stream.localClosed = true;
    if (!stream.remoteClosed) {
      // The response is complete before the request: the rest of it is not wanted (RFC 9113 §8.1).
      this.push(rstStreamFrame(stream.id, ErrorCode.NO_ERROR), true);
    }
    this.closeStream(stream, false);
  }

  reset(stream: NativeStream, code: number): void {
    if (stream.closed) return;
    this.push(rstStreamFrame(stream.id, code), true);
    stream.resetSent = true;
    this.closeStream(stream, false);
  }

  /** RST_STREAM for a stream that has no NativeStream (refused, malformed, closed already). */
  private streamError(id: number, code: number): void {
    this.push(rstStreamFrame(id, code), true);
  }

  /** Queues a frame (or a frame header and its payload) for the end of this pass. */
  private push(frame: Buffer, control: boolean, payload?: Buffer): void {
    this.out.push(frame);
    this.outBytes += frame.length;
    if (payload !== undefined) {
      this.out.push(payload);
      this.outBytes += payload.length;
    }
    this.outFrames++;
    if (control) this.outControl++;
    if (!this.reading) this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const out = this.out;
    if (out.length === 0 || this.socket.destroyed) {
      this.out = [];
      this.outBytes = 0;
      return;
    }
    const bytes = this.outBytes;
    const frames = this.outFrames;
    const control = this.outControl;
    this.out = [];
    this.outBytes = 0;
    this.outFrames = 0;
    this.outControl = 0;
    const socket = this.socket;
    const busy = socket.writableLength > 0;
    if (out.length === 1) socket.write(out[0]!);
    else if (bytes <= CONCAT_MAX) socket.write(Buffer.concat(out, bytes));
    else {
      socket.cork();
      for (const b of out) socket.write(b);
      socket.uncork();
    }
    if (this.outBlocked && !socket.writableNeedDrain) {
      // The bytes that held streams back were taken at once: no 'drain' is coming to restart them.
      this.outBlocked = false;
      setImmediate(this.onDrain);
    }
    if (!busy) {
      this.framesOwed = 0;
      this.controlOwed = 0;
      return;
    }
    // The peer is not reading what we owe it: Envoy's max_outbound_frames / max_outbound_control_frames.
    this.framesOwed += frames;
    this.controlOwed += control;
    const h = this.opts.http2;
    if (
      !this.closing &&
      (this.framesOwed > h.maxOutboundFrames || this.controlOwed > h.maxOutboundControlFrames)
    ) {
      this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, false);
    }
  };

  // ---- stream lifecycle

  private closeStream(stream: NativeStream, peerReset: boolean): void {
    if (stream.closed) return;
    this.streams.delete(stream.id);
    this.blocked.delete(stream);
    stream.idle?.cancel();
    this.stats['http2.streams_active'].dec();
    this.closedStreams++;
    if (stream.resetSent) this.stats['http2.tx_reset'].inc();
    stream.onClosed();
    if (peerReset) {
      this.stats['http2.rx_reset'].inc();
      if (Date.now() - stream.opened < PREMATURE_RESET_LIFETIME_MS) {
        this.prematureResets++;
        this.checkPrematureResets();
      }
    }
    if (this.streams.size === 0 && !this.closing) {
      if (this.draining || this.peerGoaway) this.finishClose();
      else this.idle.set(this.opts.idleTimeoutMs);
    }
  }

  private touch(stream: NativeStream): void {
    stream.idle!.start(this.opts.streamIdleTimeoutMs!);
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
    this.flush();
  }

  private checkPrematureResets(): void {
    const limit = PREMATURE_RESET_TOTAL_STREAMS;
    const tooMany =
      this.closedStreams < limit
        ? this.prematureResets >= limit / 2
        : this.prematureResets * 2 >= this.closedStreams;
    if (!tooMany || this.closing) return;
    this.cb.onPrematureResets();
    this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, false);
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
    this.push(goawayFrame(this.lastStreamId, ErrorCode.NO_ERROR), true);
    this.flush();
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
    this.push(goawayFrame(this.lastStreamId, code), true);
    this.finishClose();
  }

  /** A connection error: GOAWAY with `code`, streams in flight are dropped, the connection closes. */
  private connectionError(code: ErrorCode, protocolError = true): void {
    if (this.closing) return;
    if (protocolError && code !== ErrorCode.NO_ERROR) this.cb.onProtocolError();
    this.stats['http2.goaway_sent'].inc();
    this.block = undefined;
    this.out = [];
    this.outBytes = 0;
    this.push(goawayFrame(this.lastStreamId, code), true);
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
    this.blocked.clear();
    this.flush();
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
    this.blocked.clear();
    this.out = [];
    this.outBytes = 0;
  };

  /** Closes the connection now. */
  destroy(): void {
    this.idle.close();
    this.socket.destroy();
  }
}

/** Names HTTP/2 must not carry (RFC 9113 §8.2.2), dropped from response heads and trailers. */
function forbidden(name: string, value: string): boolean {
  switch (name) {
    case 'connection':
    case 'keep-alive':
    case 'proxy-connection':
    case 'transfer-encoding':
    case 'upgrade':
    case 'host':
      return true;
    case 'te':
      return value.toLowerCase() !== 'trailers';
    default:
      return name.charCodeAt(0) === 58;
  }
}

/** `headers` without what HTTP/2 cannot carry; the same list when nothing needs dropping (the usual case). */
function sendable(headers: HeaderList): HeaderList {
  for (let i = 0; i < headers.length; i += 2) {
    if (forbidden(headers[i]!, headers[i + 1]!)) {
      const out: HeaderList = [];
      for (let j = 0; j < headers.length; j += 2) {
        if (!forbidden(headers[j]!, headers[j + 1]!)) out.push(headers[j]!, headers[j + 1]!);
      }
      return out;
    }
  }
  return headers;
}
