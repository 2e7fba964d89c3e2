// Turns a failure into the response the client sees: one place, so every local reply says what and why.

import type { FailureKind } from '../errors.js';
import type { HeaderList } from './header_list.js';
import type { DownstreamStream } from './stream.js';

export interface LocalReplyOptions {
  readonly kind: FailureKind;
  /** Human explanation: what happened and where (cluster, host). */
  readonly message: string;
  readonly grpc: boolean;
  readonly extraHeaders?: HeaderList;
  /** The message is the whole body, without the newline Remora's own replies end in (Envoy's exact wording). */
  readonly verbatim?: boolean;
}

/** Sends the reply; returns the body bytes written. */
export function sendLocalReply(stream: DownstreamStream, o: LocalReplyOptions): number {
  if (stream.headersSent) {
    stream.destroy();
    return 0;
  }
  const headers: HeaderList = ['x-remora-error', o.kind.code];
  if (o.kind.replyHeaders) headers.push(...o.kind.replyHeaders);
  if (o.extraHeaders) headers.push(...o.extraHeaders);
  if (o.grpc) {
    // gRPC clients understand trailers-only answers: HTTP 200 with grpc-status in the headers.
    headers.push(
      'content-type',
      'application/grpc',
      'grpc-status',
      String(o.kind.grpcStatus),
      'grpc-message',
      grpcPercentEncode(o.message),
      'content-length',
      '0',
    );
    stream.writeHead(200, headers);
    stream.end();
    return 0;
  }
  const body = o.verbatim ? o.message : `${o.message}\n`;
  headers.push(
    'content-type',
    'text/plain; charset=utf-8',
    'content-length',
    String(Buffer.byteLength(body)),
  );
  stream.writeHead(o.kind.status, headers);
  stream.end(body);
  return stream.method === 'HEAD' ? 0 : Buffer.byteLength(body);
}

/**
 * grpc-message as the gRPC spec encodes it: bytes outside printable ASCII, and "%", as %XX. (encodeURIComponent
 * also encodes ":" and the like, which clients that decode with decodeURI, such as grpc-js, leave as "%3A".)
 */
export function grpcPercentEncode(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = '';
  for (const b of Buffer.from(message, 'utf8')) {
    out +=
      b >= 0x20 && b <= 0x7e && b !== 0x25
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
