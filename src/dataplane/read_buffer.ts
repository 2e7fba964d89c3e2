// The buffer sockets read into (net's onread): one for all of them, so a read allocates nothing.
//
// A read is handled synchronously, before any other socket's, so one buffer can serve every socket read through
// onread (upstream connections, accepted plaintext connections): no allocation per read and none of the Readable
// stream machinery. Each socket reads into the buffer it was last given, whenever its next bytes come, so the
// buffer is never replaced and bytes of it are valid only during the read's callback: whoever keeps them, or
// writes them to a socket (a write the kernel does not take at once keeps its bytes until it can), copies them.
// A socket whose reads fill half the buffer is streaming: it reads into buffers of its own, as Node would, so that
// relaying them costs no copy.

import type { OnReadOpts } from 'node:net';

const SIZE = 64 * 1024;
const STREAMING_READ = SIZE / 2;

const shared = Buffer.allocUnsafe(SIZE);

/** The shared buffer itself (to tell its views from other bytes). */
export function readBuffer(): Buffer {
  return shared;
}

/**
 * net's `onread` option for one socket: reads land in the shared buffer (a streaming socket's in a new buffer each)
 * and go to `onData`; `false` pauses the socket.
 */
export function readIntoSharedBuffer(onData: (chunk: Buffer) => boolean): OnReadOpts {
  let next = shared;
  return {
    buffer: () => next,
    callback: (n, buf) => {
      next = n >= STREAMING_READ ? Buffer.allocUnsafe(SIZE) : shared;
      return onData((buf as Buffer).subarray(0, n));
    },
  };
}

/** `chunk` itself, or a copy when it is a view of the read buffer (for whoever keeps or writes bytes). */
export function copyIfShared(chunk: Buffer): Buffer {
  return chunk.buffer === shared.buffer ? Buffer.from(chunk) : chunk;
}
