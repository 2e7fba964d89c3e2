// The buffer sockets read into (net's onread): one for all of them, so a read allocates nothing.
//
// A read is handled synchronously, before any other socket's, so one buffer can serve every socket read through
// onread (upstream connections, accepted plaintext connections): no allocation per read and none of the Readable
// stream machinery. Each socket reads into the buffer it was last given, whenever its next bytes come, so the
// buffer is never replaced and bytes of it are valid only during the read's callback: whoever keeps them, or
// writes them to a socket (a write the kernel does not take at once keeps its bytes until it can), copies them.

import type { OnReadOpts } from 'node:net';

const SIZE = 64 * 1024;

const shared = Buffer.allocUnsafe(SIZE);

/** The buffer for the next read (net's `onread.buffer`). */
export function readBuffer(): Buffer {
  return shared;
}

/** net's `onread` option: reads land in the shared buffer and go to `onData`; `false` pauses the socket. */
export function readIntoSharedBuffer(onData: (chunk: Buffer) => boolean): OnReadOpts {
  return { buffer: shared, callback: (n, buf) => onData((buf as Buffer).subarray(0, n)) };
}

/** `chunk` itself, or a copy when it is a view of the read buffer (for whoever keeps or writes bytes). */
export function copyIfShared(chunk: Buffer): Buffer {
  return chunk.buffer === shared.buffer ? Buffer.from(chunk) : chunk;
}
