// Turns a failure into the response the client sees: one place, so every local reply says what and why.

import type { ServerResponse } from 'node:http';
import type { FailureKind } from '../errors.js';

export interface LocalReplyOptions {
  readonly kind: FailureKind;
  /** Human explanation: what happened and where (cluster, host). */
  readonly message: string;
  readonly grpc: boolean;
  readonly headOnly: boolean;
  readonly extraHeaders?: Record<string, string>;
}

export function sendLocalReply(res: ServerResponse, o: LocalReplyOptions): number {
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  const headers: Record<string, string> = { 'x-remora-error': o.kind.code, ...o.extraHeaders };
  if (o.grpc) {
    // gRPC clients understand trailers-only answers: HTTP 200 with grpc-status in the headers.
    headers['content-type'] = 'application/grpc';
    headers['grpc-status'] = String(o.kind.grpcStatus);
    headers['grpc-message'] = encodeURIComponent(o.message);
    res.writeHead(200, headers);
    res.end();
    return 0;
  }
  const body = `${o.message}\n`;
  headers['content-type'] = 'text/plain; charset=utf-8';
  headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(o.kind.status, headers);
  res.end(o.headOnly ? undefined : body);
  return o.headOnly ? 0 : Buffer.byteLength(body);
}
