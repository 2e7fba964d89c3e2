// The buffer upstream sockets read into (net's onread): one for all of them, replaced only when a write keeps it.
//
// A read is handled synchronously, so one buffer can serve every upstream socket: no allocation per read and
// none of the Readable stream machinery. Bytes relayed to another socket are written straight from it; a
// write the kernel does not take at once keeps a reference to the bytes, and then later reads go to a new
// buffer. Whoever keeps bytes otherwise (a partial head) copies them.

import type { OnReadOpts } from 'node:net';

const SIZE = 64 * 1024;

let current = Buffer.allocUnsafe(SIZE);

/** The buffer for the next read (net's `onread.buffer` may be this function). */
export function readBuffer(): Buffer {
  return current;
}

/** net's `onread` option: reads land in the shared buffer and go to `onData`; `false` pauses the socket. */
export function readIntoSharedBuffer(onData: (chunk: Buffer) => boolean): OnReadOpts {
  return { buffer: readBuffer, callback: (n, buf) => onData((buf as Buffer).subarray(0, n)) };
}

/**
 * Call after writing bytes that may be a view of the read buffer to `socket`: if the write is still pending,
 * the socket holds on to those bytes, so the next reads go elsewhere.
 */
export function releaseIfRetained(socket: { readonly writableLength: number }): void {
  if (socket.writableLength > 0) current = Buffer.allocUnsafe(SIZE);
}

/** `chunk` itself, or a copy when it is a view of the read buffer (for writers that keep bytes until sent). */
export function copyIfShared(chunk: Buffer): Buffer {
  return chunk.buffer === current.buffer ? Buffer.from(chunk) : chunk;
}
