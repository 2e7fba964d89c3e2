// HTTP/2 frames (RFC 9113 §4, §6): the frame reader that cuts a byte stream into frames, and frame writers.

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER = 9;
export const DEFAULT_MAX_FRAME = 16_384;
export const MAX_WINDOW = 0x7fff_ffff;

export enum Type {
  DATA = 0,
  HEADERS = 1,
  PRIORITY = 2,
  RST_STREAM = 3,
  SETTINGS = 4,
  PUSH_PROMISE = 5,
  PING = 6,
  GOAWAY = 7,
  WINDOW_UPDATE = 8,
  CONTINUATION = 9,
}

/** SETTINGS and PING: the frame acknowledges the peer's (the same bit as END_STREAM). */
export const ACK = 0x1;

export enum Flag {
  END_STREAM = 0x1,
  END_HEADERS = 0x4,
  PADDED = 0x8,
  PRIORITY = 0x20,
}

export enum ErrorCode {
  NO_ERROR = 0,
  PROTOCOL_ERROR = 1,
  INTERNAL_ERROR = 2,
  FLOW_CONTROL_ERROR = 3,
  SETTINGS_TIMEOUT = 4,
  STREAM_CLOSED = 5,
  FRAME_SIZE_ERROR = 6,
  REFUSED_STREAM = 7,
  CANCEL = 8,
  COMPRESSION_ERROR = 9,
  CONNECT_ERROR = 10,
  ENHANCE_YOUR_CALM = 11,
  INADEQUATE_SECURITY = 12,
  HTTP_1_1_REQUIRED = 13,
}

export enum Setting {
  HEADER_TABLE_SIZE = 1,
  ENABLE_PUSH = 2,
  MAX_CONCURRENT_STREAMS = 3,
  INITIAL_WINDOW_SIZE = 4,
  MAX_FRAME_SIZE = 5,
  MAX_HEADER_LIST_SIZE = 6,
}

/** A connection error (RFC 9113 §5.4.1): GOAWAY with `code`, then close. */
export class H2ConnectionError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Receives each whole frame; `payload` is a view that stays valid (reads are never reused). */
export type FrameHandler = (type: number, flags: number, streamId: number, payload: Buffer) => void;

/**
 * Cuts the bytes after the preface into frames. Whole frames in a read are handed out as views of it; only a
 * frame split across reads is copied together.
 */
export class FrameReader {
  private partial: Buffer | undefined;

  constructor(
    /** Our SETTINGS_MAX_FRAME_SIZE: a longer frame is a FRAME_SIZE_ERROR. */
    private readonly maxFrameSize: number,
    private readonly onFrame: FrameHandler,
  ) {}

  /** Bytes held for a frame not yet complete. */
  get buffered(): number {
    return this.partial?.length ?? 0;
  }

  /** Throws H2ConnectionError for an oversized frame; the handler may throw too (and stop the loop). */
  feed(chunk: Buffer): void {
    let buf = chunk;
    if (this.partial !== undefined) {
      buf = Buffer.concat([this.partial, chunk]);
      this.partial = undefined;
    }
    let pos = 0;
    const n = buf.length;
    while (n - pos >= FRAME_HEADER) {
      const len = (buf[pos]! << 16) | (buf[pos + 1]! << 8) | buf[pos + 2]!;
      if (len > this.maxFrameSize) {
        throw new H2ConnectionError(
          ErrorCode.FRAME_SIZE_ERROR,
          `frame of ${len} bytes over SETTINGS_MAX_FRAME_SIZE`,
        );
      }
      const end = pos + FRAME_HEADER + len;
      if (end > n) break;
      const type = buf[pos + 3]!;
      const flags = buf[pos + 4]!;
      const id = buf.readUInt32BE(pos + 5) & MAX_WINDOW;
      this.onFrame(type, flags, id, buf.subarray(pos + FRAME_HEADER, end));
      pos = end;
    }
    if (pos < n) this.partial = pos === 0 && buf !== chunk ? buf : Buffer.from(buf.subarray(pos));
  }
}

/** The 9-byte frame header. */
export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER);
  writeFrameHeader(b, 0, length, type, flags, streamId);
  return b;
}

export function writeFrameHeader(
  b: Buffer,
  at: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  b[at] = length >>> 16;
  b[at + 1] = (length >>> 8) & 0xff;
  b[at + 2] = length & 0xff;
  b[at + 3] = type;
  b[at + 4] = flags;
  b.writeUInt32BE(streamId, at + 5);
}

/** A frame with its payload in one buffer. */
export function frame(type: number, flags: number, streamId: number, payload?: Buffer): Buffer {
  const len = payload?.length ?? 0;
  const b = Buffer.allocUnsafe(FRAME_HEADER + len);
  writeFrameHeader(b, 0, len, type, flags, streamId);
  if (payload !== undefined) payload.copy(b, FRAME_HEADER);
  return b;
}

export function settingsFrame(entries: readonly (readonly [number, number])[]): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER + entries.length * 6);
  writeFrameHeader(b, 0, entries.length * 6, Type.SETTINGS, 0, 0);
  let at = FRAME_HEADER;
  for (const [id, value] of entries) {
    b.writeUInt16BE(id, at);
    b.writeUInt32BE(value, at + 2);
    at += 6;
  }
  return b;
}

export const SETTINGS_ACK = frame(Type.SETTINGS, ACK, 0);

export function pingAck(payload: Buffer): Buffer {
  return frame(Type.PING, ACK, 0, payload);
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER + 4);
  writeFrameHeader(b, 0, 4, Type.RST_STREAM, 0, streamId);
  b.writeUInt32BE(code, FRAME_HEADER);
  return b;
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER + 4);
  writeFrameHeader(b, 0, 4, Type.WINDOW_UPDATE, 0, streamId);
  b.writeUInt32BE(increment, FRAME_HEADER);
  return b;
}

export function goawayFrame(lastStreamId: number, code: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER + 8);
  writeFrameHeader(b, 0, 8, Type.GOAWAY, 0, 0);
  b.writeUInt32BE(lastStreamId & MAX_WINDOW, FRAME_HEADER);
  b.writeUInt32BE(code, FRAME_HEADER + 4);
  return b;
}

/**
 * A header block as HEADERS plus CONTINUATION frames of at most `maxFrame` bytes each, in one buffer.
 * `endStream` goes on the HEADERS frame, END_HEADERS on the last one.
 */
export function headerBlockFrames(
  streamId: number,
  block: Buffer,
  endStream: boolean,
  maxFrame: number,
): Buffer {
  const es = endStream ? Flag.END_STREAM : 0;
  if (block.length <= maxFrame) {
    const b = Buffer.allocUnsafe(FRAME_HEADER + block.length);
    writeFrameHeader(b, 0, block.length, Type.HEADERS, es | Flag.END_HEADERS, streamId);
    block.copy(b, FRAME_HEADER);
    return b;
  }
  const count = Math.ceil(block.length / maxFrame);
  const b = Buffer.allocUnsafe(block.length + count * FRAME_HEADER);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const from = i * maxFrame;
    const to = Math.min(block.length, from + maxFrame);
    const last = i === count - 1;
    const type = i === 0 ? Type.HEADERS : Type.CONTINUATION;
    const flags = (i === 0 ? es : 0) | (last ? Flag.END_HEADERS : 0);
    writeFrameHeader(b, at, to - from, type, flags, streamId);
    block.copy(b, at + FRAME_HEADER, from, to);
    at += FRAME_HEADER + to - from;
  }
  return b;
}

/**
 * The content of a DATA or HEADERS payload without its padding (and, for HEADERS, its priority fields):
 * [start, end) in `payload`, or throws a connection PROTOCOL_ERROR / FRAME_SIZE_ERROR.
 */
export function unpad(type: number, flags: number, payload: Buffer): [number, number] {
  let start = 0;
  let end = payload.length;
  let pad = 0;
  if (flags & Flag.PADDED) {
    if (end < 1) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'padded frame without a pad length');
    pad = payload[0]!;
    start = 1;
  }
  if (type === Type.HEADERS && flags & Flag.PRIORITY) start += 5;
  if (start + pad > end) {
    throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'padding longer than the frame payload');
  }
  end -= pad;
  return [start, end];
}
