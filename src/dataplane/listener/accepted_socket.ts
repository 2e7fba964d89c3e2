// Accepted connections read through net's onread: a consumer that claims a socket gets its bytes straight from
// the shared read buffer; until one does, they flow through the socket's Readable stream as usual.
//
// The Readable path costs a push, an emit and a tick per read: some 14 % of the instructions of a proxied
// keep-alive request. net.Server has no onread option, so the listener accepts paused and a new Socket adopts the
// handle.

import { Socket, type SocketConstructorOpts } from 'node:net';
import { copyIfShared, readIntoSharedBuffer } from '../read_buffer.js';

/**
 * Takes every read of a claimed socket, synchronously. `chunk` may be a view of the shared read buffer, valid only
 * during the call: bytes kept or written to a socket go through read_buffer.ts `copyIfShared` first. Returning
 * false pauses the socket, as net's onread callback does, until it is resumed.
 */
export type ReadConsumer = (chunk: Buffer) => unknown;

interface Reader {
  consumer: ReadConsumer | undefined;
}

const readers = new WeakMap<Socket, Reader>();

/** The part of net's private state adopting a handle needs; Node offers no public way to re-own an accepted handle. */
interface HandleOwner {
  _handle: object | null;
}

/**
 * The same connection as `accepted` (which must have been accepted paused: `pauseOnConnect`), as a socket read
 * through onread. `accepted` is destroyed without closing the connection, so its server stops counting it.
 */
export function adoptAccepted(accepted: Socket): Socket {
  const owner = accepted as unknown as HandleOwner;
  const handle = owner._handle;
  if (handle === null) return accepted;
  const reader: Reader = { consumer: undefined };
  const socket: Socket = new Socket({
    handle,
    allowHalfOpen: true,
    readable: true,
    writable: true,
    onread: readIntoSharedBuffer((chunk) => {
      const consumer = reader.consumer;
      if (consumer === undefined) return socket.push(copyIfShared(chunk));
      return consumer(chunk) !== false;
    }),
  } as SocketConstructorOpts);
  owner._handle = null;
  accepted.destroy();
  readers.set(socket, reader);
  return socket;
}

/**
 * Sends `socket`'s reads to `consumer` from now on, first what the stream holds already (bytes a listener filter
 * put back). Returns false, changing nothing, for a socket `adoptAccepted` did not make (TLS, a test's socket):
 * its reader listens for 'data' instead. A paused socket stays paused: the consumer resumes it.
 */
export function claimReads(socket: Socket, consumer: ReadConsumer): boolean {
  const reader = readers.get(socket);
  if (reader === undefined) return false;
  const paused = socket.isPaused();
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
    consumer(chunk);
  }
  reader.consumer = consumer;
  // read() restarts the handle to refill the stream; a claimed socket reads only when its consumer says so.
  if (paused) socket.pause();
  return true;
}

/** Hands `socket`'s reads back to its Readable stream ('data' events), for a next owner that listens for them. */
export function releaseReads(socket: Socket): void {
  const reader = readers.get(socket);
  if (reader !== undefined) reader.consumer = undefined;
}
