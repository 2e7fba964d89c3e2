// One upstream HTTP/2 connection on Remora's own codec (RFC 9113, client side): streams out, frames in, flow control.

import type { Socket } from 'node:net';
import type { ClusterConfig } from '../../../config/model.js';
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
} from '../../http/h2/native/frames.js';
import { HpackDecoder, HpackEncoder, HpackError } from '../../http/h2/native/hpack.js';
import type { HeaderList } from '../../http/header_list.js';
import type { Http2CodecStats } from '../../http/stats.js';
import { UpstreamError } from '../upstream_request.js';
import type { ExchangeConnection, NativeH2Exchange } from './exchange.js';
import {
  appendRegular,
  MalformedResponse,
  requestHeaderList,
  responseHead,
  responseTrailers,
} from './headers.js';

/** The flow-control window both sides start with (RFC 9113 §6.9.2). */
const DEFAULT_WINDOW = 65_535;
/** Streams assumed allowed until the peer's SETTINGS say otherwise (RFC 9113 §6.5.2 suggests 100). */
export const ASSUMED_PEER_STREAMS = 100;
/** Bytes waiting for the socket beyond which request DATA waits. */
const OUT_HIGH_WATER = 256 * 1024;
/** Writes smaller than this are joined into one buffer; larger ones go out corked. */
const CONCAT_MAX = 64 * 1024;
/** A header block (HEADERS + CONTINUATION) larger than this is a connection error. */
const MAX_HEADER_BLOCK = 256 * 1024;
/** How long a connection that sent GOAWAY for an error waits for the frame to leave. */
const CLOSE_GRACE_MS = 1000;
const PREFACE_AND_SETTINGS_CACHE = new Map<string, Buffer>();

/** What the connection tells its pool. */
export interface ConnectionOwner {
  /** The peer's SETTINGS changed how many streams fit, or a stream finished. */
  capacityChanged(): void;
  /** The exchange is over on this connection (it no longer counts against its streams). */
  exchangeDone(conn: NativeH2Connection, ex: NativeH2Exchange): void;
  /** The peer sent GOAWAY: no new streams here. */
  goaway(conn: NativeH2Connection): void;
  /** The socket closed. */
  closed(conn: NativeH2Connection): void;
}

function clientPreface(config: ClusterConfig): Buffer {
  const h = config.http2;
  const key = `${h.initialStreamWindowSize}/${h.initialConnectionWindowSize}/${h.hpackTableSize}`;
  let b = PREFACE_AND_SETTINGS_CACHE.get(key);
  if (b === undefined) {
    const settings: [number, number][] = [
      [Setting.ENABLE_PUSH, 0],
      [Setting.INITIAL_WINDOW_SIZE, h.initialStreamWindowSize],
    ];
    if (h.hpackTableSize !== 4096) settings.push([Setting.HEADER_TABLE_SIZE, h.hpackTableSize]);
    const parts = [PREFACE, settingsFrame(settings)];
    if (h.initialConnectionWindowSize > DEFAULT_WINDOW) {
      parts.push(windowUpdateFrame(0, h.initialConnectionWindowSize - DEFAULT_WINDOW));
    }
    b = Buffer.concat(parts);
    PREFACE_AND_SETTINGS_CACHE.set(key, b);
  }
  return b;
}

export class NativeH2Connection implements ExchangeConnection {
  readonly streams = new Map<number, NativeH2Exchange>();
  private readonly reader: FrameReader;
  private readonly decoder: HpackDecoder;
  private readonly encoder = new HpackEncoder();
  private nextStreamId = 1;
  private gotSettings = false;

  // ---- the peer's settings and our send windows
  peerMaxStreams = ASSUMED_PEER_STREAMS;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = DEFAULT_MAX_FRAME;
  private connSendWindow = DEFAULT_WINDOW;
  /** Streams with body bytes the windows or the socket hold back. */
  private readonly blocked = new Set<NativeH2Exchange>();

  // ---- our receive windows
  private readonly streamWindow: number;
  private readonly connWindow: number;
  /** What the peer may still send on the connection before our next WINDOW_UPDATE. */
  private connRecvWindow: number;
  private connUnacked = 0;

  // ---- a header block being read (HEADERS then CONTINUATION)
  private blockStream = 0;
  private blockFlags = 0;
  private blockParts: Buffer[] = [];
  private blockBytes = 0;

  // ---- output batching
  private out: Buffer[] = [];
  private outBytes = 0;
  private reading = false;
  private flushScheduled = false;
  /** Exchanges that got response bytes in this read pass. */
  private readonly touched = new Set<NativeH2Exchange>();

  /** GOAWAY received, an error, or the pool retired it: no new streams. */
  goneAway = false;
  closed = false;

  constructor(
    readonly socket: Socket,
    private readonly config: ClusterConfig,
    private readonly codecStats: Http2CodecStats,
    private readonly owner: ConnectionOwner,
    /** The connection had carried a response before (for the keep-alive race rule). */
    private readonly isReused: () => boolean,
  ) {
    const h = config.http2;
    this.streamWindow = h.initialStreamWindowSize;
    this.connWindow = Math.max(DEFAULT_WINDOW, h.initialConnectionWindowSize);
    this.connRecvWindow = this.connWindow;
    this.reader = new FrameReader(DEFAULT_MAX_FRAME, this.onFrame);
    this.decoder = new HpackDecoder(h.hpackTableSize);
    socket.on('drain', this.onDrain);
    this.push(clientPreface(config));
  }

  /** Bytes read from the socket (net's onread callback or a 'data' listener). */
  readonly onRead = (chunk: Buffer): boolean => {
    if (this.closed) return true;
    this.reading = true;
    try {
      this.reader.feed(chunk);
    } catch (err) {
      if (err instanceof H2ConnectionError) this.connectionError(err.code, err.message);
      else if (err instanceof HpackError) this.connectionError(ErrorCode.COMPRESSION_ERROR, err.message);
      else {
        // A bug of ours must not take the process down: this connection alone is lost.
        this.connectionError(ErrorCode.INTERNAL_ERROR, (err as Error).message);
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    this.reading = false;
    if (this.touched.size > 0) {
      // The bytes at hand are used up: the router flushes the response head without waiting for more body.
      for (const ex of this.touched) {
        if (ex.responded && !ex.done) ex.handler.onResponseWaiting(ex);
      }
      this.touched.clear();
    }
    this.flush();
    return true;
  };

  /** Streams this connection may open now. */
  get openStreams(): number {
    return this.streams.size;
  }

  get streamLimit(): number {
    return Math.min(this.peerMaxStreams, this.config.http2.maxConcurrentStreams);
  }

  // ---- streams out

  /** Opens a stream for `ex`: HEADERS now, the body as it comes. */
  start(ex: NativeH2Exchange): void {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    if (this.nextStreamId > MAX_WINDOW) this.goneAway = true;
    ex.id = id;
    ex.conn = this;
    ex.sendWindow = this.peerInitialWindow;
    ex.recvWindow = this.streamWindow;
    this.streams.set(id, ex);
    this.codecStats['http2.streams_active'].inc();
    const hasBody = ex.req.body !== undefined;
    this.sendHeaderBlock(id, requestHeaderList(ex.req), !hasBody);
    if (!hasBody) ex.localEnded = true;
    ex.handler.onRequestStart(ex);
    if (ex.done) return;
    if (hasBody) ex.req.body!.open(ex);
  }

  private sendHeaderBlock(id: number, list: string[], endStream: boolean): void {
    const block = this.encoder.encode(list);
    if (block.length <= this.peerMaxFrame) {
      const flags = (endStream ? Flag.END_STREAM : 0) | Flag.END_HEADERS;
      this.push(frameHeader(block.length, Type.HEADERS, flags, id), block);
    } else {
      this.push(headerBlockFrames(id, block, endStream, this.peerMaxFrame));
    }
  }

  pumpBody(ex: NativeH2Exchange): void {
    if (ex.done || ex.localEnded) return;
    const max = this.peerMaxFrame;
    while (ex.queued > 0) {
      const room = Math.min(ex.sendWindow, this.connSendWindow, max);
      if (room <= 0 || this.outBytes + this.socket.writableLength > OUT_HIGH_WATER) {
        this.blocked.add(ex);
        return;
      }
      const chunk = ex.queue[0]!;
      let piece = chunk;
      if (chunk.length > room) {
        piece = chunk.subarray(0, room);
        ex.queue[0] = chunk.subarray(room);
      } else ex.queue.shift();
      const n = piece.length;
      ex.queued -= n;
      ex.sendWindow -= n;
      this.connSendWindow -= n;
      const last = ex.queued === 0 && ex.ending && ex.requestTrailers === undefined;
      this.push(frameHeader(n, Type.DATA, last ? Flag.END_STREAM : 0, ex.id), piece);
      if (last) {
        ex.localEnded = true;
        this.blocked.delete(ex);
        return;
      }
    }
    this.blocked.delete(ex);
    if (ex.ending) {
      ex.localEnded = true;
      if (ex.requestTrailers !== undefined) {
        this.sendHeaderBlock(ex.id, appendRegular(ex.requestTrailers), true);
      } else this.push(frameHeader(0, Type.DATA, Flag.END_STREAM, ex.id));
      return;
    }
    ex.drained();
  }

  private pumpBlocked(): void {
    for (const ex of this.blocked) {
      this.pumpBody(ex);
      if (this.connSendWindow <= 0) break;
    }
  }

  private readonly onDrain = (): void => {
    if (this.blocked.size > 0) {
      this.pumpBlocked();
      this.flush();
    }
  };

  cancel(ex: NativeH2Exchange): void {
    if (!this.streams.has(ex.id)) return;
    this.codecStats['http2.tx_reset'].inc();
    this.push(rstStreamFrame(ex.id, ErrorCode.CANCEL));
    this.finish(ex);
  }

  release(ex: NativeH2Exchange): void {
    const n = ex.held;
    ex.held = 0;
    this.credit(ex, n);
    if (!this.reading) this.flush();
  }

  /** `n` response bytes were consumed: WINDOW_UPDATEs once half a window is used. */
  private credit(ex: NativeH2Exchange | undefined, n: number): void {
    if (n <= 0) return;
    this.connUnacked += n;
    if (this.connUnacked >= this.connWindow >>> 1) {
      this.push(windowUpdateFrame(0, this.connUnacked));
      this.connRecvWindow += this.connUnacked;
      this.connUnacked = 0;
    }
    if (ex === undefined || ex.done || ex.remoteEnded) return;
    ex.recvUnacked += n;
    if (ex.recvUnacked >= this.streamWindow >>> 1) {
      this.push(windowUpdateFrame(ex.id, ex.recvUnacked));
      ex.recvWindow += ex.recvUnacked;
      ex.recvUnacked = 0;
    }
  }

  /** The stream is over on this connection. */
  private finish(ex: NativeH2Exchange): void {
    if (!this.streams.delete(ex.id)) return;
    this.blocked.delete(ex);
    this.codecStats['http2.streams_active'].dec();
    // Bytes held back for a paused exchange no longer bound anything: the connection gets them back.
    if (ex.held > 0) {
      const n = ex.held;
      ex.held = 0;
      this.credit(undefined, n);
    }
    this.owner.exchangeDone(this, ex);
    if (this.goneAway && this.streams.size === 0) this.end();
  }

  // ---- output

  private push(frame: Buffer, payload?: Buffer): void {
    this.out.push(frame);
    this.outBytes += frame.length;
    if (payload !== undefined) {
      this.out.push(payload);
      this.outBytes += payload.length;
    }
    if (!this.reading && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Writes every queued frame in one socket write. */
  readonly flush = (): void => {
    this.flushScheduled = false;
    const out = this.out;
    if (out.length === 0) return;
    const bytes = this.outBytes;
    this.out = [];
    this.outBytes = 0;
    const socket = this.socket;
    if (socket.destroyed) return;
    if (out.length === 1) socket.write(out[0]!);
    else if (bytes <= CONCAT_MAX) socket.write(Buffer.concat(out, bytes));
    else {
      socket.cork();
      for (const b of out) socket.write(b);
      socket.uncork();
    }
    if (this.blocked.size > 0 && !socket.writableNeedDrain) setImmediate(this.onDrain);
  };

  // ---- frames in

  private readonly onFrame = (type: number, flags: number, id: number, payload: Buffer): void => {
    if (this.closed) return;
    if (this.blockStream !== 0 && type !== Type.CONTINUATION) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'header block interrupted');
    }
    if (!this.gotSettings && (type !== Type.SETTINGS || flags & ACK)) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'the server preface must be SETTINGS');
    }
    switch (type) {
      case Type.DATA:
        return this.onData(flags, id, payload);
      case Type.HEADERS:
        return this.onHeaders(flags, id, payload);
      case Type.PRIORITY:
        if (id === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) this.streamError(id, ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY frame size');
        return;
      case Type.RST_STREAM:
        return this.onRstStream(id, payload);
      case Type.SETTINGS:
        return this.onSettings(flags, id, payload);
      case Type.PUSH_PROMISE:
        throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE with push disabled');
      case Type.PING:
        if (id !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
        if (payload.length !== 8) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING frame size');
        if (!(flags & ACK)) this.push(pingAck(payload));
        return;
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

  private checkStreamId(id: number, what: string): void {
    if (id === 0 || (id & 1) === 0 || id >= this.nextStreamId) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, `${what} on stream ${id}, which we never opened`);
    }
  }

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & ACK) {
      if (payload.length !== 0)
        throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (payload.length % 6 !== 0)
      throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS frame size');
    let windowDelta = 0;
    for (let at = 0; at < payload.length; at += 6) {
      const key = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      switch (key) {
        case Setting.HEADER_TABLE_SIZE:
          this.encoder.setMaxTableSize(value);
          break;
        case Setting.ENABLE_PUSH:
          if (value > 1)
            throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH above 1');
          break;
        case Setting.MAX_CONCURRENT_STREAMS:
          this.peerMaxStreams = value;
          break;
        case Setting.INITIAL_WINDOW_SIZE:
          if (value > MAX_WINDOW) {
            throw new H2ConnectionError(
              ErrorCode.FLOW_CONTROL_ERROR,
              'SETTINGS_INITIAL_WINDOW_SIZE too large',
            );
          }
          windowDelta += value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          break;
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME || value > 0xff_ffff) {
            throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_MAX_FRAME_SIZE out of range');
          }
          this.peerMaxFrame = value;
          break;
        default:
          break; // MAX_HEADER_LIST_SIZE is advisory; unknown settings are ignored
      }
    }
    this.push(SETTINGS_ACK);
    this.gotSettings = true;
    if (windowDelta !== 0) {
      for (const ex of this.streams.values()) {
        ex.sendWindow += windowDelta;
        if (ex.sendWindow > MAX_WINDOW) {
          throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'stream window overflow');
        }
      }
      if (windowDelta > 0) this.pumpBlocked();
    }
    this.owner.capacityChanged();
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4)
      throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE frame size');
    const inc = payload.readUInt32BE(0) & MAX_WINDOW;
    if (id === 0) {
      if (inc === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.connSendWindow += inc;
      if (this.connSendWindow > MAX_WINDOW) {
        throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window overflow');
      }
      this.pumpBlocked();
      return;
    }
    this.checkStreamId(id, 'WINDOW_UPDATE');
    const ex = this.streams.get(id);
    if (ex === undefined) return; // a stream closed: its updates may still be in flight
    if (inc === 0) return this.streamError(id, ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
    ex.sendWindow += inc;
    if (ex.sendWindow > MAX_WINDOW)
      return this.streamError(id, ErrorCode.FLOW_CONTROL_ERROR, 'window overflow');
    this.pumpBody(ex);
  }

  private onRstStream(id: number, payload: Buffer): void {
    if (id === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4)
      throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM frame size');
    this.checkStreamId(id, 'RST_STREAM');
    const ex = this.streams.get(id);
    if (ex === undefined) return;
    this.codecStats['http2.rx_reset'].inc();
    const code = payload.readUInt32BE(0);
    const why =
      code === ErrorCode.REFUSED_STREAM
        ? 'the upstream refused the stream (REFUSED_STREAM)'
        : `stream reset by the upstream (HTTP/2 error code ${code})`;
    // The keep-alive race on a reused connection: REFUSED_STREAM says the upstream did nothing with the stream.
    // A stream the upstream reset with an error may have been acted on: sending it again is not safe.
    const race = this.isReused() && code === ErrorCode.REFUSED_STREAM;
    this.finish(ex);
    ex.fail(new UpstreamError('reset', why, race, !ex.responded));
  }

  private onGoaway(id: number, payload: Buffer): void {
    if (id !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY frame size');
    const last = payload.readUInt32BE(0) & MAX_WINDOW;
    this.goneAway = true;
    const refused: NativeH2Exchange[] = [];
    for (const [sid, ex] of this.streams) if (sid > last) refused.push(ex);
    for (const ex of refused) {
      this.streams.delete(ex.id);
      this.blocked.delete(ex);
      this.codecStats['http2.streams_active'].dec();
      this.owner.exchangeDone(this, ex);
      // Never processed (RFC 9113 §6.8): safe to send again, on another connection.
      ex.fail(
        new UpstreamError('reset', 'the upstream sent GOAWAY before processing the stream', true, true),
      );
    }
    this.owner.goaway(this);
    if (this.streams.size === 0) this.end();
  }

  private onHeaders(flags: number, id: number, payload: Buffer): void {
    this.checkStreamId(id, 'HEADERS');
    const [start, end] = unpad(Type.HEADERS, flags, payload);
    const fragment = payload.subarray(start, end);
    if (flags & Flag.END_HEADERS) return this.onHeaderBlock(id, flags, fragment);
    this.blockStream = id;
    this.blockFlags = flags;
    this.blockParts = [Buffer.from(fragment)];
    this.blockBytes = fragment.length;
  }

  private onContinuation(flags: number, id: number, payload: Buffer): void {
    if (this.blockStream === 0 || id !== this.blockStream) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'unexpected CONTINUATION');
    }
    this.blockBytes += payload.length;
    if (this.blockBytes > MAX_HEADER_BLOCK) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large');
    }
    this.blockParts.push(Buffer.from(payload));
    if (!(flags & Flag.END_HEADERS)) return;
    const block = Buffer.concat(this.blockParts, this.blockBytes);
    this.blockStream = 0;
    this.blockParts = [];
    this.blockBytes = 0;
    this.onHeaderBlock(id, this.blockFlags, block);
  }

  private onHeaderBlock(id: number, flags: number, block: Buffer): void {
    const raw: string[] = [];
    // Always decoded, also for a stream we reset: the HPACK table must stay in step with the peer's.
    this.decoder.decode(block, raw);
    const ex = this.streams.get(id);
    if (ex === undefined || ex.remoteEnded) {
      if (ex !== undefined)
        this.streamError(id, ErrorCode.STREAM_CLOSED, 'HEADERS after the end of the stream');
      return;
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    try {
      if (!ex.responded) {
        const { status, headers } = responseHead(raw);
        if (status < 200) {
          if (endStream || status === 101)
            throw new MalformedResponse(`informational ${status} ending the stream`);
          return; // informational: the final head follows
        }
        ex.responded = true;
        if (endStream) ex.remoteEnded = true;
        if (!ex.done) ex.handler.onResponseStart(ex, status, headers, '');
        if (endStream) this.remoteEnd(ex, undefined);
        else this.touched.add(ex);
        return;
      }
      if (!endStream) throw new MalformedResponse('a second header block without END_STREAM');
      const trailers = responseTrailers(raw);
      ex.remoteEnded = true;
      this.remoteEnd(ex, trailers);
    } catch (err) {
      if (!(err instanceof MalformedResponse)) throw err;
      this.streamError(id, ErrorCode.PROTOCOL_ERROR, `malformed response: ${err.message}`);
    }
  }

  private onData(flags: number, id: number, payload: Buffer): void {
    this.checkStreamId(id, 'DATA');
    const n = payload.length;
    if (n > this.connRecvWindow) {
      throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    }
    this.connRecvWindow -= n;
    const ex = this.streams.get(id);
    if (ex !== undefined && ex.recvWindow < n) {
      this.credit(undefined, n);
      return this.streamError(id, ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the stream window');
    }
    if (ex === undefined || ex.remoteEnded) {
      // A stream we reset or that ended: its bytes still count against the connection's window.
      this.credit(undefined, n);
      if (ex !== undefined) this.streamError(id, ErrorCode.STREAM_CLOSED, 'DATA after the end of the stream');
      return;
    }
    ex.recvWindow -= n;
    const [start, end] = unpad(Type.DATA, flags, payload);
    if (!ex.responded) {
      this.credit(undefined, n);
      return this.streamError(
        id,
        ErrorCode.PROTOCOL_ERROR,
        'malformed response: DATA before the response head',
      );
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (endStream) ex.remoteEnded = true;
    const padding = n - (end - start);
    if (end > start && !ex.done) ex.handler.onResponseData(ex, payload.subarray(start, end));
    if (ex.paused && !ex.done && !endStream) {
      ex.held += end - start;
      this.credit(ex, padding);
    } else this.credit(ex, n);
    if (endStream) this.remoteEnd(ex, undefined);
    else this.touched.add(ex);
  }

  /** The response ended (END_STREAM): the exchange is done; a body still being sent is cut short. */
  private remoteEnd(ex: NativeH2Exchange, trailers: HeaderList | undefined): void {
    if (!ex.localEnded) {
      // The response is complete before the request (RFC 9113 §8.1): the rest of the body is not wanted.
      ex.localEnded = true;
      this.push(rstStreamFrame(ex.id, ErrorCode.NO_ERROR));
    }
    this.finish(ex);
    if (ex.done) return;
    ex.done = true;
    ex.req.body?.detach(ex);
    ex.handler.onResponseEnd(ex, trailers);
  }

  /** Resets one stream: RST_STREAM with `code`, and the exchange fails. */
  private streamError(id: number, code: ErrorCode, message: string): void {
    this.codecStats['http2.rx_messaging_error'].inc();
    this.codecStats['http2.tx_reset'].inc();
    this.push(rstStreamFrame(id, code));
    const ex = this.streams.get(id);
    if (ex === undefined) return;
    this.finish(ex);
    const kind = code === ErrorCode.PROTOCOL_ERROR ? 'protocol_error' : 'reset';
    ex.fail(new UpstreamError(kind, message, false, !ex.responded));
  }

  /** A connection error (RFC 9113 §5.4.1): GOAWAY, every stream fails, the socket closes. */
  private connectionError(code: ErrorCode, message: string): void {
    if (this.closed) return;
    this.codecStats['http2.rx_messaging_error'].inc();
    this.codecStats['http2.goaway_sent'].inc();
    this.out = [];
    this.outBytes = 0;
    this.push(goawayFrame(0, code));
    this.flush();
    const kind =
      code === ErrorCode.INTERNAL_ERROR || code === ErrorCode.FLOW_CONTROL_ERROR ? 'reset' : 'protocol_error';
    this.failAll(new UpstreamError(kind, `upstream HTTP/2 connection error: ${message}`, false, true));
    this.goneAway = true;
    this.closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Fails every stream with `err` (beforeResponse adjusted per stream). */
  failAll(err: UpstreamError): void {
    const all = [...this.streams.values()];
    for (const ex of all) this.finish(ex);
    for (const ex of all) {
      ex.fail(new UpstreamError(err.kind, err.message, err.reused, !ex.responded));
    }
  }

  // ---- lifecycle

  /** No new streams; a graceful GOAWAY and the end of the socket once no stream is left. */
  end(): void {
    this.goneAway = true;
    if (this.streams.size > 0 || this.closed) return;
    this.closed = true;
    this.codecStats['http2.goaway_sent'].inc();
    this.push(goawayFrame(0, ErrorCode.NO_ERROR));
    this.flush();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  destroy(): void {
    this.goneAway = true;
    this.closed = true;
    this.socket.destroy();
  }

  /** The socket closed: what is left fails. */
  socketClosed(): void {
    this.closed = true;
    this.goneAway = true;
    this.blocked.clear();
    const reused = this.isReused();
    this.failAll(new UpstreamError('reset', 'upstream connection closed', reused, true));
  }
}
