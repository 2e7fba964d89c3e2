// What leaves a native HTTP/2 connection: frames batched into one socket write per pass, response heads encoded,
// response bodies sent as far as the stream and connection windows and the socket allow.

import type { Socket } from 'node:net';
import type { HeaderList } from '../../header_list.js';
import type { FloodGuard } from './floods.js';
import {
  DEFAULT_MAX_FRAME,
  ErrorCode,
  Flag,
  frameHeader,
  H2ConnectionError,
  headerBlockFrames,
  MAX_WINDOW,
  Type,
} from './frames.js';
import { HpackEncoder } from './hpack.js';
import { sendable } from './response_headers.js';
import type { NativeStream } from './stream.js';

/** The flow-control window both sides start with (RFC 9113 §6.9.2). */
export const DEFAULT_WINDOW = 65_535;
/** Bytes waiting for the socket beyond which response DATA waits (the peer is not reading). */
const OUT_HIGH_WATER = 256 * 1024;
/** Writes smaller than this are joined into one buffer; larger ones go out as one writev. */
const CONCAT_MAX = 64 * 1024;

/** What the output needs from its session. */
export interface OutputOwner {
  /** END_STREAM went out on `stream`. */
  localEnd(stream: NativeStream): void;
  /** The peer leaves more of our frames unread than the limits allow: the connection goes. */
  outboundFlood(): void;
}

/** The output of one connection. */
export class H2Output {
  readonly encoder = new HpackEncoder();
  /** What the peer lets us send on the connection, and in one frame. */
  connSendWindow = DEFAULT_WINDOW;
  peerMaxFrame = DEFAULT_MAX_FRAME;
  /** The session is handling a read: frames wait for its flush at the end of it. */
  reading = false;
  /** Streams with response bytes the windows or the socket hold back. */
  private readonly blocked = new Set<NativeStream>();
  private out: Buffer[] = [];
  private outBytes = 0;
  private outFrames = 0;
  private outControl = 0;
  private flushScheduled = false;
  /** Some stream waits for the socket (not for a window) to take more. */
  private outBlocked = false;

  constructor(
    private readonly socket: Socket,
    private readonly owner: OutputOwner,
    private readonly floods: FloodGuard,
    /** stream_idle_timeout in ms, restarted when a stream sends. */
    private readonly streamIdleMs: number,
  ) {
    socket.on('drain', this.onDrain);
  }

  /** Queues a frame (or a frame header and its payload) for the end of this pass. */
  push(frame: Buffer, control: boolean, payload?: Buffer): void {
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

  /** Encodes and queues a HEADERS block (response head, 1xx, trailers: `status` 0). */
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
    if (endStream) this.owner.localEnd(stream);
  }

  /** Sends what the windows and the socket allow of the stream's queued body, and its end. */
  pump(stream: NativeStream): void {
    if (stream.closed || stream.localClosed) return;
    if (stream.idle !== undefined) stream.idle.start(this.streamIdleMs);
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
      this.floods.dataFrameSent();
      this.push(frameHeader(n, Type.DATA, last ? Flag.END_STREAM : 0, stream.id), false, piece);
      if (last) {
        this.blocked.delete(stream);
        this.owner.localEnd(stream);
        return;
      }
    }
    this.blocked.delete(stream);
    if (stream.ending) {
      if (stream.trailers !== undefined) this.sendHeaders(stream, 0, stream.trailers, true);
      else {
        this.push(frameHeader(0, Type.DATA, Flag.END_STREAM, stream.id), false);
        this.owner.localEnd(stream);
      }
      return;
    }
    stream.drained();
  }

  /** WINDOW_UPDATE on the connection: held-back streams go on. */
  openConnectionWindow(inc: number): void {
    this.connSendWindow += inc;
    if (this.connSendWindow > MAX_WINDOW) {
      throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window overflow');
    }
    this.pumpBlocked();
  }

  /** Sends what the windows now allow of every held-back stream. */
  pumpBlocked(): void {
    for (const s of this.blocked) {
      this.pump(s);
      if (this.connSendWindow <= 0) break;
    }
  }

  /** The stream is closed: it waits for nothing any more. */
  forget(stream: NativeStream): void {
    this.blocked.delete(stream);
  }

  /** The connection closes: no stream waits any more. */
  forgetAll(): void {
    this.blocked.clear();
  }

  /** Drops the frames not yet written (a connection error replaces them with its GOAWAY). */
  discard(): void {
    this.out = [];
    this.outBytes = 0;
  }

  private readonly onDrain = (): void => {
    this.outBlocked = false;
    if (this.blocked.size > 0) {
      this.pumpBlocked();
      this.flush();
    }
  };

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  /** Writes every queued frame in one socket write. */
  readonly flush = (): void => {
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
    if (this.floods.written(frames, control, busy)) this.owner.outboundFlood();
  };
}
