// The buffer sockets read into (net's onread): one for all of them, so a read allocates nothing.
//
// A read is handled synchronously, before any other socket's, so one buffer can serve every socket read through
// onread (upstream connections, accepted plaintext connections): no allocation per read and none of the Readable
// stream machinery. Each socket reads into the buffer it was last given, whenever its next bytes come, so the
// buffer is never replaced and bytes of it are valid only during the read's callback: whoever keeps them, or
// writes them to a socket (a write the kernel does not take at once keeps its bytes until it can), copies them.
// A socket whose reads fill half the buffer is streaming: it reads into buffers of its own, as Node would, so that
// relaying them costs no copy. A relay gives each such buffer back once its write completes (relayWrite), and the
// next streaming read reuses it: a bulk transfer at hundreds of MB/s would otherwise leave a 64 KiB buffer of
// garbage per read, which the process holds (~30-40 MiB) until the GC catches up and keeps after.

import type { OnReadOpts } from 'node:net';
import type { Writable } from 'node:stream';

const SIZE = 64 * 1024;
const STREAMING_READ = SIZE / 2;

const shared = Buffer.allocUnsafe(SIZE);

/** Streaming reads' buffers given back, for the next streaming reads; at most SPARE_MAX (2 MiB) are kept. */
const spare: ArrayBuffer[] = [];
const SPARE_MAX = 32;
/** The buffers handed to a streaming read and not given back: only these can be given back, each only once. */
const lent = new WeakSet<ArrayBuffer>();

function streamingBuffer(): Buffer {
  const reused = spare.pop();
  const buf = reused === undefined ? Buffer.allocUnsafeSlow(SIZE) : Buffer.from(reused);
  lent.add(buf.buffer as ArrayBuffer);
  return buf;
}

function giveBack(ab: ArrayBuffer): void {
  if (lent.delete(ab) && spare.length < SPARE_MAX) spare.push(ab);
}

/** The buffer of a streaming read's bytes when it is one lent to the read (the shared one never is). */
function lentBuffer(chunk: Buffer): ArrayBuffer | undefined {
  const ab = chunk.buffer as ArrayBuffer;
  return lent.has(ab) ? ab : undefined;
}

/** The shared buffer itself (to tell its views from other bytes). */
export function readBuffer(): Buffer {
  return shared;
}

/**
 * net's `onread` option for one socket: reads land in the shared buffer (a streaming socket's in a new buffer each)
 * and go to `onData`; `false` pauses the socket.
 */
export function readIntoSharedBuffer(onData: (chunk: Buffer) => boolean): OnReadOpts {
  let next: Buffer = shared;
  return {
    buffer: () => next,
    callback: (n, buf) => {
      next = n >= STREAMING_READ ? streamingBuffer() : shared;
      return onData((buf as Buffer).subarray(0, n));
    },
  };
}

/** `chunk` itself, or a copy when it is a view of the read buffer (for whoever keeps or writes bytes). */
export function copyIfShared(chunk: Buffer): Buffer {
  return chunk.buffer === shared.buffer ? Buffer.from(chunk) : chunk;
}

/**
 * Writes the bytes of one read to `to` and lets go of them: a view of the shared buffer is copied; a streaming
 * read's own buffer is written as it is and reused once the write has completed. For consumers that keep nothing.
 */
export function relayWrite(to: Writable, chunk: Buffer): boolean {
  const ab = lentBuffer(chunk);
  if (ab === undefined) return to.write(copyIfShared(chunk));
  return to.write(chunk, () => giveBack(ab));
}
