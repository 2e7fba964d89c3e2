// Test support: HTTP/2 peers — an h2c upstream that records what it got, node:http2 clients, and raw frames on a socket.

import {
  type ClientHttp2Session,
  constants,
  createServer,
  type Http2Server,
  connect as h2connect,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type SecureClientSessionOptions,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { createServer as createTcpServer, connect as netConnect, type Socket } from 'node:net';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** The cluster option that makes the proxy speak HTTP/2 to the hosts (Envoy's HttpProtocolOptions). */
export function h2ProtocolOptions(http2: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: http2 },
      },
    },
  };
}

/** A request as the HTTP/2 upstream received it. */
export interface H2UpstreamRequest {
  readonly headers: IncomingHttpHeaders;
  /** [name, value, ...] exactly as received, pseudo-headers included. */
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
  readonly trailers: IncomingHttpHeaders | undefined;
  /** Which upstream connection carried it (0, 1, ... in order of arrival). */
  readonly session: number;
}

export type H2Handler = (stream: ServerHttp2Stream, req: H2UpstreamRequest) => void;

export interface H2Upstream {
  readonly port: number;
  readonly requests: H2UpstreamRequest[];
  /** Connections accepted so far. */
  readonly sessions: number;
  /** The most streams open at once on one connection, per connection. */
  readonly peakStreams: number[];
  close(): Promise<void>;
}

/**
 * An h2c (prior knowledge) server on port 0. Each request is answered, once its body has arrived, by `handler`
 * or with 200 and JSON {headers, body, trailers}.
 */
export async function startH2Upstream(handler?: H2Handler): Promise<H2Upstream> {
  const requests: H2UpstreamRequest[] = [];
  const sessions = new Set<ServerHttp2Session>();
  const peakStreams: number[] = [];
  const sockets = new Set<Socket>();
  let count = 0;
  const server: Http2Server = createServer();
  server.on('session', (session: ServerHttp2Session) => {
    const id = count++;
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.on('error', () => undefined);
    let open = 0;
    peakStreams[id] = 0;
    session.on(
      'stream',
      (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
        open++;
        peakStreams[id] = Math.max(peakStreams[id]!, open);
        stream.once('close', () => open--);
        stream.on('error', () => undefined);
        const chunks: Buffer[] = [];
        let trailers: IncomingHttpHeaders | undefined;
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('trailers', (t: IncomingHttpHeaders) => {
          trailers = t;
        });
        stream.on('end', () => {
          const req = { headers, rawHeaders, body: Buffer.concat(chunks), trailers, session: id };
          requests.push(req);
          if (stream.destroyed) return;
          if (handler) return handler(stream, req);
          stream.respond({ ':status': 200, 'content-type': 'application/json' });
          stream.end(JSON.stringify({ headers, body: req.body.toString(), trailers }));
        });
      },
    );
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    requests,
    get sessions() {
      return count;
    },
    peakStreams,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A client session that has exchanged SETTINGS; errors are kept quiet (tests look at events and results). */
export function h2Connect(url: string, opts: SecureClientSessionOptions = {}): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = h2connect(url, opts);
    session.on('error', () => undefined);
    session.once('remoteSettings', () => {
      session.off('close', onClose);
      resolve(session);
    });
    const onClose = () => reject(new Error(`HTTP/2 session to ${url} closed before its SETTINGS`));
    session.once('close', onClose);
  });
}

export interface H2Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly trailers: IncomingHttpHeaders | undefined;
}

/** A stream error: the RST_STREAM code the stream closed with. */
export class H2StreamError extends Error {
  constructor(readonly rstCode: number | undefined) {
    super(`stream closed with RST_STREAM code ${rstCode}`);
  }
}

/** One request on `session`; rejects with H2StreamError when the stream is reset before its end. */
export function h2Request(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  opts: { body?: Buffer | string; trailers?: OutgoingHttpHeaders } = {},
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const hasBody = opts.body !== undefined || opts.trailers !== undefined;
    const req = session.request(
      { ':method': hasBody ? 'POST' : 'GET', ...headers },
      { endStream: !hasBody, waitForTrailers: opts.trailers !== undefined },
    );
    if (opts.trailers) req.on('wantTrailers', () => req.sendTrailers(opts.trailers!));
    if (hasBody) req.end(opts.body);
    let status = 0;
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      head = h;
      status = Number(h[':status']);
    });
    req.on('trailers', (t) => {
      trailers = t;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    let ended = false;
    req.on('end', () => {
      ended = true;
    });
    req.on('close', () => {
      if (ended && req.rstCode === constants.NGHTTP2_NO_ERROR) {
        resolve({ status, headers: head, body: Buffer.concat(chunks), trailers });
      } else reject(new H2StreamError(req.rstCode));
    });
  });
}

// ---- raw frames, for peers that misbehave on purpose

export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
} as const;

export const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 } as const;

export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

export function settingsFrame(entries: readonly [number, number][] = [], ack = false): Buffer {
  const p = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, ack ? FLAG.ACK : 0, 0, p);
}

export function pingFrame(n: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(n, 4);
  return frame(FRAME.PING, 0, 0, p);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInt(n: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (n < max) return [first | n];
  const out = [first | max];
  n -= max;
  while (n >= 128) {
    out.push((n % 128) + 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** A HEADERS frame whose block is literal fields without indexing and without Huffman coding. */
export function headersFrame(
  streamId: number,
  fields: readonly [string, string][],
  endStream: boolean,
): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(value, 'latin1');
    parts.push(Buffer.from([0x00, ...hpackInt(n.length, 7, 0)]), n, Buffer.from(hpackInt(v.length, 7, 0)), v);
  }
  return frame(
    FRAME.HEADERS,
    FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0),
    streamId,
    Buffer.concat(parts),
  );
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code, 0);
  return frame(FRAME.RST_STREAM, 0, streamId, p);
}

export interface RawFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/** A plain TCP connection that speaks HTTP/2 frame by frame; received frames are parsed as they come. */
export class RawH2Connection {
  readonly frames: RawFrame[] = [];
  closed = false;
  /** Hears each frame as it is parsed. */
  onFrame: ((f: RawFrame) => void) | undefined;
  private buf: Buffer = Buffer.alloc(0);

  /** `server`: the peer is a client, whose bytes start with the connection preface. */
  constructor(
    readonly socket: Socket,
    server = false,
  ) {
    let preface = server ? H2_PREFACE.length : 0;
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      if (preface > 0) {
        const n = Math.min(preface, this.buf.length);
        this.buf = this.buf.subarray(n);
        preface -= n;
      }
      while (this.buf.length >= 9) {
        const len = this.buf.readUIntBE(0, 3);
        if (this.buf.length < 9 + len) break;
        const f = {
          type: this.buf[3]!,
          flags: this.buf[4]!,
          streamId: this.buf.readUInt32BE(5) & 0x7fffffff,
          payload: Buffer.from(this.buf.subarray(9, 9 + len)),
        };
        this.frames.push(f);
        this.buf = this.buf.subarray(9 + len);
        this.onFrame?.(f);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
    });
  }

  static open(port: number): Promise<RawH2Connection> {
    return new Promise((resolve, reject) => {
      const s = netConnect(port, '127.0.0.1', () => {
        s.off('error', reject);
        resolve(new RawH2Connection(s));
      });
      s.once('error', reject);
    });
  }

  write(data: Buffer): boolean {
    return this.socket.write(data);
  }

  /** The GOAWAY received, if any: its last stream id and error code. */
  get goaway(): { lastStreamId: number; errorCode: number } | undefined {
    const f = this.frames.find((x) => x.type === FRAME.GOAWAY);
    return (
      f && { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, errorCode: f.payload.readUInt32BE(4) }
    );
  }

  /** RST_STREAM error codes received, by stream id. */
  resets(): Map<number, number> {
    const m = new Map<number, number>();
    for (const f of this.frames)
      if (f.type === FRAME.RST_STREAM) m.set(f.streamId, f.payload.readUInt32BE(0));
    return m;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * An h2c upstream written frame by frame, for what node's server cannot be made to do (an RST_STREAM in the
 * middle of a response: node's stream.close() ends the stream cleanly first). It exchanges SETTINGS, then hands
 * each request's HEADERS to `onRequest`, which answers with frames of its own.
 */
export async function startRawH2Upstream(
  onRequest: (peer: RawH2Connection, streamId: number) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  const peers = new Set<RawH2Connection>();
  const server = createTcpServer((socket) => {
    const peer = new RawH2Connection(socket, true);
    peers.add(peer);
    socket.once('close', () => peers.delete(peer));
    peer.write(settingsFrame());
    peer.onFrame = (f) => {
      if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK)) peer.write(settingsFrame([], true));
      if (f.type === FRAME.HEADERS) onRequest(peer, f.streamId);
    };
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((r) => {
        for (const p of peers) p.destroy();
        server.close(() => r());
      }),
  };
}
