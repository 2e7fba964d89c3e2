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
      encodeURIComponent(o.message),
      'content-length',
      '0',
    );
    stream.writeHead(200, headers);
    stream.end();
    return 0;
  }
  const body = `${o.message}\n`;
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
